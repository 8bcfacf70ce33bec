/**
 * The probe plan on real hosts (loopback sshd): a settled re-run asks the probes the last run asked in one
 * round trip per host at its start and answers every run of tasks from it (fewer round trips, the same
 * results); a change anywhere drops those early answers, so a later check sees the host as it is now; check
 * mode neither uses nor writes the plan; a probe that carries a secret on its input is asked early too, while
 * the plan file names the secret and never holds its value.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import t from 'tap'
import { loopbackHosts, type Lab } from './harness.ts'
import { defineTask, file, noChange } from '../../lib/tasks/index.ts'
import { probePlanFile } from '../../lib/play/probe-plan.ts'
import type { Play, Role, Vars } from '../../lib/types.ts'

let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(2)
  work = mkdtempSync('/tmp/hastack-probe-plan-')
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
})

/** Three runs of tasks (three gathers) of four files each, with this content. */
function filesPlay(dir: string, content: string): Play {
  return {
    name: 'files in three runs of tasks',
    hosts: 'all',
    tasks: async (h) => {
      for (const part of [1, 2, 3]) {
        const paths = [1, 2, 3, 4].map((n) => `${dir}/${h.name}-${part}-${n}`)
        await h.doAll(paths.map((path) => file({ path, content })))
      }
    },
  }
}

t.test('a settled re-run answers the probes of every run of tasks from one early round trip', async (t) => {
  const dir = mkdtempSync(`${work}/settled-`)
  const plan = probePlanFile(lab.inventory)
  rmSync(plan, { force: true })
  const converge = await lab.run([filesPlay(dir, 'one\n')])
  t.equal(converge.exitCode, 0)
  t.ok(existsSync(plan), 'the run wrote its probe plan')
  t.match(readFileSync(plan, 'utf8'), `${dir}/h1-3-4`, 'the plan names the probed paths')
  rmSync(plan)
  const withoutPlan = await lab.run([filesPlay(dir, 'one\n')])
  const withPlan = await lab.run([filesPlay(dir, 'one\n')])
  for (const run of [withoutPlan, withPlan]) {
    t.equal(run.exitCode, 0)
    for (const host of lab.hosts) t.equal(run.stats.get(host)?.changed, 0, `${host}: a no-op`)
  }
  for (const host of lab.hosts) {
    const [live, early] = [withoutPlan.stats.get(host)!.commands!, withPlan.stats.get(host)!.commands!]
    t.equal(live - early, 2, `${host}: three gathers became one early trip (${live} → ${early} round trips)`)
  }
})

t.test('a change drops the early answers: a later check reads the file the run just wrote', async (t) => {
  const dir = mkdtempSync(`${work}/changed-`)
  const twice = (content: string): Play => ({
    name: 'the same file twice, in two runs of tasks',
    hosts: 'all',
    tasks: async (h) => {
      await h.doAll([file({ path: `${dir}/${h.name}`, content, name: 'Write it' })])
      await h.doAll([file({ path: `${dir}/${h.name}`, content, name: 'Find it written' })])
    },
  })
  t.equal((await lab.run([twice('old\n')])).exitCode, 0)
  // The plan now names the file; the early answers of the next run read it as "old".
  const run = await lab.run([twice('new\n')])
  t.equal(run.exitCode, 0)
  for (const host of lab.hosts) {
    const tasks = run.stats.get(host)!.tasks
    t.same(
      tasks.map((task) => [task.task, task.changed]),
      [
        ['Write it', true],
        ['Find it written', false],
      ],
      `${host}: the second check saw the new content`,
    )
    t.equal(readFileSync(`${dir}/${host}`, 'utf8'), 'new\n')
  }
})

