/**
 * The day-2 playbooks on the converged stack (destructive: primaries move, every service restarts):
 * a switchover of PostgreSQL and of Redis with their write pauses printed (goal ≤ 2 s), a rolling
 * restart of the whole stack that ends healthy, and with one replica's Patroni stopped on purpose a
 * rolling restart that refuses to start and says why. Leaves the stack healthy.
 */
import type { Tap, SiteCheck, SiteContext } from './context.ts'
import { until } from '../until.ts'
import { actualPrimaries, stackStatus } from './status.ts'

interface SwitchoverJson {
  from?: string
  to?: string
  refused?: string
  pauseMs?: number
  writes?: { attempts: number; acknowledged: number; failures: number }
}

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
    `${component} switchover write pause: ${pause.toFixed(2)} s (goal ≤ 2 s), writes ${JSON.stringify(report.writes)}`,
  )
  t.ok(report.writes && report.writes.acknowledged > 0, 'the writer wrote through HAProxy')
}

/** Wait (bounded) until status.ts calls the stack healthy again. */
async function healthyAgain(ctx: SiteContext, label: string): Promise<void> {
  await until(`the stack healthy (${label})`, 180_000, async () => (await stackStatus(ctx, label)).exitCode === 0, 5000)
}

export const day2: SiteCheck = {
  name: 'day-2: switchovers with measured pauses, a full rolling restart, a refusal on an unhealthy replica',
  destructive: true,
  async run(t, ctx) {
    await healthyAgain(ctx, 'day2-start')
    await t.test('switchover of PostgreSQL', (t) => switchover(t, ctx, 'postgres'))
    await t.test('switchover of Redis', (t) => switchover(t, ctx, 'redis'))
    await t.test('a rolling restart of the whole stack ends healthy', async (t) => {
      const run = await ctx.playbook('playbooks/rolling-restart.ts', 'rolling-restart', [], 1_200_000)
      if (run.exitCode !== 0) t.comment(run.tail)
      t.equal(run.exitCode, 0)
      const report = run.report as unknown as { steps: string[]; done: string[]; seconds: number }
      t.equal(report.done.length, report.steps.length, `${report.steps.length} steps done`)
      t.comment(`rolling restart: ${report.steps.length} steps in ${report.seconds.toFixed(0)} s`)
      t.equal((await stackStatus(ctx, 'after-roll')).exitCode, 0, 'status: healthy after the roll')
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
      await healthyAgain(ctx, 'after-refusal')
      t.pass(`${replica} back, the stack healthy`)
    })
  },
}
