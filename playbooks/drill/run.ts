/**
 * A drill: for each repetition, from a healthy stack (optionally with the primary moved to `--on` first),
 * find the victim in the live stack, start the load generator and the PostgreSQL probe, inject the fault
 * through the lab at t+faultAt, watch for the stack to notice, let the load end and drain, restore the lab
 * (start, thaw, heal) and wait (bounded) for a healthy stack; then figure the gaps, draw the picture and,
 * after the last repetition, write the JSON report. The lab is restored whatever happens.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Lab } from '../../lab/lab.ts'
import { mask } from '../../lib/output/mask.ts'
import { delay } from '../../lib/tasks/wait.ts'
import type { Inventory } from '../../lib/types.ts'
import { renderSvg } from '../../scripts/pictures/vega-svg.ts'
import { postgresView, redisView } from '../day2/health.ts'
import { limitsOf, readStack } from '../day2/stack-state.ts'
import { switchPostgres, switchRedis } from '../day2/switch.ts'
import { appEndpoints, runLoad } from '../load/run.ts'
import type { RequestRecord } from '../load/stats.ts'
import { drillChartSpec } from './chart.ts'
import { detectorFor, watchDetection } from './detect.ts'
import type { DrillOptions, Fault } from './options.ts'
import { lostProbeWrites, startPgProbe } from './probe.ts'
import { summarize, type DrillReport, type RepetitionReport } from './report.ts'
import { liveFleet, waitHealthy, type LiveFleet } from './stack.ts'
import { clientBalancer, findVictim } from './targets.ts'
import { round, widestGap, writeGap, type Gap, type Sample } from './timeline.ts'

export interface DrillContext {
  inventory: Inventory
  lab: Lab
  options: DrillOptions
  say(line: string): void
}

/** How long the stack may take to be healthy again after the restore (a killed host boots, rejoins, catches up). */
const HEALTHY_TIMEOUT_MS = 300_000

async function inject(lab: Lab, fault: Fault, host: string): Promise<void> {
  if (fault === 'kill') await lab.kill(host)
  else if (fault === 'stop') await lab.stop(host)
  else if (fault === 'freeze') await lab.freeze(host)
  else await lab.partition(host)
}

async function restore(lab: Lab, fault: Fault, host: string): Promise<void> {
  if (fault === 'freeze') await lab.thaw(host)
  else if (fault === 'partition') await lab.heal(host)
  else if (lab.status().find((s) => s.host === host)?.state !== 'running') await lab.start(host)
}

/** Move a primary to `to` when it is elsewhere (a Patroni switchover or a Sentinel failover), bounded. */
export async function placePrimary(
  live: LiveFleet,
  which: 'postgres-primary' | 'redis-primary',
  to: string,
  say: (line: string) => void,
): Promise<void> {
  const fleet = live.fleet
  const state = await readStack(fleet)
  if (which === 'postgres-primary') {
    const from = postgresView(state).leader
    if (!from || from === to) return
    say(`moving the Patroni leader from ${from} to ${to}`)
    await switchPostgres(fleet, limitsOf(fleet), { from, to }, 120_000)
  } else {
    const from = redisView(state).primary
    if (!from || from === to) return
    say(`moving the Redis primary from ${from} to ${to}`)
    await switchRedis(fleet, limitsOf(fleet), state, { from, to }, 120_000)
  }
}

/** A gap's times in whole milliseconds, for the report. */
function roundedGap(gap: Gap): Gap {
  return { ...gap, gapMs: Math.round(gap.gapMs), fromMs: Math.round(gap.fromMs), toMs: Math.round(gap.toMs) }
}

function voteSample(r: RequestRecord): Sample {
  const ok = r.outcome === 'acknowledged'
  return { stream: 'vote', startMs: r.startMs, endMs: r.startMs + r.latencyMs, ok, ...(ok ? {} : { reason: r.reason }) }
}

