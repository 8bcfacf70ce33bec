/**
 * What a drill reports: per repetition the victim, when the fault came, the time to detect (until the
 * stack itself noticed: a new leader or primary named, the VIP moved, the server marked down, the member
 * seen unhealthy), the time to recover (the write gap as clients saw it), failed requests, lost and
 * duplicated writes, and how long the stack took to be healthy again after the lab was restored; over
 * the repetitions the median and the worst. Also the text printed at the end and the exit code.
 */
import type { FailureWindow, Latency } from '../load/stats.ts'
import { spread, type Gap, type Spread, type Stream } from './timeline.ts'
import type { Fault, Target } from './options.ts'

export interface RepetitionReport {
  repetition: number
  victim: string
  why: string
  /** Seconds after the first vote. */
  faultAtS: number
  /** Seconds from the fault until the stack noticed it; absent when it did not within the load. */
  detectS?: number
  /** The write gap as clients saw it, in seconds (the wider of the vote and PostgreSQL streams). */
  recoverS: number
  gapStream: Stream
  /** Every stream acknowledged writes again before the load ended. */
  recovered: boolean
  /** Vote requests not acknowledged. */
  failed: number
  /** Acknowledged writes missing afterwards (votes and PostgreSQL rows). */
  lost: number
  /** Votes applied twice. */
  duplicated: number
  votes: {
    requests: number
    acknowledged: number
    stored: number
    storedUnacknowledged: number
    latencyMs: Latency
    failureWindows: FailureWindow[]
    drained: boolean
    reconciled: boolean
  }
  pg: { attempts: number; acknowledged: number; lost: number }
  gaps: Record<Stream, Gap>
  /** Seconds from the lab's restore (start, thaw, heal) until the whole stack read healthy. */
  healthyAfterS: number
  /** The picture's file name, beside the report. */
  picture: string
}

export interface DrillSummary {
  detectS?: Spread
  recoverS?: Spread
  failed?: Spread
  lost: number
  duplicated: number
  allRecovered: boolean
}

export interface DrillReport {
  drill: {
    fault: Fault
    target: Target
    failoverProfile: string
    inventory: string
    lab: string
    rate: number
    durationS: number
    faultAtS: number
    repeat: number
    startedAt: string
  }
  repetitions: RepetitionReport[]
  summary: DrillSummary
}

export function summarize(reps: RepetitionReport[]): DrillSummary {
  return {
    detectS: spread(reps.map((r) => r.detectS)),
    recoverS: spread(reps.map((r) => r.recoverS)),
    failed: spread(reps.map((r) => r.failed)),
    lost: reps.reduce((n, r) => n + r.lost, 0),
    duplicated: reps.reduce((n, r) => n + r.duplicated, 0),
    allRecovered: reps.every((r) => r.recovered),
  }
}

/** 0: every repetition recovered by itself with nothing lost or applied twice; 2 otherwise. */
export function drillExitCode(report: DrillReport): number {
  const s = report.summary
  return s.allRecovered && s.lost === 0 && s.duplicated === 0 && report.repetitions.length > 0 ? 0 : 2
}

const seconds = (x: number | undefined) => (x === undefined ? 'not seen' : `${x.toFixed(1)} s`)
const spreadText = (s: Spread | undefined, unit = ' s') =>
  s ? `median ${s.median}${unit}, worst ${s.worst}${unit}` : 'not measured'

export function repetitionLine(r: RepetitionReport): string {
  return (
    `#${r.repetition} ${r.victim} (${r.why}) at t+${r.faultAtS.toFixed(1)} s: detected ${seconds(r.detectS)}, ` +
    `write gap ${r.recoverS.toFixed(1)} s (${r.gapStream === 'pg' ? 'PostgreSQL writes' : 'votes'})` +
    `${r.recovered ? '' : ' NOT RECOVERED'}, failed ${r.failed}, lost ${r.lost}, duplicated ${r.duplicated}, ` +
    `healthy ${r.healthyAfterS.toFixed(1)} s after the restore`
  )
}

export function drillText(report: DrillReport): string {
  const d = report.drill
  const s = report.summary
  return [
    `drill: ${d.fault} ${d.target}, ${d.repeat} repetition(s), ${d.failoverProfile} failover profile, ` +
      `${d.rate} votes/s for ${d.durationS} s, fault at t+${d.faultAtS} s`,
    ...report.repetitions.map((r) => `  ${repetitionLine(r)}`),
    `  time to detect: ${spreadText(s.detectS)}; time to recover (write gap): ${spreadText(s.recoverS)}`,
    `  failed requests: ${spreadText(s.failed, '')}; lost ${s.lost}, duplicated ${s.duplicated}` +
      `${s.allRecovered ? '' : '; a repetition did NOT recover'}`,
  ].join('\n')
}
