/**
 * Starting and losing a persistent privileged session (lib/connection/session.ts) over a scripted
 * channel: sudo refusing to start it is a SessionRefused (the exec path takes over), a channel that
 * closes during a request is a SessionLost for that request, and the inventory switch reaches the spec.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { PrivilegedSession, SESSION_COMMAND, SessionLost, SessionRefused } from '../../lib/connection/session.ts'
import { READY_LINE, helperProgramInput } from '../../lib/connection/session-helper.ts'
import { buildConnectionSpec } from '../../lib/inventory/connection-spec.ts'

/** A channel whose output the test writes; it records what the session sends. */
class ScriptedChannel extends EventEmitter {
  readonly stderr = new EventEmitter()
  readonly sent: Buffer[] = []
  write(data: string | Buffer): boolean {
    this.sent.push(Buffer.from(data))
    return true
  }
  close(): void {
    this.emit('close')
  }
}

t.test('a session refused by sudo is a SessionRefused carrying sudo’s message', async (t) => {
  const channel = new ScriptedChannel()
  let ended = 0
  let line = ''
  const opening = PrivilegedSession.open(
    async (l) => {
      line = l
      return channel
    },
    () => ended++,
  )
  await new Promise((r) => setImmediate(r))
  channel.stderr.emit('data', Buffer.from('sudo: a password is required\n'))
  channel.emit('close')
  const err = await opening.catch((e) => e)
  t.type(err, SessionRefused)
  t.match(err.message, 'sudo: a password is required')
  t.equal(line, SESSION_COMMAND)
  t.match(line, /^sudo -n -H -- perl -e /, 'sudo never prompts')
  t.ok(line.length < 400, `sudo logs a short command line, not the helper's program (${line.length} characters)`)
  t.equal(ended, 1, 'the end is reported once')
})

t.test('a channel closing during a request fails it with SessionLost; answered requests resolve', async (t) => {
  const channel = new ScriptedChannel()
  const opening = PrivilegedSession.open(
    async () => channel,
    () => {},
  )
  await new Promise((r) => setImmediate(r))
  channel.emit('data', Buffer.from(`${READY_LINE}\n`))
  const session = await opening
  const first = session.run(['true'], Buffer.alloc(0), 5_000)
  channel.emit('data', Buffer.from('done 1 0 2 0\nok'))
  const answered = await first
  t.same(
    [answered.code, answered.stdout.toString(), answered.stderr.length, answered.killedLocally],
    [0, 'ok', 0, false],
  )
  t.same(channel.sent[0], helperProgramInput(), "the helper's program went first, on the session's input")
  t.equal(channel.sent[1]!.toString(), 'run 1 1 4 0\ntrue', 'the request was framed')
  const second = session.run(['sleep', '9'], Buffer.alloc(0), 5_000)
  channel.emit('close')
  t.type(await second.catch((e) => e), SessionLost)
  t.equal(session.alive, false)
  t.type(await session.run(['true'], Buffer.alloc(0), 5_000).catch((e) => e), SessionLost, 'an ended session refuses')
})

t.test('ssh_persistent_session: false turns the session off in the connection spec', async (t) => {
  const vars = { address: '10.0.0.1', ssh_user: 'admin' }
  t.equal(buildConnectionSpec('h', vars, '/tmp/x.yml').persistentSession, undefined, 'on by default')
  const off = buildConnectionSpec('h', { ...vars, ssh_persistent_session: false }, '/tmp/x.yml')
  t.equal(off.persistentSession, false)
})
