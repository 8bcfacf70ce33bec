/**
 * Drills under load, as the seeds did them by hand, measured from a client's side: the load
 * generator's module sends votes through HAProxy while a drill kills the Redis primary, kills the
 * PostgreSQL primary, or stops an app host. Each time the app must recover by itself, lose no
 * acknowledged vote and apply none twice; the failed-request windows are printed. Each drill breaks
 * a host that carries nothing else's primary (the primaries are moved there first, or away), and
 * leaves the stack healthy: the host started again, back as a replica / streaming / in HAProxy.
 */
import { windowLines, reportText, type LoadReport } from '../../../playbooks/load/report.ts'
import { runLoad } from '../../../playbooks/load/run.ts'
import type { RequestRecord } from '../../../playbooks/load/stats.ts'
import { delay } from '../../../lib/tasks/wait.ts'
import { until } from '../until.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'
import { holders } from './vip.ts'
import {
  drillHost,
  haproxyServers,
  hostVars,
  moveRedisPrimary,
  movePatroniLeader,
  waitPatroniHealthy,
  waitRedisReplica,
} from './stack-state.ts'

const RATE = 30

interface LoadedRun {
  report: LoadReport
  records: RequestRecord[]
  /** When the drill acted, in seconds after the first vote. */
  actedAtS: number
}

/** Send votes at RATE for `durationS`; `actAtS` seconds in, run `act` (the fault). */
async function underLoad(
  ctx: SiteContext,
  durationS: number,
  drainTimeoutS: number,
  actAtS: number,
  act: () => Promise<void>,
): Promise<LoadedRun> {
  const records: RequestRecord[] = []
  let firstVote = 0
  const onRecord = (r: RequestRecord) => {
    if (!firstVote) firstVote = Date.now() - r.latencyMs - r.startMs
    records.push(r)
  }
  const load = runLoad({
    inventory: ctx.inventory,
    rate: RATE,
    durationS,
    timeoutMs: 5000,
    maxInFlight: 300,
    drainTimeoutS,
    onRecord,
  })
  await delay(actAtS * 1000)
  const acted = Date.now()
  // A failed drill still lets the (bounded) run end before the failure is reported.
  const failure = await act().then(
    () => undefined,
    (error: unknown) => error,
  )
  const report = await load
  if (failure) throw failure
  return { report, records, actedAtS: (acted - firstVote) / 1000 }
}

/** Start the drill's host again if it is down, whatever happened to the drill (a failed one too). */
function restartAfter(t: Tap, ctx: SiteContext, host: string) {
  t.teardown(async () => {
    const state = ctx.lab.status().find((s) => s.host === host)?.state
    if (state !== 'running') await ctx.lab.start(host)
  })
}

/** No vote lost or applied twice, and the app took votes again by itself: none failed in the last 5 s. */
function judge(t: Tap, run: LoadedRun, what: string) {
  const { report, records } = run
  t.comment(reportText(report))
  t.ok(report.reconciled, 'PostgreSQL was read back')
  t.equal(report.lost, 0, `lost 0 (${report.acknowledged} acknowledged, ${report.stored} stored)`)
  t.equal(report.duplicated, 0, 'duplicated 0')
  const lastFailure = Math.max(0, ...records.filter((r) => r.outcome !== 'acknowledged').map((r) => r.startMs / 1000))
  t.ok(
    lastFailure < report.durationS - 5,
    `the app takes votes again by itself after ${what} (last failed request sent at t+${lastFailure.toFixed(1)} s)`,
  )
  const windows = windowLines(report.failureWindows)
  t.comment(
    `${what} at t+${run.actedAtS.toFixed(1)} s; failed requests: ${windows.length ? windows.join('; ') : 'none'}`,
  )
}

export const redisPrimaryKill: SiteCheck = {
  name: 'drill redis: the Redis primary killed under load, the app recovers, no vote lost',
  destructive: true,
  async run(t, ctx) {
    const victim = drillHost(ctx, 'redis')
    restartAfter(t, ctx, victim)
    await moveRedisPrimary(ctx, victim)
    const run = await underLoad(ctx, 30, 60, 8, () => ctx.lab.kill(victim))
    judge(t, run, `kill of the Redis primary ${victim}`)
    await ctx.lab.start(victim)
    const started = Date.now()
    await waitRedisReplica(ctx, victim, 120_000)
    t.pass(
      `${victim} is a Redis replica again, link up, ${((Date.now() - started) / 1000).toFixed(1)} s after its start`,
    )
    await waitPatroniHealthy(ctx, 180_000)
  },
}

