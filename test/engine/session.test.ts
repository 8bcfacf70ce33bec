/**
 * The persistent privileged session against a real sshd on loopback: become commands go
 * through one `sudo perl` helper per connection and give the same bytes, exit codes and
 * timeouts as the exec path; a killed helper fails the command in flight as unreachable
 * (never re-run) and the next command opens a new session; the session holds the host lock, takes it again
 * in a new session, and gives the host up where it cannot.
 */
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { UnreachableError } from '../../lib/types.ts'
import { takeHostLock } from '../../lib/play/host-lock.ts'
import { startSshd, TEST_USER } from '../fixtures/sshd.ts'

const sshd = await startSshd()
const root = await SshConnection.connect(sshd.rootSpec())
t.teardown(async () => {
  await root.close()
  await sshd.stop()
})

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

/** A become connection with sessions on, and one with them off, closed at the end of the test. */
async function pair(t: Test): Promise<{ on: SshConnection; off: SshConnection }> {
  const on = await SshConnection.connect(sshd.userSpec())
  const off = await SshConnection.connect(sshd.userSpec({ persistentSession: false }))
  t.teardown(async () => {
    await on.close()
    await off.close()
  })
  return { on, off }
}

/** The pid of the process that started the command's `timeout`: the session helper, or sudo on the exec path. */
const LAUNCHER_PID = 'awk "{print \\$4}" /proc/$PPID/stat'
/** The command name of that process, read while the command runs. */
const LAUNCHER_NAME = `cat /proc/$(${LAUNCHER_PID})/comm`

t.test('sequential become commands share one sudo-started helper', async (t) => {
  const { on, off } = await pair(t)
  const launchers = new Set<string>()
  for (let i = 0; i < 30; i++) launchers.add((await on.run(LAUNCHER_PID, { check: true })).stdout.trim())
  t.equal(launchers.size, 1, 'all 30 commands were started by the same process')
  const helper = [...launchers][0]!
  t.equal(readFileSync(`/proc/${helper}/comm`, 'utf8').trim(), 'perl', 'the launcher is the perl helper')
  const sudo = readFileSync(`/proc/${helper}/stat`, 'utf8').split(' ')[3]
  t.equal(readFileSync(`/proc/${sudo}/comm`, 'utf8').trim(), 'sudo', 'started by one sudo')
  t.equal(on.sessionsOpened, 1, 'one session opened')
  t.equal(on.commandCount, 30, 'every command is counted')
  const offLaunchers = new Set<string>()
  for (let i = 0; i < 5; i++) offLaunchers.add((await off.run(LAUNCHER_PID, { check: true })).stdout.trim())
  t.equal(offLaunchers.size, 5, 'with the session off, every command has its own sudo')
  t.equal(off.sessionsOpened, 0)
})

t.test('output, stdin and exit codes are byte-exact and equal to the exec path', async (t) => {
  const { on, off } = await pair(t)
  // Multi-byte characters straddle the helper's 64 KiB read chunks; stderr is checked as well.
  const wide = 'é日🙂'.repeat(30_000)
  const commands: [string, Buffer | string | undefined][] = [
    ['printf "%s" "$1" "$1"', undefined],
    ['cat; printf "err \\303\\251\\n" >&2; exit 3', `${wide}\n`],
    ['exit 255', undefined],
    ['wc -c', undefined],
    ['yes | head -c 5', undefined],
  ]
  for (const [command, stdin] of commands) {
    const [a, b] = await Promise.all([on.run(command, { stdin }), off.run(command, { stdin })])
    t.same([a.code, a.stdout, a.stderr], [b.code, b.stdout, b.stderr], `same result: ${command}`)
  }
  const r = await on.run('cat; echo oops >&2; exit 3', { stdin: wide })
  t.same([r.code, r.stdout === wide, r.stderr], [3, true, 'oops\n'], 'stdin passes through whole')
  // The exec path's login shell adds its own note ("Killed") on stderr; the code is the same.
  const [killed, killedOff] = await Promise.all([on.run('kill -9 $$'), off.run('kill -9 $$')])
  t.same([killed.code, killed.stdout], [137, ''], 'a command killed by a signal reports 128 + its number')
  t.equal(killedOff.code, 137, 'as the exec path does')
  const blob = randomBytes(900_000)
  t.equal((await on.run('sha256sum', { stdin: blob })).stdout.split(' ')[0], sha(blob), 'binary stdin arrives intact')
  t.equal(on.sessionsOpened, 1, 'all of it through the session')
})

