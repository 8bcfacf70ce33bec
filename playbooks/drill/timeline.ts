/**
 * A repetition's timeline as clients saw it, and the figures drawn from it: every vote request and
 * every PostgreSQL probe write as a sample (when it started and ended, relative to the first vote, and
 * whether it was acknowledged); the write gap of a stream (the longest time without an acknowledged
 * write from the last one before the fault on); and the median and worst of a figure over repetitions.
 * Pure functions.
 */

/** `vote`: a vote through the app (acknowledged once Redis holds it); `pg`: a row through HAProxy's write port. */
export type Stream = 'vote' | 'pg'

export interface Sample {
  stream: Stream
  /** Milliseconds after the first vote. */
  startMs: number
  endMs: number
  ok: boolean
  /** Why it failed: `503`, `timeout`, `ECONNREFUSED`, a PostgreSQL error's first words. */
  reason?: string
}

export interface Gap {
  stream: Stream
  /** The longest time without an acknowledged write, ms: from the last acknowledgement before it to the next. */
  gapMs: number
  fromMs: number
  toMs: number
  /** False when the stream acknowledged nothing in its last second (it had not recovered by the end). */
  recovered: boolean
}

/**
 * The write gap of one stream: the longest interval between acknowledgements, counting from the last one
 * before the fault (or the fault itself when there was none) to the end of sending (`endMs`).
 */
export function writeGap(samples: Sample[], stream: Stream, faultMs: number, endMs: number): Gap {
  const acks = samples
    .filter((s) => s.stream === stream && s.ok)
    .map((s) => s.endMs)
    .sort((a, b) => a - b)
  const before = acks.filter((t) => t <= faultMs)
  const times = [before.length ? before[before.length - 1]! : faultMs, ...acks.filter((t) => t > faultMs)]
  const last = times[times.length - 1]!
  const recovered = endMs - last <= 1000
  if (!recovered) times.push(endMs)
  let gap: Gap = { stream, gapMs: 0, fromMs: faultMs, toMs: faultMs, recovered }
  for (let i = 1; i < times.length; i++) {
    const ms = times[i]! - times[i - 1]!
    if (ms > gap.gapMs) gap = { stream, gapMs: ms, fromMs: times[i - 1]!, toMs: times[i]!, recovered }
  }
  return gap
}

/** The wider of the streams' gaps: what a client writing through either saw. */
export function widestGap(gaps: Gap[]): Gap {
  return gaps.reduce((a, b) => (b.gapMs > a.gapMs ? b : a))
}

export interface Spread {
  median: number
  worst: number
}

/** Median and worst (highest) of figures; undefined entries (never measured) are left out. */
export function spread(values: (number | undefined)[]): Spread | undefined {
  const known = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b)
  if (known.length === 0) return undefined
  const mid = Math.floor(known.length / 2)
  const median = known.length % 2 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2
  return { median: round(median), worst: round(known[known.length - 1]!) }
}

/** Two decimal places: enough for figures of a few seconds. */
export function round(x: number): number {
  return Math.round(x * 100) / 100
}
