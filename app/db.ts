/**
 * The vote app's PostgreSQL side: connection pools through HAProxy (the write port, and the read
 * port over the replicas), the `votes` table (created by the worker at start, idempotently, under
 * an advisory lock so two workers starting together do not race), the worker's upsert and the
 * result program's count.
 *
 * The table is a contract with the load generator: one row per voter; `applied` counts the
 * distinct votes applied to that row, so re-applying one vote (same vote_id) changes nothing and a
 * second, different vote of the same voter makes it 2.
 */
import { readFileSync } from 'node:fs'
import pg from 'pg'
import type { AppConfig } from './config.ts'
import type { Vote } from './vote-item.ts'

export const SCHEMA_SQL = `CREATE TABLE IF NOT EXISTS votes (
  voter text PRIMARY KEY,
  choice text NOT NULL,
  vote_id text NOT NULL,
  applied integer NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL DEFAULT now()
)`

/** Any fixed number: the advisory lock the workers take while they create the schema. */
const SCHEMA_LOCK = 1_606_016

export const UPSERT_SQL = `INSERT INTO votes (voter, choice, vote_id) VALUES ($1, $2, $3)
ON CONFLICT (voter) DO UPDATE SET
  choice = excluded.choice,
  vote_id = excluded.vote_id,
  applied = votes.applied + (votes.vote_id <> excluded.vote_id)::int,
  updated_at = now()`

export const COUNT_SQL = `SELECT
  count(*) FILTER (WHERE choice = 'a')::int AS a,
  count(*) FILTER (WHERE choice = 'b')::int AS b,
  count(*)::int AS total
FROM votes`

export interface Counts {
  a: number
  b: number
  total: number
}

/**
 * TLS to PostgreSQL when the configuration names a CA: the certificate must chain to it (verify-ca).
 * Its name is not checked: the app connects to HAProxy's address (the VIP), the certificate is the member's.
 */
export function pgTls(caFile: string | undefined): pg.ConnectionConfig['ssl'] {
  if (caFile === undefined) return undefined
  return { ca: readFileSync(caFile, 'utf8'), rejectUnauthorized: true, checkServerIdentity: () => undefined }
}

/** A pool on one HAProxy port, with bounded connect and statement times. */
export function pool(config: AppConfig, port: number, max: number): pg.Pool {
  const p = new pg.Pool({
    ssl: pgTls(config.postgres.caFile),
    host: config.postgres.host,
    port,
    database: config.postgres.database,
    user: config.postgres.user,
    password: config.postgres.password,
    max,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 10_000,
    statement_timeout: 5000,
    query_timeout: 6000,
    application_name: 'hastack-app',
  })
  // A pooled idle client whose server went away (a failover): the pool drops it, nothing to do here.
  p.on('error', (error) => console.error(`postgres: idle connection lost: ${error.message}`))
  return p
}

/** Create the votes table when it is missing (safe to run from several workers at once). */
export async function ensureSchema(p: pg.Pool): Promise<void> {
  const client = await p.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK])
    await client.query(SCHEMA_SQL)
    await client.query('COMMIT')
    client.release()
  } catch (error) {
    client.release(error as Error)
    throw error
  }
}

/** Apply one vote (the worker's upsert); resolves once committed. */
export async function applyVote(p: pg.Pool, vote: Vote): Promise<void> {
  await p.query(UPSERT_SQL, [vote.voter, vote.choice, vote.id])
}

export async function countVotes(p: pg.Pool): Promise<Counts> {
  const { rows } = await p.query(COUNT_SQL)
  const row = rows[0] as Counts
  return { a: row.a, b: row.b, total: row.total }
}