/** A role whose two checks each read a generated secret back through `cat`, the secret on the input. */
function secretReaderRole(seen: Set<string>): Role<Vars & { probe_token: string }> {
  const check = (token: string, name: string) => {
    const probe = { kind: 'run' as const, command: 'cat', stdin: `token=${token}\n` }
    return defineTask(name, { probes: [probe] }, async (ctx) => {
      const echoed = (await ctx.conn.run('cat', { stdin: probe.stdin })).stdout
      if (echoed !== probe.stdin) throw new Error('the answer is not the input')
      return noChange()
    })
  }
  return {
    name: 'secret_reader',
    description: 'Reads a generated secret back through its checks.',
    defaults: { probe_token: '' },
    schema: { probe_token: { type: 'string', secret: true, description: 'A generated token the checks read.' } },
    async tasks(h) {
      seen.add(h.vars.probe_token)
      await h.do(check(h.vars.probe_token, 'Read the token once'))
      await h.do(check(h.vars.probe_token, 'Read the token again'))
    },
  }
}

t.test('a probe carrying a secret is asked early; the plan names the secret and never holds its value', async (t) => {
  const seen = new Set<string>()
  const play: Play = { name: 'read a secret back', hosts: 'all', roles: [secretReaderRole(seen)] }
  const plan = probePlanFile(lab.inventory)
  rmSync(plan, { force: true })
  t.equal((await lab.run([play])).exitCode, 0)
  const kept = readFileSync(plan, 'utf8')
  t.match(kept, 'hastack-secret:probe_token', 'the plan names the secret')
  for (const token of seen) t.notMatch(kept, token, 'and never holds its value')
  rmSync(plan)
  const withoutPlan = await lab.run([play])
  const withPlan = await lab.run([play])
  for (const run of [withoutPlan, withPlan]) t.equal(run.exitCode, 0, 'every check read its input back')
  for (const host of lab.hosts) {
    const [live, early] = [withoutPlan.stats.get(host)!.commands!, withPlan.stats.get(host)!.commands!]
    t.equal(live - early, 1, `${host}: two reads became one early trip (${live} → ${early} round trips)`)
  }
})

t.test('check mode neither reads nor writes the plan', async (t) => {
  const dir = mkdtempSync(`${work}/check-`)
  const plan = probePlanFile(lab.inventory)
  t.equal((await lab.run([filesPlay(dir, 'one\n')])).exitCode, 0)
  const before = readFileSync(plan, 'utf8')
  const checked = await lab.run([filesPlay(dir, 'two\n')], ['--check'])
  t.equal(checked.exitCode, 0)
  t.equal(readFileSync(plan, 'utf8'), before, 'the plan is as the real run left it')
  for (const host of lab.hosts) t.equal(checked.stats.get(host)?.changed, 12, `${host}: every file would change`)
})

t.test("--json breaks the time outside the tasks down: each host's set-up and the run's own steps", async (t) => {
  const dir = mkdtempSync(`${work}/phases-`)
  const report = `${dir}/report.json`
  t.equal((await lab.run([filesPlay(dir, 'one\n')])).exitCode, 0)
  t.equal((await lab.run([filesPlay(dir, 'one\n')], ['--json', report])).exitCode, 0)
  const data = JSON.parse(readFileSync(report, 'utf8'))
  for (const host of lab.hosts) {
    const phases = data.hosts[host].phases
    for (const name of ['connectMs', 'lockMs', 'factsMs', 'planBatchMs', 'readyAtMs'])
      t.ok(phases[name] >= 0, `${host}: ${name} is measured (${phases[name]} ms)`)
    // Rounding each span to a millisecond may lose one per span.
    t.ok(phases.readyAtMs >= phases.connectMs + phases.lockMs - 2, `${host}: ready after its login and lock`)
  }
  const run = data.phases
  const steps = ['planReadMs', 'hostsReadyMs', 'playsMs', 'fingerprintsMs', 'closeMs', 'planWriteMs']
  for (const name of steps) t.ok(run[name] >= 0, `the run's ${name} is measured (${run[name]} ms)`)
  // The sessions close while the probe plan is written: those two steps overlap, the others follow each other.
  const stepsSum = steps.reduce((sum, name) => sum + run[name], 0) - Math.min(run.closeMs, run.planWriteMs)
  t.ok(stepsSum <= data.durationMs + steps.length, `the steps (${stepsSum} ms) fit in the run (${data.durationMs} ms)`)
  t.ok(run.tasksMs > 0, 'the tasks took time')
  t.equal(run.firstTaskAtMs + run.tasksMs + run.afterLastTaskMs, data.durationMs, 'before, during, after the tasks')
})