/** One repetition; `stamp` names its picture. */
export async function drillRepetition(ctx: DrillContext, n: number, stamp: string): Promise<RepetitionReport> {
  const { inventory, lab, options: o, say } = ctx
  await waitHealthy(inventory, say, HEALTHY_TIMEOUT_MS)
  const live = liveFleet(inventory, say)
  let victim: string | undefined
  let injected = false
  let restored = false
  let load: Promise<unknown> | undefined
  try {
    if (o.on) await placePrimary(live, o.target as 'postgres-primary' | 'redis-primary', o.on, say)
    const state = await readStack(live.fleet)
    const found = findVictim(o.target, state, live.fleet.members)
    victim = found.host
    const detector = detectorFor(live.fleet, o.target, victim, clientBalancer(state, live.fleet.members))
    say(`#${n}: ${o.fault} ${victim} (${found.why}) at t+${o.faultAtS} s of ${o.durationS} s of votes`)

    const samples: Sample[] = []
    let origin: number | undefined
    let firstVote!: () => void
    const first = new Promise<void>((resolve) => (firstVote = resolve))
    const onRecord = (r: RequestRecord) => {
      origin ??= performance.now() - r.latencyMs - r.startMs
      firstVote()
      samples.push(voteSample(r))
    }
    const running = runLoad({
      inventory: inventory.file,
      rate: o.rate,
      durationS: o.durationS,
      timeoutMs: 5000,
      maxInFlight: 300,
      drainTimeoutS: 120,
      onRecord,
    })
    load = running.catch(() => undefined)
    await Promise.race([first, delay(15_000)])
    if (origin === undefined) throw new Error('no vote request ended within 15 s of the start')
    const t0 = origin
    const at = () => performance.now() - t0
    const endMs = o.durationS * 1000
    const db = (await appEndpoints(inventory.file)).database
    const probePrefix = `drill-${stamp}-${randomBytes(2).toString('hex')}-${n}`
    const probe = startPgProbe(db, probePrefix, () => t0, o.durationS + 10)
    await delay(Math.max(0, o.faultAtS * 1000 - at()))
    const faultMs = at()
    const watching = watchDetection(detector, t0 + endMs)
    injected = true
    await inject(lab, o.fault, victim)
    await delay(Math.max(0, endMs - at()))
    const probed = await probe.stop()
    const detectedAt = await watching
    // Restored before the load's drain: a frozen or cut-off worker may still hold acknowledged votes.
    const restoredMs = at()
    await restore(lab, o.fault, victim)
    restored = true
    const votes = await running

    const healthyAfterS = await waitHealthy(inventory, say, HEALTHY_TIMEOUT_MS)
    const pgLost = await lostProbeWrites(db, probePrefix, probed.acknowledged)

    const all = [...samples, ...probed.samples]
    const gaps = { vote: writeGap(all, 'vote', faultMs, endMs), pg: writeGap(all, 'pg', faultMs, endMs) }
    const gap = widestGap([gaps.vote, gaps.pg])
    const detectS = detectedAt === undefined ? undefined : round((detectedAt - t0 - faultMs) / 1000)
    const picture = `${stamp}-${o.target}-${o.fault}-${n}.svg`
    const title =
      `${o.fault} ${o.target} (${victim}), ${String(live.fleet.vars(victim).failover_profile)} profile: ` +
      `write gap ${(gap.gapMs / 1000).toFixed(1)} s, detected after ${detectS?.toFixed(1) ?? '-'} s, ` +
      `${votes.failed} failed, ${votes.lost + pgLost} lost`
    const spec = drillChartSpec(all, { title, faultMs, detectedMs: detectedAt && detectedAt - t0, gap, restoredMs })
    await mkdir(o.out, { recursive: true })
    await writeFile(join(o.out, picture), await renderSvg(spec))
    const pgAcked = probed.samples.filter((s) => s.ok).length
    const report: RepetitionReport = {
      repetition: n,
      victim,
      why: found.why,
      faultAtS: round(faultMs / 1000),
      detectS,
      recoverS: round(gap.gapMs / 1000),
      gapStream: gap.stream,
      recovered: gaps.vote.recovered && gaps.pg.recovered,
      failed: votes.failed,
      lost: votes.lost + pgLost,
      duplicated: votes.duplicated,
      votes: {
        requests: votes.requests,
        acknowledged: votes.acknowledged,
        stored: votes.stored,
        storedUnacknowledged: votes.storedUnacknowledged,
        latencyMs: votes.latencyMs,
        failureWindows: votes.failureWindows,
        drained: votes.drain.drained,
        reconciled: votes.reconciled,
      },
      pg: { attempts: probed.samples.length, acknowledged: pgAcked, lost: pgLost },
      gaps: { vote: roundedGap(gaps.vote), pg: roundedGap(gaps.pg) },
      healthyAfterS: round(healthyAfterS),
      picture,
    }
    return report
  } finally {
    if (injected && !restored && victim) await restore(lab, o.fault, victim).catch(() => undefined)
    await load
    await live.close()
  }
}

/** Every repetition, then the JSON report into `--out` (secrets masked); returns the report and its path. */
export async function runDrill(ctx: DrillContext): Promise<{ report: DrillReport; file: string }> {
  const o = ctx.options
  const startedAt = new Date().toISOString()
  const stamp = startedAt.replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase()
  const first = ctx.inventory.hosts.values().next().value
  const repetitions: RepetitionReport[] = []
  for (let n = 1; n <= o.repeat; n++) repetitions.push(await drillRepetition(ctx, n, stamp))
  const report: DrillReport = {
    drill: {
      fault: o.fault,
      target: o.target,
      failoverProfile: String(first?.vars.failover_profile ?? 'default'),
      inventory: ctx.inventory.file,
      lab: ctx.lab.name,
      rate: o.rate,
      durationS: o.durationS,
      faultAtS: o.faultAtS,
      repeat: o.repeat,
      startedAt,
    },
    repetitions,
    summary: summarize(repetitions),
  }
  const file = join(o.out, `${stamp}-${o.target}-${o.fault}.json`)
  await mkdir(o.out, { recursive: true })
  await writeFile(file, mask(JSON.stringify(report, null, 2)) + '\n')
  return { report, file }
}
