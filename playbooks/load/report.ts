/**
 * The load run's report: the figures the JSON holds (the reconciliation's counts at the top level)
 * and the text printed at the end of a run.
 */
import type { Reconciliation } from './reconcile.ts'
import type { FailureWindow, Latency } from './stats.ts'

export interface LoadReport extends Reconciliation {
  startedAt: string
  /** `host:port` the votes went to. */
  target: string
  rate: number
  durationS: number
  /** Every voter id of the run starts with it. */
  prefix: string
  requests: number
  successRate: number
  /** Latency of the acknowledged votes, in milliseconds. */
  latencyMs: Latency
  failureWindows: FailureWindow[]
  /** Votes sent a second time (same id) after their first connection was cut before any answer. */
  resent: number
  /** The wait for the worker: how long, whether every acknowledged vote arrived, the error if none could be read. */
  drain: { seconds: number; drained: boolean; error?: string }
  /** False when PostgreSQL could not be read at all (the counts of stored votes then mean nothing). */
  reconciled: boolean
}

/** 0 when every acknowledged vote is stored exactly once, 2 when one was lost or applied twice, 3 unreconciled. */
export function exitCodeOf(report: LoadReport): number {
  if (!report.reconciled) return 3
  return report.lost > 0 || report.duplicated > 0 ? 2 : 0
}

function reasonsText(reasons: Record<string, number>): string {
  return Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason}: ${n}`)
    .join(', ')
}

/** One line per failure window, `t+12.3 s .. t+17.8 s: 85 failed (503: 80, timeout: 5)`. */
export function windowLines(windows: FailureWindow[]): string[] {
  return windows.map(
    (w) => `t+${w.startS.toFixed(1)} s .. t+${w.endS.toFixed(1)} s: ${w.count} failed (${reasonsText(w.reasons)})`,
  )
}

export function reportText(r: LoadReport): string {
  const percent = (r.successRate * 100).toFixed(1)
  const l = r.latencyMs
  const lines = [
    `load: ${r.requests} votes to ${r.target} at ${r.rate}/s for ${r.durationS} s (voters ${r.prefix}-*)`,
    `  acknowledged ${r.acknowledged} of ${r.requests} (${percent} %); latency p50 ${l.p50} ms, p95 ${l.p95} ms, ` +
      `p99 ${l.p99} ms, max ${l.max} ms`,
    r.failureWindows.length ? '  requests failed in:' : '  no request failed',
    ...windowLines(r.failureWindows).map((line) => `    ${line}`),
    ...(r.resent ? [`  sent again after a connection cut before any answer: ${r.resent} (same vote id)`] : []),
  ]
  if (!r.reconciled) lines.push(`  NOT reconciled: PostgreSQL could not be read (${r.drain.error ?? 'no answer'})`)
  else {
    const waited = `${r.drain.seconds.toFixed(1)} s${r.drain.drained ? '' : ', gave up waiting'}`
    lines.push(
      `  reconciled after ${waited}: acknowledged ${r.acknowledged}, stored ${r.stored}, lost ${r.lost}, ` +
        `duplicated ${r.duplicated}, failed ${r.failed} (of which stored anyway ${r.storedUnacknowledged})`,
    )
    if (r.lost) lines.push(`  lost voters (first ${r.lostVoters.length}): ${r.lostVoters.join(' ')}`)
    if (r.duplicated)
      lines.push(`  duplicated voters (first ${r.duplicatedVoters.length}): ${r.duplicatedVoters.join(' ')}`)
  }
  return lines.join('\n')
}
