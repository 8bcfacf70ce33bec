/**
 * Reconciliation: the votes the app acknowledged against the rows PostgreSQL holds for this run's
 * voters. `lost` are acknowledged votes with no row, `duplicated` rows whose vote was applied more
 * than once (`applied > 1`), `storedUnacknowledged` failed requests whose vote was stored anyway (a
 * timeout after Redis took it). Pure: the rows come from store.ts.
 */
import type { RequestRecord } from './stats.ts'

/** One row of the app's `votes` table, as read for a run's voters. */
export interface VoteRow {
  voter: string
  vote_id: string | null
  applied: number
}

export interface Reconciliation {
  acknowledged: number
  stored: number
  lost: number
  duplicated: number
  failed: number
  storedUnacknowledged: number
  /** Up to 20 voters of each problem, to look them up. */
  lostVoters: string[]
  duplicatedVoters: string[]
}

const SAMPLE = 20

export function reconcile(records: RequestRecord[], rows: VoteRow[]): Reconciliation {
  const byVoter = new Map(rows.map((row) => [row.voter, row]))
  const acknowledged = records.filter((r) => r.outcome === 'acknowledged')
  const failed = records.filter((r) => r.outcome !== 'acknowledged')
  const lost = acknowledged.filter((r) => !byVoter.has(r.voter)).map((r) => r.voter)
  const duplicated = rows.filter((row) => row.applied > 1).map((row) => row.voter)
  return {
    acknowledged: acknowledged.length,
    stored: acknowledged.length - lost.length,
    lost: lost.length,
    duplicated: duplicated.length,
    failed: failed.length,
    storedUnacknowledged: failed.filter((r) => byVoter.has(r.voter)).length,
    lostVoters: lost.slice(0, SAMPLE),
    duplicatedVoters: duplicated.slice(0, SAMPLE),
  }
}
