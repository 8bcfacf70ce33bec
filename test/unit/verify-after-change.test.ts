/**
 * verifyAfterChange on scripted hosts through the real runner: when nothing changed or failed on any
 * host of the run and no handler is pending, the quick probe answers and the strict check does not
 * run; after a change on any host, with a handler pending, in check mode, or when the quick answer is
 * not good, the strict check runs as before.
 */
import t from 'tap'
import type { HostRun, Play, Task } from '../../lib/types.ts'
import { defineTask, file, noChange, verifyAfterChange } from '../../lib/tasks/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'

const QUICK = 'quick-health-read'
const STRICT = 'strict-health-check'
const exactly = (command: string) => new RegExp(`^${command}$`)
const GATE = 'Verify the service is healthy'

/** A gate whose strict check runs STRICT on the host, and whose quick check is QUICK exiting 0. */
function gate(): Task {
  const strict = defineTask(GATE, {}, async (ctx) => {
    if (ctx.check) return { change: false, skip: true, reason: 'check mode' }
    const r = await ctx.conn.run(STRICT)
    if (r.code !== 0) throw new Error('unhealthy')
    return noChange('strictly checked')
  })
  return verifyAfterChange(strict, { command: QUICK, judge: (r) => (r.code === 0 ? 'quick answer good' : undefined) })
}

/** One play: a file on every host (its content per host from `content`), then the gate. */
function plays(content: (host: string) => string, notifyFirst = false): Play[] {
  return [
    {
      name: 'verify',
      hosts: 'all',
      handlers: { 'Restart it': async () => undefined },
      tasks: async (h: HostRun) => {
        await h.do(file({ path: '/etc/demo.conf', content: content(h.name), mode: '0644' }))
        if (notifyFirst) h.notify('Restart it')
        await h.do(gate())
      },
    },
  ]
}

async function world(t: { teardown(fn: () => unknown): void }): Promise<ScriptedLab> {
  const lab = await scriptedLab({
    all: { hosts: { a1: { address: '10.0.0.1' }, a2: { address: '10.0.0.2' } }, vars: { ssh_user: 'root' } },
  })
  t.teardown(() => lab.cleanup())
  return lab
}

const ran = (lab: ScriptedLab, host: string, command: string) =>
  lab.host(host).commands.filter((c) => c === command).length

t.test('a settled run reads the quick probe and skips the strict check', async (t) => {
  const lab = await world(t)
  t.ok((await lab.run(plays(() => 'v1\n'))).success, 'first run converges')
  for (const host of ['a1', 'a2']) lab.host(host).resetCalls()
  const again = await lab.run(plays(() => 'v1\n'))
  t.ok(again.success)
  for (const host of ['a1', 'a2']) {
    t.equal(ran(lab, host, STRICT), 0, `${host}: no strict check`)
    t.equal(ran(lab, host, QUICK), 1, `${host}: one quick read`)
    const task = again.tasks(host).find((x) => x.name === GATE)
    t.equal(task?.status, 'ok')
    t.match(task?.reason, /nothing changed in this run; quick answer good/)
  }
})

t.test('a change on any host of the run keeps the strict check on every host', async (t) => {
  const lab = await world(t)
  t.ok((await lab.run(plays(() => 'v1\n'))).success)
  for (const host of ['a1', 'a2']) lab.host(host).resetCalls()
  // Only a1's file changes; a1 runs first and a2's gate comes after a1's change.
  const run = await lab.run(plays((host) => (host === 'a1' ? 'v2\n' : 'v1\n')))
  t.ok(run.success)
  t.equal(ran(lab, 'a1', STRICT), 1, 'a1 changed: strict check')
  t.equal(run.tasks('a1').find((x) => x.name === GATE)?.reason, 'strictly checked')
})

t.test('the first run of fresh hosts checks strictly', async (t) => {
  const lab = await world(t)
  t.ok((await lab.run(plays(() => 'v1\n'))).success)
  for (const host of ['a1', 'a2'])
    t.equal(ran(lab, host, STRICT), 1, `${host}: strict check after the file was written`)
})

t.test('a pending handler keeps the strict check', async (t) => {
  const lab = await world(t)
  t.ok((await lab.run(plays(() => 'v1\n'))).success)
  lab.host('a1').resetCalls()
  t.ok((await lab.run(plays(() => 'v1\n', true))).success)
  t.equal(ran(lab, 'a1', STRICT), 1)
})

t.test('a quick answer that is not good falls back to the strict check, which decides', async (t) => {
  const lab = await world(t)
  t.ok((await lab.run(plays(() => 'v1\n'))).success)
  lab.host('a1').on(exactly(QUICK), { code: 1 })
  lab.host('a1').on(exactly(STRICT), { code: 1 })
  lab.host('a1').resetCalls()
  const run = await lab.run(plays(() => 'v1\n'))
  t.notOk(run.success, 'the strict check fails the host')
  t.equal(ran(lab, 'a1', QUICK), 1)
  t.equal(ran(lab, 'a1', STRICT), 1)
  t.match(run.tasks('a1').find((x) => x.name === GATE)?.reason, /unhealthy/)
})

t.test('check mode runs the strict check (skipped there), not the quick probe', async (t) => {
  const lab = await world(t)
  t.ok((await lab.run(plays(() => 'v1\n'))).success)
  lab.host('a1').resetCalls()
  const run = await lab.run(
    plays(() => 'v1\n'),
    { check: true },
  )
  t.equal(ran(lab, 'a1', QUICK), 0)
  t.equal(run.tasks('a1').find((x) => x.name === GATE)?.status, 'skipped')
})
