/**
 * Adding and removing a node (issue 13), destructive: node4 is put into the inventory copy's etcd,
 * postgres and redis groups and booted into the running lab, and site.ts makes it an etcd member, a
 * streaming Patroni replica and a Redis replica of the current primary, restarting none of the
 * running members (their units' start times and PostgreSQL's postmaster start are compared); a second
 * run changes nothing. Then remove-node.ts prints its plan without --confirm, refuses the PostgreSQL
 * primary, removes node4 with --confirm, the inventory goes back to lab-small's, a converge drops
 * node4 from HAProxy and Prometheus, status.ts calls the stack healthy, no service's member list
 * (etcd, Patroni, the Redis primary, the Sentinels) names node4 any more, and node4 is powered off.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { parse, stringify } from 'yaml'
import type { SiteCheck, SiteContext, Tap } from './context.ts'
import { actualPrimaries, waitHealthy } from './status.ts'

const NEW_HOST = 'node4'
const JOINED_GROUPS = ['etcd', 'postgres', 'redis']
const UNITS = ['etcd', 'patroni', 'redis-server', 'redis-sentinel']

/** The inventory text with `host` added to `groups` (comments are not kept: this is the test's own copy). */
function grownInventory(text: string, host: string, groups: string[]): string {
  const doc = parse(text) as { all: { children: Record<string, { hosts: Record<string, null> }> } }
  for (const group of groups) doc.all.children[group]!.hosts[host] = null
  return stringify(doc)
}

/**
 * When each running member's services last started: its units' ActiveEnterTimestampMonotonic and
 * PostgreSQL's postmaster start (Patroni's REST API), by host.
 */
async function startTimes(ctx: SiteContext, hosts: string[]): Promise<Record<string, string[]>> {
  const entries = await Promise.all(
    hosts.map(async (host) => {
      const units = await ctx.lab.ssh(
        host,
        `systemctl show -p ActiveEnterTimestampMonotonic --value ${UNITS.join(' ')}`,
      )
      const api = (await ctx.patroniGet(host, '/patroni')) as { postmaster_start_time?: string } | undefined
      const postmaster = api?.postmaster_start_time ?? '?'
      return [host, [...units.stdout.trim().split('\n'), postmaster]] as [string, string[]]
    }),
  )
  return Object.fromEntries(entries)
}

/**
 * Which of the services' own member lists still name an address, read from this machine and the
 * first member: etcd's member list, Patroni's cluster, the Redis primary's replicas, each
 * Sentinel's replicas.
 */
async function servicesKnowing(ctx: SiteContext, address: string): Promise<string[]> {
  const [first] = ctx.hosts('etcd')
  const knowing: string[] = []
  const etcd = await ctx.lab.ssh(first!, 'sudo hastack-etcdctl member list')
  if (etcd.stdout.includes(address)) knowing.push('etcd member list')
  const cluster = await ctx.patroniGet(first!, '/cluster')
  if (cluster === undefined) throw new Error(`Patroni on ${first} did not answer GET /cluster`)
  if (JSON.stringify(cluster).includes(address)) knowing.push("Patroni's cluster")
  const { redis: primary } = await actualPrimaries(ctx)
  const secrets = ctx.secrets()
  const ask = async (host: string, port: number, password: string, command: string[]) => {
    const client = new Redis({ host: ctx.lab.host(host).address, port, password, ...ctx.redisTls(), lazyConnect: true })
    client.on('error', () => {})
    try {
      await client.connect()
      return JSON.stringify(await client.call(command[0]!, ...command.slice(1)))
    } finally {
      client.disconnect()
    }
  }
  if ((await ask(primary!, 6379, secrets.redis_password!, ['INFO', 'replication'])).includes(address))
    knowing.push(`the Redis primary ${primary}`)
  for (const sentinel of ctx.hosts('sentinel')) {
    const replicas = await ask(sentinel, 26379, secrets.sentinel_password!, ['SENTINEL', 'REPLICAS', 'hastack-redis'])
    if (replicas.includes(address)) knowing.push(`the Sentinel on ${sentinel}`)
  }
  return knowing
}

