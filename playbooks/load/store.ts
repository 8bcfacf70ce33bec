/**
 * Reading a run's votes back from PostgreSQL, and waiting (bounded) for the app's worker to drain:
 * polls the `votes` rows of the run's voters through HAProxy's write port until every acknowledged
 * vote has a row or the drain time is over. Connection errors (a failover under way) are retried
 * until then; the last one is reported if no read ever succeeded.
 */
import pg from 'pg'
import { waitUntil } from '../../lib/tasks/wait.ts'
import type { VoteRow } from './reconcile.ts'
import type { DatabaseEndpoint } from './target.ts'

export interface DrainResult {
  rows: VoteRow[]
  /** Seconds from the start of the wait until every acknowledged vote was stored (or the wait ended). */
  seconds: number
  drained: boolean
  /** The last error, when no read succeeded. */
  error?: string
}

/** The rows of every voter whose id starts with the run's prefix. */
export async function readVotes(db: DatabaseEndpoint, prefix: string): Promise<VoteRow[]> {
  const client = new pg.Client({
    host: db.host,
    port: db.port,
    user: db.user,
    database: db.database,
    password: db.password,
    ssl: db.ssl,
    connectionTimeoutMillis: 5000,
    query_timeout: 10_000,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    const { rows } = await client.query<VoteRow>(
      'select voter, vote_id, applied from votes where starts_with(voter, $1)',
      [prefix],
    )
    return rows.map((row) => ({ voter: row.voter, vote_id: row.vote_id, applied: Number(row.applied) }))
  } finally {
    await client.end().catch(() => {})
  }
}

/** Poll every second (the engine's bounded waitUntil) until each of `acknowledged` has a row, at most `timeoutMs`. */
export async function waitForDrain(
  db: DatabaseEndpoint,
  prefix: string,
  acknowledged: string[],
  timeoutMs: number,
): Promise<DrainResult> {
  const started = Date.now()
  const seconds = () => (Date.now() - started) / 1000
  let rows: VoteRow[] | undefined
  const allStored = async () => {
    rows = await readVotes(db, prefix)
    const stored = new Set(rows.map((row) => row.voter))
    return acknowledged.every((voter) => stored.has(voter)) ? rows : undefined
  }
  try {
    const drained = await waitUntil('every acknowledged vote in PostgreSQL', allStored, { timeoutMs, intervalMs: 1000 })
    return { rows: drained, seconds: seconds(), drained: true }
  } catch (error) {
    if (rows) return { rows, seconds: seconds(), drained: false }
    return {
      rows: [],
      seconds: seconds(),
      drained: false,
      error: error instanceof Error ? error.message : String(error),
    }
  }
}
