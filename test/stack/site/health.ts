/**
 * The site suite's fail-fast probe (test/stack/gate.ts), asked after a check failed: whether the stack
 * is still healthy as `status.ts` judges it (the one health reading of the stack), within a bound, so a
 * check that left it broken stops the later checks at once instead of letting each wait for its timeouts.
 */
import { join } from 'node:path'
import { until } from '../until.ts'
import type { SiteContext } from './context.ts'
import { stackStatus } from './status.ts'

/** How long a failed check's stack may take to be healthy again (a failover settling, a member rejoining). */
export const SITE_HEALTH_BOUND_MS = 90_000

/** What is wrong when status.ts does not report the stack healthy within the bound; undefined when it does. */
export async function siteBroken(ctx: SiteContext): Promise<{ reason: string; diagnosis: string } | undefined> {
  let problems: string[] = []
  const healthy = await until(
    'status.ts to report the stack healthy',
    SITE_HEALTH_BOUND_MS,
    async () => {
      const { report } = await stackStatus(ctx, 'gate-probe')
      problems = [
        ...Object.entries(report.problems).flatMap(([part, found]) => found.map((p) => `${part}: ${p}`)),
        ...Object.entries(report.unreachable).map(([host, why]) => `${host} unreachable: ${why}`),
      ]
      return report.healthy
    },
    5000,
  ).catch(() => false)
  if (healthy) return undefined
  const named = problems.length ? `: ${problems.slice(0, 5).join('; ')}` : ''
  return {
    reason: `status.ts did not report the stack healthy within ${SITE_HEALTH_BOUND_MS / 1000} s${named}`,
    diagnosis: join(ctx.repo, 'reports/site-gate-probe.json'),
  }
}