async function join(t: Tap, ctx: SiteContext, original: string) {
  const members = ctx.hosts('etcd')
  const before = await startTimes(ctx, members)
  writeFileSync(ctx.inventory, grownInventory(original, NEW_HOST, JOINED_GROUPS))
  const booted = Date.now()
  const state = await ctx.lab.addHost(NEW_HOST)
  t.match(state, /^(running|degraded)/, `${NEW_HOST} booted into the running lab`)
  t.comment(`${NEW_HOST} booted in ${((Date.now() - booted) / 1000).toFixed(1)} s`)

  const first = await ctx.playbook('playbooks/site.ts', 'nodes-join', [], 1_500_000)
  if (first.exitCode !== 0) t.comment(first.tail)
  t.equal(first.exitCode, 0, `site.ts converges with ${NEW_HOST} in ${JOINED_GROUPS.join(', ')}`)
  t.comment(`join converge: ${first.seconds.toFixed(0)} s, totals ${JSON.stringify(first.totals)}`)
  t.ok(
    first.changed.some((c) => c.startsWith(`${NEW_HOST}: Ensure this member is registered with the running etcd`)),
    'etcd member add ran on the new host',
  )
  const second = await ctx.playbook('playbooks/site.ts', 'nodes-join-again', [], 900_000)
  t.equal(second.exitCode, 0)
  t.same(second.changed, [], 'a second run changes nothing')
  t.comment(`second converge: ${second.seconds.toFixed(0)} s`)

  const report = await waitHealthy(ctx, 'nodes-joined')
  t.ok(
    report.etcd.some((e) => e.host === NEW_HOST && e.healthy),
    `${NEW_HOST} is a healthy etcd member (of ${report.etcd.length})`,
  )
  const pg = report.postgres.members.find((m) => m.name === NEW_HOST)
  t.match(pg, { role: 'replica', streaming: true }, `${NEW_HOST} is a streaming Patroni replica`)
  t.match(
    report.redis.replicas.find((r) => r.host === NEW_HOST),
    { linkUp: true },
    `${NEW_HOST} replicates the Redis primary ${report.redis.primary}`,
  )
  t.same(await startTimes(ctx, members), before, 'no running member was restarted (units and postmasters)')
}

async function remove(t: Tap, ctx: SiteContext) {
  const plan = await ctx.playbook('playbooks/remove-node.ts', 'nodes-plan', ['--host', NEW_HOST])
  t.equal(plan.exitCode, 0, 'without --confirm: the plan, exit 0')
  t.match(plan.stdout, /nothing was touched: run again with --confirm/)
  t.ok(
    (await waitHealthy(ctx, 'nodes-plan-touched-nothing')).etcd.some((e) => e.host === NEW_HOST),
    `${NEW_HOST} is still a member after the plan`,
  )
  const { postgres: leader } = await actualPrimaries(ctx)
  const refused = await ctx.playbook('playbooks/remove-node.ts', 'nodes-refused', ['--host', leader!, '--confirm'])
  t.equal(refused.exitCode, 2, `the PostgreSQL primary ${leader} is refused`)
  t.match(refused.stdout, /is the PostgreSQL primary: switch over first/)

  const removal = await ctx.playbook('playbooks/remove-node.ts', 'nodes-remove', ['--host', NEW_HOST, '--confirm'])
  if (removal.exitCode !== 0) t.comment(removal.tail)
  t.equal(removal.exitCode, 0, `remove-node.ts --confirm removes ${NEW_HOST}`)
  const done = (removal.report as unknown as { done?: string[]; seconds?: number }) ?? {}
  t.comment(`removal: ${done.seconds?.toFixed(1)} s: ${(done.done ?? []).join(' | ')}`)
}

export const nodes: SiteCheck = {
  name: 'nodes: a fourth host joins as etcd member, Patroni and Redis replica, then remove-node.ts removes it',
  destructive: true,
  async run(t, ctx) {
    const original = readFileSync(ctx.inventory, 'utf8')
    await waitHealthy(ctx, 'nodes-start')
    try {
      await t.test(`${NEW_HOST} joins without disturbing the running members`, (t) => join(t, ctx, original))
      await t.test(`remove-node.ts removes ${NEW_HOST}`, (t) => remove(t, ctx))
    } finally {
      writeFileSync(ctx.inventory, original)
    }
    const cleanup = await ctx.playbook('playbooks/site.ts', 'nodes-cleanup', [], 900_000)
    if (cleanup.exitCode !== 0) t.comment(cleanup.tail)
    t.equal(cleanup.exitCode, 0, `site.ts on the inventory without ${NEW_HOST} converges`)
    t.comment(`cleanup converge: ${cleanup.seconds.toFixed(0)} s, changed: ${cleanup.changed.join(' | ')}`)
    await waitHealthy(ctx, 'nodes-removed')
    t.pass('status.ts: the stack is healthy')
    t.same(await servicesKnowing(ctx, ctx.lab.host(NEW_HOST).address), [], `no service knows ${NEW_HOST} any more`)
    await ctx.lab.stop(NEW_HOST)
  },
}
