/**
 * The day-2 playbooks on the converged stack (destructive: primaries move, every service restarts):
 * a switchover of PostgreSQL and of Redis with their write pauses printed (goal ≤ 2 s) and where
 * the Redis pause went; a rolling restart of the whole stack (etcd, PostgreSQL, Redis, Sentinels,
 * the app hosts drained first, the HAProxy hosts with the VIP moved first) under the load generator,
 * ending healthy with `failed 0` and `lost 0` and each switchover's pause printed; and with one
 * replica's Patroni stopped on purpose a rolling restart that refuses to start and says why.
 * Leaves the stack healthy.
 */
import type { Tap, SiteCheck, SiteContext } from './context.ts'
import { reportText, type LoadReport } from '../../../playbooks/load/report.ts'
import { runLoad } from '../../../playbooks/load/run.ts'
import type { RollingRestartReport } from '../../../playbooks/day2/rolling.ts'
import { delay } from '../../../lib/tasks/wait.ts'
import { actualPrimaries, stackStatus, waitHealthy } from './status.ts'

interface SwitchoverJson {
  from?: string
  to?: string
  refused?: string
  pauseMs?: number
  writes?: { attempts: number; acknowledged: number; failures: number }
  timeline?: string[]
}

/**
 * Votes per second during the roll, and the most seconds they are sent: the load is stopped a few
 * seconds after the roll ends, so the bound only has to exceed the roll on a busy machine (392 s on a
 * slow one on 2026-12-02, against 360 then).
 */
const ROLL_LOAD = { rate: 20, durationS: 900 }
/** How long the load goes on after the roll ended (the last step's votes settle). */
const AFTER_ROLL_MS = 5000

export async function switchover(t: Tap, ctx: SiteContext, component: 'postgres' | 'redis') {
  const before = await actualPrimaries(ctx)
  const run = await ctx.playbook('playbooks/switchover.ts', `switchover-${component}`, ['--component', component])
  if (run.exitCode !== 0) t.comment(run.tail)
  t.equal(run.exitCode, 0, `${component} switchover succeeds`)
  const report = run.report as unknown as SwitchoverJson
  const after = await actualPrimaries(ctx)
  t.not(after[component], before[component], `${component}: the primary moved from ${before[component]}`)
  t.equal(report.to, after[component], 'the report names the new primary')
  const pause = (report.pauseMs ?? NaN) / 1000
  t.comment(
    `${component} switchover ${report.from} → ${report.to}: write pause ${pause.toFixed(2)} s (goal ≤ 2 s), ` +
      `writes ${JSON.stringify(report.writes)}`,
  )
  t.ok(report.writes && report.writes.acknowledged > 0, 'the writer wrote through HAProxy')
  if (report.timeline) t.comment(`where the ${component} pause went:\n${report.timeline.join('\n')}`)
}

/** The failed votes of each failure window, by the roll step that was running when the window began. */
function failuresByStep(votes: LoadReport, roll: RollingRestartReport): Map<string, number> {
  const rollStart = Date.parse(roll.startedAt)
  const byStep = new Map<string, number>()
  for (const w of votes.failureWindows) {
    const at = (Date.parse(votes.startedAt) + w.startS * 1000 - rollStart) / 1000
    const timing = roll.timings.find((s) => at >= s.startedS && at <= s.startedS + s.seconds)
    const step = timing?.step ?? (at < 0 ? 'before the roll' : 'after the roll')
    byStep.set(step, (byStep.get(step) ?? 0) + w.count)
  }
  return byStep
}