t.test('put and get through the session keep binary bytes, mode and owner', async (t) => {
  const { on } = await pair(t)
  const dir = (await root.run('mktemp -d', { check: true })).stdout.trim()
  t.teardown(() => root.run(['rm', '-rf', dir]))
  const file = `${dir}/blob.bin`
  const binary = Buffer.concat([Buffer.from([0, 255, 10, 13, 0]), randomBytes(200_000), Buffer.from('日本')])
  await on.put(file, binary, { mode: '0640', owner: TEST_USER, group: 'root' })
  t.ok((await on.get(file)).equals(binary), 'the bytes round-trip')
  t.equal((await root.run(['stat', '-c', '%a %U %G', file])).stdout, `640 ${TEST_USER} root\n`)
  t.equal((await root.run(['ls', '-A', dir])).stdout, 'blob.bin\n', 'no temp file left behind')
  t.equal(on.sessionsOpened, 1)
})

t.test('env, cwd and user switching match sudo -H -u', async (t) => {
  const { on, off } = await pair(t)
  const probe = 'printf "%s|%s|%s|%s|%s" "$(id -un)" "$(id -gn)" "$HOME" "$(pwd)" "$GREETING"'
  const options = { env: { GREETING: "it's $HOME" }, cwd: '/usr/share' }
  for (const user of [undefined, 'nobody', TEST_USER]) {
    const [a, b] = await Promise.all([on.run(probe, { ...options, user }), off.run(probe, { ...options, user })])
    t.equal(a.stdout, b.stdout, `same identity, home and directory as ${user ?? 'root'}`)
  }
  t.equal((await on.run('echo $HOME')).stdout, '/root\n', 'root commands get root’s HOME')
  const unknown = await on.run('true', { user: 'no-such-user-x' })
  t.not(unknown.code, 0, 'an unknown user fails the command')
  t.equal((await on.run(['id', '-un'], { sudo: false })).stdout, `${TEST_USER}\n`, 'sudo: false stays plain exec')
  t.equal(on.sessionsOpened, 1)
})

t.test('a timed-out command is killed with its process group and the session lives on', async (t) => {
  const { on } = await pair(t)
  const marker = '3003.25'
  const r = await on.run(`sleep ${marker} & sleep ${marker}; wait`, { timeoutMs: 700 })
  t.equal(r.code, 124, 'exit code 124')
  t.match(r.stderr, /timed out after 0\.7s/)
  t.ok(r.durationMs >= 700 && r.durationMs < 700 + 2_500, `ended near the deadline (${r.durationMs} ms)`)
  const left = await root.run(['pgrep', '-f', 'sleep 300[3].25'])
  t.equal(left.code, 1, `no process left (${left.stdout.trim()})`)
  t.equal((await on.run('echo next')).stdout, 'next\n', 'the next command runs')
  t.equal(on.sessionsOpened, 1, 'in the same session')
})

t.test('a busy session leaves concurrent commands to the exec path', async (t) => {
  const { on } = await pair(t)
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => on.run(['sh', '-c', 'sleep 0.05; echo "$1"', 'sh', String(i)])),
  )
  t.same(
    results.map((r) => r.stdout),
    results.map((_, i) => `${i}\n`),
  )
  t.equal(on.sessionsOpened, 1, 'one session for all of them')
})

/**
 * Wait (up to 10 s) until the connection has seen its killed helper's session close: on a loaded machine that
 * takes a while, and a command sent before then meets the dying session (reported as such, never re-run). A
 * connection holding the host lock opens the next session by itself at once (to take the lock again), so a
 * session opened since counts as the close seen: polling could miss the moment between the two.
 */
async function sessionGone(on: SshConnection, opensBefore: number): Promise<void> {
  const seen = () => !on.sessionOpen || on.sessionsOpened > opensBefore
  for (let j = 0; j < 500 && !seen(); j++) await new Promise((r) => setTimeout(r, 20))
  if (!seen()) throw new Error("the killed helper's session was not seen closed within 10 s")
}

