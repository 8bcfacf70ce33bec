/**
 * The load generator's schedule: how many votes a run sends and when each is due, at a fixed rate
 * from the run's start. Pure arithmetic, so a late timer makes the sender catch up to where it should
 * be rather than drift (the count and the end stay bounded).
 */

/** How many requests a run of `durationS` seconds at `rate` per second sends (at least one). */
export function plannedRequests(rate: number, durationS: number): number {
  return Math.max(1, Math.round(rate * durationS))
}

/** When request `index` (from 0) is due, in milliseconds after the run's start. */
export function dueAtMs(index: number, rate: number): number {
  return (index * 1000) / rate
}

/** How many requests should have been sent by `elapsedMs` after the start (never more than `total`). */
export function dueBy(elapsedMs: number, rate: number, total: number): number {
  if (elapsedMs < 0) return 0
  return Math.min(total, Math.floor((elapsedMs * rate) / 1000) + 1)
}
