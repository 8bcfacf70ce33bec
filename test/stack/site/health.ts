/**
 * The site suite's fail-fast probe (test/stack/gate.ts), asked after a check failed: whether the stack
 * is still healthy as `status.ts` judges it (the one health reading of the stack), within a bound, so a
 * check that left it broken stops the later checks at once instead of letting each wait for its timeouts.
 */
import { join } from 'node:path'
import type { SiteContext } from './context.ts'
import { waitHealthy } from './status.ts'

/** How long a failed check's stack may take to be healthy again (a failover settling, a member rejoining). */
export const SITE_HEALTH_BOUND_MS = 90_000

/** What is wrong when status.ts does not report the stack healthy within the bound; undefined when it does. */
export async function siteBroken(ctx: SiteContext): Promise<{ reason: string; diagnosis: string } | undefined> {
  try {
    await waitHealthy(ctx, 'gate-probe', SITE_HEALTH_BOUND_MS)
    return undefined
  } catch (error) {
    return { reason: (error as Error).message, diagnosis: join(ctx.repo, 'reports/site-gate-probe.json') }
  }
}
