/**
 * The site suite's fail-fast probe (test/stack/gate.ts), asked after a check failed: whether the stack
 * is still healthy as `status.ts` judges it (the one health reading of the stack), within a bound, so a
 * check that left it broken stops the later checks at once instead of letting each wait for its timeouts.
 * When it is broken, the journals of the failing components' units on their hosts are kept beside the
 * status report (reports/site-gate-journal.txt; `.ci/run` prints it, since a CI run's record keeps its tail).
 */
import { readFileSync, writeFileSync } from 'node:fs'
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
    const diagnosis = join(ctx.repo, 'reports/site-gate-probe.json')
    await keepJournals(ctx, diagnosis).catch((e: Error) => console.error(`journals not kept: ${e.message}`))
    return { reason: (error as Error).message, diagnosis }
  }
}

/** The units behind each component status.ts judges, with the inventory group whose hosts run them. */
const COMPONENT_UNITS: Record<string, { group: string; units: string[] }> = {
  etcd: { group: 'etcd', units: ['etcd'] },
  postgres: { group: 'patroni', units: ['patroni'] },
  redis: { group: 'redis', units: ['redis-server'] },
  sentinel: { group: 'sentinel', units: ['redis-sentinel'] },
  app: { group: 'app', units: ['hastack-vote', 'hastack-worker', 'hastack-result'] },
  haproxy: { group: 'haproxy', units: ['haproxy', 'keepalived'] },
}

/** How much of each host's journal is kept: the last lines of the failing units, over the last minutes. */
const JOURNAL_LINES = 40

/** Keep the last journal lines of every failing component's units, host by host, in site-gate-journal.txt. */
async function keepJournals(ctx: SiteContext, statusFile: string): Promise<void> {
  const report = JSON.parse(readFileSync(statusFile, 'utf8')) as { problems?: Record<string, string[]> }
  const failing = Object.entries(report.problems ?? {}).filter(([c, p]) => p.length && COMPONENT_UNITS[c])
  const parts = await Promise.all(
    failing.flatMap(([component]) => {
      const { group, units } = COMPONENT_UNITS[component]!
      const flags = units.map((u) => `-u ${u}`).join(' ')
      return ctx.hosts(group).map(async (host) => {
        const r = await ctx.lab.ssh(
          host,
          // The vote program's one line per refused vote would fill the excerpt: left out.
          `sudo journalctl ${flags} --since -10min -n 2000 --no-pager -o short-precise | ` +
            `grep -v ': vote [0-9a-f-]* not stored' | tail -n ${JOURNAL_LINES}; ` +
            `systemctl is-active ${units.join(' ')} | tr '\\n' ' '`,
          { timeoutMs: 20_000 },
        )
        return `== ${component} on ${host} (${units.join(', ')}: ${r.stdout.trim().split('\n').pop()})\n${r.stdout}`
      })
    }),
  )
  writeFileSync(join(ctx.repo, 'reports/site-gate-journal.txt'), parts.join('\n'))
}
