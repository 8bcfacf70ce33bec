/**
 * What the load generator makes of its requests' outcomes: the success rate, latency percentiles of
 * the acknowledged votes, and the windows in which requests failed (failures closer together than a
 * gap form one window). Pure functions over the recorded outcomes.
 */

/** How one vote request ended: acknowledged (201 with an id), or why not. */
export type Outcome = 'acknowledged' | 'rejected' | 'timeout' | 'error' | 'skipped'

export interface RequestRecord {
  /** The unique voter id the request carried. */
  voter: string
  /** When it was sent, in milliseconds after the run's start. */
  startMs: number
  /** How long until it ended (the response, the timeout or the error). */
  latencyMs: number
  outcome: Outcome
  /** The HTTP status, when a response came. */
  status?: number
  /** The vote id the app acknowledged. */
  id?: string
  /** A short reason for a failure: `503`, `timeout`, `ECONNREFUSED`, `in-flight limit`. */
  reason?: string
  /** Why the vote was sent a second time (the first connection's error, e.g. `ECONNRESET`), when it was. */
  retried?: string
}

export interface Latency {
  p50: number
  p95: number
  p99: number
  max: number
}

export interface FailureWindow {
  /** Seconds after the run's start: the first failed request's start and the last one's end. */
  startS: number
  endS: number
  count: number
  /** How many failed for each reason. */
  reasons: Record<string, number>
}

/** The nearest-rank percentile (p in 0..100) of values; 0 for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export function latencyOf(records: RequestRecord[]): Latency {
  const ms = records.filter((r) => r.outcome === 'acknowledged').map((r) => r.latencyMs)
  const round = (x: number) => Math.round(x * 10) / 10
  return {
    p50: round(percentile(ms, 50)),
    p95: round(percentile(ms, 95)),
    p99: round(percentile(ms, 99)),
    max: round(ms.length ? Math.max(...ms) : 0),
  }
}

/** Acknowledged requests as a share of all (1 when there were none). */
export function successRate(records: RequestRecord[]): number {
  if (records.length === 0) return 1
  return records.filter((r) => r.outcome === 'acknowledged').length / records.length
}

/**
 * Failed requests grouped into windows: a failure that starts within `gapMs` of the previous
 * window's last failure joins it; otherwise it opens a new one.
 */
export function failureWindows(records: RequestRecord[], gapMs = 1000): FailureWindow[] {
  const failed = records.filter((r) => r.outcome !== 'acknowledged').sort((a, b) => a.startMs - b.startMs)
  const windows: {
    startMs: number
    lastStartMs: number
    endMs: number
    count: number
    reasons: Record<string, number>
  }[] = []
  for (const r of failed) {
    const open = windows[windows.length - 1]
    const reason = r.reason ?? r.outcome
    if (open && r.startMs - open.lastStartMs <= gapMs) {
      open.lastStartMs = r.startMs
      open.endMs = Math.max(open.endMs, r.startMs + r.latencyMs)
      open.count++
      open.reasons[reason] = (open.reasons[reason] ?? 0) + 1
    } else {
      windows.push({
        startMs: r.startMs,
        lastStartMs: r.startMs,
        endMs: r.startMs + r.latencyMs,
        count: 1,
        reasons: { [reason]: 1 },
      })
    }
  }
  const seconds = (ms: number) => Math.round(ms / 100) / 10
  return windows.map((w) => ({
    startS: seconds(w.startMs),
    endS: seconds(w.endMs),
    count: w.count,
    reasons: w.reasons,
  }))
}
