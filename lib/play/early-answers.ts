/**
 * The probe plan's answers for one host (lib/play/probe-plan.ts), read at the run's start in consecutive
 * chunks, one round trip each, one after another, in the order the last run asked the probes: the first
 * chunk is small, so the first plays' tasks wait only for it while the later chunks are read beside them.
 * A task waits only for the chunks that hold its probes. A chunk that fails answers nothing (its probes are
 * asked live); `stop()` (the run is no longer settled, or is closing) starts no further chunk.
 */
import type { Connection, Probe, ProbeAnswer } from '../types.ts'
import { probeKey } from '../facts/probes.ts'
import { ProbedConnection } from './probed-connection.ts'

/** The first chunk's size; each next chunk is twice the one before (32, 64, 128, ...). */
export const FIRST_CHUNK_PROBES = 32

/** The plan cut into consecutive chunks of growing size (FIRST_CHUNK_PROBES, then doubling). */
export function planChunks<T>(probes: readonly T[], first = FIRST_CHUNK_PROBES): T[][] {
  const chunks: T[][] = []
  for (let start = 0, size = first; start < probes.length; start += size, size *= 2) {
    chunks.push(probes.slice(start, start + size))
  }
  return chunks
}

/** How long the reads took: until the first chunk's answers, and until the last's. */
export interface EarlyTimings {
  firstChunkMs: number
  allMs: number
  chunks: number
}

export class EarlyAnswers {
  /** Each planned probe's chunk, by probeKey. */
  private readonly chunkOf = new Map<string, Promise<ReadonlyMap<string, ProbeAnswer>>>()
  private stopped = false

  private constructor() {}

  /** Start reading the plan's probes from the host, chunk after chunk; `done` hears the timings at the end. */
  static start(conn: Connection, probes: readonly Probe[], done: (timings: EarlyTimings) => void): EarlyAnswers {
    const early = new EarlyAnswers()
    const chunks = planChunks(probes)
    const started = performance.now()
    let firstChunkMs = 0
    let previous: Promise<unknown> = Promise.resolve()
    for (const [i, chunk] of chunks.entries()) {
      const answers = previous.then(async () => {
        if (early.stopped) return new Map<string, ProbeAnswer>()
        const read = await ProbedConnection.answersOf(conn, chunk).catch(() => new Map<string, ProbeAnswer>())
        if (i === 0) firstChunkMs = Math.round(performance.now() - started)
        return read
      })
      for (const probe of chunk) early.chunkOf.set(probeKey(probe), answers)
      previous = answers
    }
    void previous.then(() =>
      done({ firstChunkMs, allMs: Math.round(performance.now() - started), chunks: chunks.length }),
    )
    return early
  }

  /** Read no further chunk (the chunks already asked still answer). */
  stop(): void {
    this.stopped = true
  }

  /** The answers of those of these probes the plan holds, once the chunks holding them are read. */
  async answersFor(probes: readonly Probe[]): Promise<ReadonlyMap<string, ProbeAnswer>> {
    const chunks = new Set(probes.flatMap((p) => this.chunkOf.get(probeKey(p)) ?? []))
    const out = new Map<string, ProbeAnswer>()
    for (const answers of await Promise.all(chunks)) {
      for (const probe of probes) {
        const answer = answers.get(probeKey(probe))
        if (answer) out.set(probeKey(probe), answer)
      }
    }
    return out
  }
}
