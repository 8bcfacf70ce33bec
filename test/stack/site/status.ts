/**
 * playbooks/status.ts on the healthy converged stack: exit 0, and its JSON names the primaries the
 * services themselves report (Patroni's leader read from this machine, the Redis server that says
 * role:master).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { isLeader } from '../pg/cluster.ts'
import { until } from '../until.ts'
import type { SiteCheck, SiteContext } from './context.ts'
import type { StatusReport } from '../../../playbooks/day2/status-report.ts'

/** Run status.ts with --json; its exit code, output and JSON document. */
export async function stackStatus(ctx: SiteContext, label: string) {
  const run = await ctx.playbook('playbooks/status.ts', label, [], 120_000)
  const report = JSON.parse(readFileSync(join(ctx.repo, `reports/site-${label}.json`), 'utf8')) as StatusReport
  return { exitCode: run.exitCode, stdout: run.stdout, tail: run.tail, report }
}

/** What a status report names as wrong: each component's problems and each unreachable host. */
function statusProblems(report: StatusReport): string[] {
  return [
    ...Object.entries(report.problems).flatMap(([part, found]) => found.map((p) => `${part}: ${p}`)),
    ...Object.entries(report.unreachable).map(([host, why]) => `${host} unreachable: ${why}`),
  ]
}

/**
 * Wait (bounded, polling every 5 s) until status.ts calls the stack healthy; its last report. When it
 * never does, the error names what the last report found wrong, not only that the wait timed out.
 */
export async function waitHealthy(ctx: SiteContext, label: string, timeoutMs = 180_000): Promise<StatusReport> {
  let last: StatusReport | undefined
  try {
    await until(
      `the stack healthy (${label})`,
      timeoutMs,
      async () => {
        const run = await stackStatus(ctx, label)
        last = run.report
        return run.exitCode === 0
      },
      5000,
    )
  } catch (error) {
    const named = last ? statusProblems(last).slice(0, 8).join('; ') : 'no status report was read'
    throw new Error(`${(error as Error).message}; the last status.ts report: ${named}`, { cause: error })
  }
  return last!
}

/** The primaries as the services report them, read from this machine. */
export async function actualPrimaries(ctx: SiteContext): Promise<{ postgres?: string; redis?: string }> {
  const members = await ctx.patroniCluster()
  const password = ctx.secrets().redis_password
  let redis: string | undefined
  for (const host of ctx.hosts('redis')) {
    const client = new Redis({
      host: ctx.lab.host(host).address,
      password,
      ...ctx.redisTls(),
      lazyConnect: true,
      connectTimeout: 3000,
    })
    client.on('error', () => {})
    try {
      await client.connect()
      if (/role:master/.test(await client.info('replication'))) redis = host
    } finally {
      client.disconnect()
    }
  }
  return { postgres: members?.find(isLeader)?.name, redis }
}

export const status: SiteCheck = {
  name: 'status.ts reports the healthy stack healthy and names the actual primaries',
  destructive: false,
  async run(t, ctx) {
    const { exitCode, stdout, tail, report } = await stackStatus(ctx, 'status')
    if (exitCode !== 0) t.comment(tail)
    t.equal(exitCode, 0, 'exit 0 on the healthy stack')
    t.equal(report.healthy, true)
    t.same(Object.values(report.problems).flat(), [], 'no problem named')
    const actual = await actualPrimaries(ctx)
    t.equal(report.postgres.leader, actual.postgres, `the Patroni leader (${actual.postgres})`)
    t.equal(report.redis.primary, actual.redis, `the Redis primary (${actual.redis})`)
    t.match(stdout, /HEALTHY/)
    t.notMatch(stdout, /\x1b\[/, 'no colour when piped')
  },
}