t.test('a helper killed mid-command fails that command as unreachable; the next opens a new session', async (t) => {
  const { on } = await pair(t)
  const dir = (await root.run('mktemp -d', { check: true })).stdout.trim()
  t.teardown(() => root.run(['rm', '-rf', dir]))
  const helper = (await on.run(LAUNCHER_PID, { check: true })).stdout.trim()
  const running = on.run(`echo ran >> ${dir}/count; sleep 30`).catch((e) => e)
  // Wait (bounded) until the command has started, then kill the helper under it.
  for (let i = 0; i < 100 && (await root.run(['test', '-s', `${dir}/count`])).code !== 0; i++) {
    await new Promise((r) => setTimeout(r, 20))
  }
  process.kill(Number(helper), 'SIGKILL')
  const err = await running
  t.type(err, UnreachableError, 'the command in flight is reported unreachable')
  t.match(err.message, /not re-run/)
  t.equal((await on.run('echo again')).stdout, 'again\n', 'the next command works')
  t.equal(on.sessionsOpened, 2, 'through a new session')
  t.not((await on.run(LAUNCHER_PID)).stdout.trim(), helper, 'with a new helper')
  t.equal((await root.run(['cat', `${dir}/count`])).stdout, 'ran\n', 'the lost command ran once, never again')
  await root.run(['pkill', '-f', `${dir}/count; sleep 30`])
})

t.test('after three lost sessions the exec path takes over', async (t) => {
  const { on } = await pair(t)
  for (let i = 0; i < 3; i++) {
    const helper = (await on.run(LAUNCHER_PID, { check: true })).stdout.trim()
    t.equal(readFileSync(`/proc/${helper}/comm`, 'utf8').trim(), 'perl', `session ${i + 1} runs`)
    const opens = on.sessionsOpened
    process.kill(Number(helper), 'SIGKILL')
    await sessionGone(on, opens)
  }
  t.equal((await on.run(LAUNCHER_NAME, { check: true })).stdout, 'sudo\n', 'the command ran under its own sudo')
  t.equal(on.sessionsOpened, 3)
})

t.test('the session holds the host lock: another run finds it held until the connection closes', async (t) => {
  const dir = (await root.run('mktemp -d', { check: true })).stdout.trim()
  t.teardown(() => root.run(['rm', '-rf', dir]))
  const first = await SshConnection.connect(sshd.userSpec())
  const second = await SshConnection.connect(sshd.userSpec())
  t.teardown(() => second.close())
  await takeHostLock(first, { runId: 'first', description: 'pid 1 on control1' }, `${dir}/state`)
  t.equal(first.sessionsOpened, 1, 'taken in the one session, no sudo of its own')
  t.equal(first.commandCount, 0, 'and no command')
  await t.rejects(
    takeHostLock(second, { runId: 'second', description: 'pid 2 on control2' }, `${dir}/state`),
    /being converged by another run \(run first: pid 1 on control1\)/,
  )
  await first.close()
  await takeHostLock(second, { runId: 'second', description: 'pid 2 on control2' }, `${dir}/state`)
  t.equal((await root.run(['cat', `${dir}/state/run.holder`])).stdout, 'run second: pid 2 on control2\n')
})

t.test('a lost session takes the host lock again first; where another run has it, the host is lost', async (t) => {
  const dir = (await root.run('mktemp -d', { check: true })).stdout.trim()
  t.teardown(() => root.run(['rm', '-rf', dir]))
  const { on } = await pair(t)
  const other = await SshConnection.connect(sshd.userSpec())
  t.teardown(() => other.close())
  const lock = `${dir}/state/run.lock`
  await takeHostLock(on, { runId: 'mine', description: 'pid 1' }, `${dir}/state`)
  const killHelper = async () => {
    const helper = (await on.run(LAUNCHER_PID, { check: true })).stdout.trim()
    const opens = on.sessionsOpened
    process.kill(Number(helper), 'SIGKILL')
    await sessionGone(on, opens)
  }
  await killHelper()
  t.equal((await on.run('echo again')).stdout, 'again\n', 'the next command runs in a new session')
  t.equal(on.sessionsOpened, 2)
  await t.rejects(takeHostLock(other, { runId: 'other', description: 'pid 2' }, `${dir}/state`), /run mine: pid 1/)
  // Another run's lock on a new lock file (the helper keeps the old one until it dies).
  await root.run(['mv', lock, `${lock}.old`], { check: true })
  const others = await root.hold(['flock', '-n', lock, 'sh', '-c', 'echo held; exec cat > /dev/null'])
  t.teardown(() => others.release())
  t.equal(others.firstLine, 'held')
  await killHelper()
  const err = await on.run('echo unlocked').catch((e) => e)
  t.type(err, UnreachableError)
  t.match(err.message, /without its host lock/)
  await t.rejects(on.run('true', { sudo: false }), UnreachableError, 'nothing more runs on that host')
  t.equal(on.sessionsOpened, 3)
})
