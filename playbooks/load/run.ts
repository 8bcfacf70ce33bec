/**
 * One load run, as `playbooks/load.ts` and the lab checks use it: load the inventory (before
 * anything connects: every value checked), send the votes, wait for the worker to drain, reconcile
 * against PostgreSQL and build the report.
 */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { loadInventory } from '../../lib/inventory/index.ts'
import { registerSecrets } from '../../lib/output/mask.ts'
import { InputError } from '../../lib/types.ts'
import { allRoles } from '../../roles/index.ts'
import { generateVotes } from './generator.ts'
import { reconcile } from './reconcile.ts'
import type { LoadReport } from './report.ts'
import { failureWindows, latencyOf, successRate, type RequestRecord } from './stats.ts'
import { waitForDrain } from './store.ts'
import { loadEndpoints, type LoadEndpoints } from './target.ts'

export interface LoadOptions {
  inventory: string
  /** Votes per second. */
  rate: number
  durationS: number
  /** `HOST:PORT` instead of the inventory's balancer and app port. */
  target?: string
  /** Each request is ended after this long. */
  timeoutMs: number
  maxInFlight: number
  /** How long to wait for the worker to store every acknowledged vote. */
  drainTimeoutS: number
  onRecord?: (record: RequestRecord) => void
  /** Sends no more votes once aborted; the votes sent are still reconciled. */
  stop?: AbortSignal
}

type Bounded = 'rate' | 'durationS' | 'timeoutMs' | 'maxInFlight' | 'drainTimeoutS'

/** The bounds of every option, with its command-line name: a run is always bounded in rate, time and open requests. */
export const LOAD_LIMITS: Record<Bounded, { option: string; low: number; high: number }> = {
  rate: { option: '--rate', low: 0.1, high: 1000 },
  durationS: { option: '--duration', low: 1, high: 3600 },
  timeoutMs: { option: '--timeout', low: 100, high: 60_000 },
  maxInFlight: { option: '--max-in-flight', low: 1, high: 1000 },
  drainTimeoutS: { option: '--drain', low: 0, high: 600 },
}

/** Refuse an option out of its bounds (InputError naming the option). */
export function checkLoadOptions(o: LoadOptions): void {
  for (const [name, { option, low, high }] of Object.entries(LOAD_LIMITS)) {
    const value = o[name as Bounded]
    if (!(value >= low && value <= high))
      throw new InputError(`${option} must be between ${low} and ${high}, got ${value}`)
  }
  if (!Number.isInteger(o.maxInFlight))
    throw new InputError(`--max-in-flight must be a whole number, got ${o.maxInFlight}`)
}

/** `load-20261130t052900-1a2b`: sortable by time, unique per run, safe in a SQL prefix match. */
export function runPrefix(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase()
  return `load-${stamp}-${randomBytes(2).toString('hex')}`
}

/** The app's endpoints from an inventory file (validated with every role's schema) and --target; nothing connects. */
export async function appEndpoints(inventoryFile: string, target?: string): Promise<LoadEndpoints> {
  const inventory = await loadInventory(resolve(inventoryFile), { roles: allRoles, writeSecrets: false })
  const endpoints = loadEndpoints(inventory, target)
  registerSecrets([endpoints.database.password])
  return endpoints
}

export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  checkLoadOptions(o)
  const endpoints = await appEndpoints(o.inventory, o.target)
  const prefix = runPrefix()
  const startedAt = new Date().toISOString()
  const records = await generateVotes({
    target: endpoints.vote,
    rate: o.rate,
    durationS: o.durationS,
    prefix,
    timeoutMs: o.timeoutMs,
    maxInFlight: o.maxInFlight,
    onRecord: o.onRecord,
    stop: o.stop,
  })
  const acknowledged = records.filter((r) => r.outcome === 'acknowledged').map((r) => r.voter)
  const drain = await waitForDrain(endpoints.database, prefix, acknowledged, o.drainTimeoutS * 1000)
  return {
    startedAt,
    target: `${endpoints.vote.host}:${endpoints.vote.port}`,
    rate: o.rate,
    durationS: o.stop?.aborted ? Math.round((records.length / o.rate) * 10) / 10 : o.durationS,
    prefix,
    requests: records.length,
    successRate: successRate(records),
    latencyMs: latencyOf(records),
    failureWindows: failureWindows(records),
    resent: records.filter((r) => r.retried !== undefined).length,
    ...reconcile(records, drain.rows),
    drain: { seconds: Math.round(drain.seconds * 10) / 10, drained: drain.drained, error: drain.error },
    reconciled: drain.error === undefined,
  }
}