export const postgresPrimaryKill: SiteCheck = {
  name: 'drill postgres: the PostgreSQL primary killed under load, the app recovers, no vote lost',
  destructive: true,
  async run(t, ctx) {
    const victim = drillHost(ctx, 'postgres')
    restartAfter(t, ctx, victim)
    await movePatroniLeader(ctx, victim)
    // Patroni needs up to ttl + loop_wait to promote a replica; the worker catches up after that.
    const run = await underLoad(ctx, 40, 120, 8, () => ctx.lab.kill(victim))
    judge(t, run, `kill of the PostgreSQL primary ${victim}`)
    await ctx.lab.start(victim)
    const started = Date.now()
    const members = await waitPatroniHealthy(ctx, 180_000)
    const leader = members.find((m) => m.role === 'leader')!.name
    t.pass(`${victim} streams from ${leader} again, ${((Date.now() - started) / 1000).toFixed(1)} s after its start`)
    await waitRedisReplica(ctx, victim, 120_000)
  },
}

export const appHostStop: SiteCheck = {
  name: 'drill app host: an app host stopped under load leaves HAProxy within its checks, failures bounded',
  destructive: true,
  async run(t, ctx) {
    // The load balancer clients reach (the VIP holder, or the first haproxy host) stays up; another app
    // host stops, even when it is a load balancer too (then it is only the VIP's backup).
    const vip = ctx.lab.need().vip
    const [balancer] = vip ? await holders(ctx, vip) : ctx.hosts('haproxy')
    const victim = ctx.hosts('app').find((h) => h !== balancer)
    t.ok(victim, 'an app host other than the load balancer clients reach, to stop')
    if (!victim) return
    restartAfter(t, ctx, victim)
    // The stopped host then carries only replicas: both primaries move to the drill host.
    const primaries = drillHost(ctx, 'redis')
    await moveRedisPrimary(ctx, primaries)
    await movePatroniLeader(ctx, primaries)
    const v = await hostVars(ctx, balancer!)
    const [interMs, fall] = [Number(v.haproxy_check_interval_ms), Number(v.haproxy_check_fall)]
    t.same(await haproxyServers(ctx, balancer!, 'app_vote'), { [victim]: 'UP', ...upOthers(ctx, victim) })
    let stoppedAt = 0
    let downAfterS = Number.NaN
    const run = await underLoad(ctx, 30, 60, 6, async () => {
      stoppedAt = Date.now()
      await ctx.lab.stop(victim)
      await until(`HAProxy to mark ${victim} down`, 60_000, async () => {
        const status = (await haproxyServers(ctx, balancer!, 'app_vote'))[victim] ?? ''
        return !status.startsWith('UP')
      })
      downAfterS = (Date.now() - stoppedAt) / 1000
    })
    judge(t, run, `stop of the app host ${victim}`)
    const boundS = (interMs * fall) / 1000 + 10
    t.ok(
      downAfterS <= boundS,
      `HAProxy marks ${victim} down ${downAfterS.toFixed(1)} s after the stop (bound ${boundS} s)`,
    )
    const failed = run.report.failed
    const failBound = Math.ceil(RATE * ((interMs * (fall + 1)) / 1000 + 5))
    t.ok(failed <= failBound, `failed requests bounded: ${failed} (bound ${failBound})`)
    const downAtS = run.actedAtS + downAfterS
    const afterDown = run.records.filter((r) => r.outcome !== 'acknowledged' && r.startMs / 1000 > downAtS + 1)
    t.equal(afterDown.length, 0, 'no request fails once HAProxy has marked the host down')
    await ctx.lab.start(victim)
    const started = Date.now()
    await until(`HAProxy to send to ${victim} again`, 180_000, async () => {
      const status = (await haproxyServers(ctx, balancer!, 'app_vote'))[victim] ?? ''
      return status.startsWith('UP')
    })
    t.pass(`${victim} is back in HAProxy ${((Date.now() - started) / 1000).toFixed(1)} s after its start`)
    await waitRedisReplica(ctx, victim, 120_000)
    await waitPatroniHealthy(ctx, 180_000)
  },
}

function upOthers(ctx: SiteContext, victim: string): Record<string, string> {
  return Object.fromEntries(
    ctx
      .hosts('app')
      .filter((h) => h !== victim)
      .map((h) => [h, 'UP']),
  )
}