export const day2: SiteCheck = {
  name: 'day-2: switchovers with measured pauses, a full rolling restart, a refusal on an unhealthy replica',
  destructive: true,
  async run(t, ctx) {
    await waitHealthy(ctx, 'day2-start')
    await t.test('switchover of PostgreSQL', (t) => switchover(t, ctx, 'postgres'))
    await t.test('switchover of Redis', (t) => switchover(t, ctx, 'redis'))
    await t.test('a rolling restart of the whole stack under load ends healthy, failed 0, lost 0', async (t) => {
      const stop = new AbortController()
      const load = runLoad({
        inventory: ctx.inventory,
        ...ROLL_LOAD,
        timeoutMs: 5000,
        maxInFlight: 300,
        drainTimeoutS: 60,
        stop: stop.signal,
      })
      const loadStarted = Date.now()
      const run = await ctx.playbook('playbooks/rolling-restart.ts', 'rolling-restart', [], 1_200_000)
      const rollSeconds = (Date.now() - loadStarted) / 1000
      setTimeout(() => stop.abort(), AFTER_ROLL_MS)
      const votes = await load
      if (run.exitCode !== 0) t.comment(run.tail)
      t.equal(run.exitCode, 0)
      const report = run.report as unknown as RollingRestartReport
      t.equal(report.done.length, report.steps.length, `${report.steps.length} steps done`)
      t.ok(
        report.steps.some((s) => s.startsWith('app: drain')),
        'the app hosts were in the roll',
      )
      t.ok(
        report.steps.some((s) => s.includes('move the VIP away')),
        'the VIP holder was in the roll',
      )
      t.comment(`rolling restart: ${report.steps.length} steps in ${report.seconds.toFixed(0)} s`)
      for (const p of report.pauses) {
        t.comment(`roll: ${p.component} switchover from ${p.from}, write pause ${(p.pauseMs / 1000).toFixed(2)} s`)
        if (p.timeline) t.comment(`where that ${p.component} pause went:\n${p.timeline.join('\n')}`)
      }
      t.equal(report.pauses.length, 2, 'both switchovers measured')
      t.comment(reportText(votes))
      t.ok(rollSeconds < ROLL_LOAD.durationS, `the whole roll (${rollSeconds.toFixed(0)} s) ran under load`)
      const during = failuresByStep(votes, report)
      for (const [step, count] of during) t.comment(`${count} vote(s) failed during "${step}"`)
      t.equal(votes.failed, 0, "failed 0: the vote app's retry of a cut push outlasts the Redis switchover")
      t.equal(votes.lost, 0, 'lost 0')
      t.equal(votes.duplicated, 0, 'duplicated 0')
      t.equal((await stackStatus(ctx, 'after-roll')).exitCode, 0, 'status: healthy after the roll')
    })
    await t.test('--upgrade and --reboot of one host: it is emptied first and comes back healthy', async (t) => {
      const host = ctx.hosts('postgres').find((h) => !ctx.hosts('haproxy').includes(h))!
      const args = ['--limit', host]
      const upgrade = await ctx.playbook(
        'playbooks/rolling-restart.ts',
        'roll-upgrade',
        ['--upgrade', ...args],
        900_000,
      )
      if (upgrade.exitCode !== 0) t.comment(upgrade.tail)
      t.equal(upgrade.exitCode, 0, `--upgrade --limit ${host} ends healthy`)
      t.match(upgrade.stdout, new RegExp(`${host}: \\d+ pending`), 'it says how many updates are pending')
      t.comment(
        upgrade.stdout
          .split('\n')
          .filter((l) => / pending|updated;|major version/.test(l))
          .join('\n'),
      )
      // A lab host is an nspawn container: its reboot ends nspawn (exit 133) rather than booting again,
      // so the check starts a host that stopped, as a VM's firmware would boot it again.
      let started = 0
      let rebooting = true
      const firmware = (async () => {
        for (let i = 0; i < 3000 && rebooting; i++) {
          if (ctx.lab.status().find((s) => s.host === host)?.state === 'stopped') {
            await ctx.lab.start(host)
            started++
          }
          await delay(200)
        }
      })()
      const reboot = await ctx.playbook('playbooks/rolling-restart.ts', 'roll-reboot', ['--reboot', ...args], 600_000)
      rebooting = false
      await firmware
      if (reboot.exitCode !== 0) t.comment(reboot.tail)
      t.equal(reboot.exitCode, 0, `--reboot --limit ${host} ends healthy`)
      const report = reboot.report as unknown as RollingRestartReport
      t.same(report.done, report.steps, 'the host step done')
      t.comment(`--reboot ${host}: ${report.seconds.toFixed(0)} s; the lab started it ${started} time(s)`)
      t.comment(
        reboot.stdout
          .split('\n')
          .filter((l) => /back with every unit|write pause|VIP moved/.test(l))
          .join('\n'),
      )
    })
    await t.test('with one replica unhealthy the rolling restart refuses to start and says why', async (t) => {
      const { postgres: leader } = await actualPrimaries(ctx)
      const replica = ctx.hosts('postgres').find((h) => h !== leader)!
      await ctx.lab.ssh(replica, 'sudo systemctl stop patroni')
      t.teardown(() => ctx.lab.ssh(replica, 'sudo systemctl start patroni').then(() => undefined))
      try {
        const run = await ctx.playbook('playbooks/rolling-restart.ts', 'rolling-refused', [], 300_000)
        t.equal(run.exitCode, 2, 'exit 2')
        t.match(run.stdout, new RegExp(`REFUSED: the stack is not healthy, nothing was touched: .*${replica}`))
        const report = run.report as unknown as { done: string[]; refused?: string }
        t.same(report.done, [], 'no step done')
      } finally {
        await ctx.lab.ssh(replica, 'sudo systemctl start patroni')
      }
      await waitHealthy(ctx, 'after-refusal')
      t.pass(`${replica} back, the stack healthy`)
    })
  },
}
