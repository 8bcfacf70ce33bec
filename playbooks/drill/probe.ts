/**
 * The PostgreSQL side of a drill: from this machine, a row written through HAProxy's write port every
 * 100 ms as the app's user (into the app's `votes` table, voters `<prefix>-<n>`, so the load generator's
 * reconciliation never counts them), each write bounded by a 1 s connect and statement timeout and
 * reconnecting after any error, until told to stop or its time is up. Afterwards the acknowledged rows
 * are read back: one missing is a lost write.
 */
import pg from 'pg'
import { delay } from '../../lib/tasks/wait.ts'
import { readVotes } from '../load/store.ts'
import type { DatabaseEndpoint } from '../load/target.ts'
import type { Sample } from './timeline.ts'

export interface ProbeResult {
  samples: Sample[]
  /** Voters of the acknowledged writes. */
  acknowledged: string[]
}

export interface RunningProbe {
  stop(): Promise<ProbeResult>
}

const PERIOD_MS = 100

/** Start writing; `origin` is the performance.now() the samples' times count from. */
export function startPgProbe(db: DatabaseEndpoint, prefix: string, origin: () => number, maxSeconds: number) {
  let stopping = false
  const samples: Sample[] = []
  const acknowledged: string[] = []
  const loop = async () => {
    const end = performance.now() + maxSeconds * 1000
    let client: pg.Client | undefined
    for (let n = 0; n < (maxSeconds * 1000) / PERIOD_MS + 1 && !stopping && performance.now() < end; n++) {
      const began = performance.now()
      const voter = `${prefix}-${n}`
      try {
        if (!client) {
          client = new pg.Client({ ...db, connectionTimeoutMillis: 1000, query_timeout: 1000 })
          client.on('error', () => {})
          await client.connect()
        }
        await client.query("insert into votes (voter, choice, vote_id) values ($1, 'a', $2)", [voter, prefix])
        acknowledged.push(voter)
        samples.push({ stream: 'pg', startMs: began - origin(), endMs: performance.now() - origin(), ok: true })
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? String((error as Error).message).slice(0, 40)
        samples.push({
          stream: 'pg',
          startMs: began - origin(),
          endMs: performance.now() - origin(),
          ok: false,
          reason,
        })
        const broken = client
        client = undefined
        broken?.end().catch(() => {})
      }
      await delay(Math.max(0, PERIOD_MS - (performance.now() - began)))
    }
    await client?.end().catch(() => {})
  }
  const running = loop()
  return {
    async stop(): Promise<ProbeResult> {
      stopping = true
      await running
      return { samples, acknowledged }
    },
  } satisfies RunningProbe
}

/** Acknowledged probe writes with no row (read through the write port, once the stack is back). */
export async function lostProbeWrites(db: DatabaseEndpoint, prefix: string, acknowledged: string[]): Promise<number> {
  const stored = new Set((await readVotes(db, `${prefix}-`)).map((row) => row.voter))
  return acknowledged.filter((voter) => !stored.has(voter)).length
}
