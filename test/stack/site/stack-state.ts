/**
 * What the drills of test/stack/site/ need to know and arrange about the converged lab: the
 * inventory's merged variables, who the Redis primary and the Patroni leader are, moving either to a
 * chosen host before a drill (so the host a drill breaks carries no other role's primary), waiting
 * until a restarted member is a healthy replica again, and HAProxy's view of its servers.
 */
import { Redis } from 'ioredis'
import { quote } from '../../../lib/connection/quote.ts'
import { loadInventory } from '../../../lib/inventory/index.ts'
import type { Vars } from '../../../lib/types.ts'
import { allRoles } from '../../../roles/index.ts'
import { until } from '../until.ts'
import type { SiteContext } from './context.ts'

const loaded = new Map<string, ReturnType<typeof loadInventory>>()

/** A host's variables with every role's defaults and the secrets merged, as a run sees them (loaded once). */
export async function hostVars(ctx: SiteContext, host: string): Promise<Vars> {
  if (!loaded.has(ctx.inventory))
    loaded.set(ctx.inventory, loadInventory(ctx.inventory, { roles: allRoles, writeSecrets: false }))
  return (await loaded.get(ctx.inventory)!).hosts.get(host)!.vars
}

/**
 * The host a drill breaks: a member of `group` that is neither a load balancer nor an app host, so
 * the drill breaks one thing (in lab-small: node3).
 */
export function drillHost(ctx: SiteContext, group: string): string {
  const busy = new Set([...ctx.hosts('haproxy'), ...ctx.hosts('app')])
  const host = ctx.hosts(group).find((h) => !busy.has(h))
  if (!host) throw new Error(`every ${group} host is also a haproxy or app host: no host to break alone`)
  return host
}

function hostAt(ctx: SiteContext, address: string | undefined): string | undefined {
  return ctx.hosts('redis').find((h) => ctx.lab.host(h).address === address)
}

function redisClient(host: string, port: number, password: string): Redis {
  const client = new Redis({
    host,
    port,
    password,
    connectTimeout: 2000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    lazyConnect: true,
  })
  client.on('error', () => {})
  return client
}

async function withRedis<T>(host: string, port: number, password: string, use: (c: Redis) => Promise<T>): Promise<T> {
  const client = redisClient(host, port, password)
  try {
    await client.connect()
    return await use(client)
  } finally {
    client.disconnect()
  }
}

/** The Redis primary as the first Sentinel that answers names it. */
export async function redisPrimary(ctx: SiteContext): Promise<string> {
  const v = await hostVars(ctx, ctx.hosts('sentinel')[0]!)
  for (const sentinel of ctx.hosts('sentinel')) {
    const address = ctx.lab.host(sentinel).address
    const answer = await withRedis(address, Number(v.sentinel_port), String(v.sentinel_password), (c) =>
      c.call('SENTINEL', 'get-master-addr-by-name', String(v.redis_master_name)),
    ).catch(() => undefined)
    const host = hostAt(ctx, (answer as string[] | undefined)?.[0])
    if (host) return host
  }
  throw new Error('no Sentinel named a Redis primary')
}

/** `INFO replication` of a Redis host, as a map. */
export async function redisReplication(ctx: SiteContext, host: string): Promise<Record<string, string>> {
  const v = await hostVars(ctx, host)
  const info = await withRedis(ctx.lab.host(host).address, Number(v.redis_port), String(v.redis_password), (c) =>
    c.info('replication'),
  )
  return Object.fromEntries(
    info
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  )
}

/** Wait until `host` is a Redis replica whose link to the primary is up. */
export async function waitRedisReplica(ctx: SiteContext, host: string, timeoutMs: number): Promise<void> {
  await until(`${host} to be a Redis replica with its link up`, timeoutMs, async () => {
    const r = await redisReplication(ctx, host)
    return r.role === 'slave' && r.master_link_status === 'up'
  })
}

/**
 * Make `target` the Redis primary with a Sentinel failover: the other replicas get replica-priority
 * 0 for the election (Sentinel then can only pick `target`) and their own priority back afterwards.
 */
export async function moveRedisPrimary(ctx: SiteContext, target: string): Promise<void> {
  if ((await redisPrimary(ctx)) === target) return
  const v = await hostVars(ctx, target)
  const [port, password] = [Number(v.redis_port), String(v.redis_password)]
  const others = ctx.hosts('redis').filter((h) => h !== target)
  const saved = new Map<string, string>()
  try {
    for (const host of others) {
      await withRedis(ctx.lab.host(host).address, port, password, async (c) => {
        const [, priority] = (await c.config('GET', 'replica-priority')) as string[]
        saved.set(host, priority!)
        await c.config('SET', 'replica-priority', '0')
      })
    }
    const sentinel = ctx.lab.host(ctx.hosts('sentinel')[0]!).address
    await withRedis(sentinel, Number(v.sentinel_port), String(v.sentinel_password), (c) =>
      c.call('SENTINEL', 'FAILOVER', String(v.redis_master_name)),
    )
    await until(`${target} to be the Redis primary`, 60_000, async () => (await redisPrimary(ctx)) === target, 500)
    for (const host of others) await waitRedisReplica(ctx, host, 60_000)
  } finally {
    for (const [host, priority] of saved)
      await withRedis(ctx.lab.host(host).address, port, password, (c) =>
        c.config('SET', 'replica-priority', priority),
      ).catch(() => {})
  }
}

export interface PatroniMember {
  name: string
  role: string
  state: string
}

/** Patroni's `GET /cluster` from the first member that answers. */
export async function patroniMembers(ctx: SiteContext): Promise<PatroniMember[]> {
  const members = await ctx.patroniCluster()
  if (!members) throw new Error('no Patroni member answered GET /cluster')
  return members
}

export async function patroniLeader(ctx: SiteContext): Promise<string | undefined> {
  return (await patroniMembers(ctx)).find((m) => m.role === 'leader')?.name
}

/** How many replicas the leader streams WAL to (its pg_stat_replication). */
async function streamingReplicas(ctx: SiteContext, leader: string): Promise<number> {
  const query = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
  const r = await ctx.lab.ssh(leader, `sudo -u postgres psql -XAtc ${quote(query)}`, { timeoutMs: 10_000 })
  return r.code === 0 ? Number(r.stdout.trim()) : -1
}

/**
 * Wait until Patroni lists one leader and every other member running as a replica, and the leader
 * streams to each of them (Debian 12's Patroni 3.0 says `running` for a replica, not `streaming`:
 * pg_stat_replication on the leader tells).
 */
export async function waitPatroniHealthy(ctx: SiteContext, timeoutMs: number): Promise<PatroniMember[]> {
  const count = ctx.hosts('postgres').length
  return until('one Patroni leader streaming to every other member', timeoutMs, async () => {
    const members = await patroniMembers(ctx)
    const leaders = members.filter((m) => m.role === 'leader' && m.state === 'running')
    const replicas = members.filter((m) => m.role !== 'leader' && ['running', 'streaming'].includes(m.state))
    if (members.length !== count || leaders.length !== 1 || replicas.length !== count - 1) return undefined
    return (await streamingReplicas(ctx, leaders[0]!.name)) === count - 1 ? members : undefined
  })
}

/** Make `target` the Patroni leader with a switchover (patronictl on the current leader). */
export async function movePatroniLeader(ctx: SiteContext, target: string): Promise<void> {
  const leader = await patroniLeader(ctx)
  if (leader === target) return
  if (!leader) throw new Error('no Patroni leader to switch over from')
  await waitPatroniHealthy(ctx, 120_000)
  const command =
    `sudo patronictl -c /etc/patroni/config.yml switchover --force ` +
    `--leader ${quote(leader)} --candidate ${quote(target)}`
  const r = await ctx.lab.ssh(leader, command, { timeoutMs: 90_000 })
  if (r.code !== 0) throw new Error(`switchover to ${target} failed: ${r.stdout}${r.stderr}`)
  await until(`${target} to lead the Patroni cluster`, 90_000, async () => (await patroniLeader(ctx)) === target, 500)
  await waitPatroniHealthy(ctx, 120_000)
}

/** HAProxy's status (UP, DOWN, MAINT, ...) of each server of `backend`, read on its admin socket. */
export async function haproxyServers(ctx: SiteContext, balancer: string, backend: string) {
  const script =
    'import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(2); ' +
    "s.connect('/run/haproxy/admin.sock'); s.sendall(b'show stat\\n'); d = b''\n" +
    'while True:\n    c = s.recv(65536)\n    if not c: break\n    d += c\nprint(d.decode())'
  const r = await ctx.lab.ssh(balancer, `sudo python3 -c ${quote(script)}`, { timeoutMs: 10_000 })
  if (r.code !== 0) throw new Error(`show stat on ${balancer} failed: ${r.stderr}`)
  const [head, ...rows] = r.stdout.split('\n').filter(Boolean)
  const columns = head!.replace(/^# /, '').split(',')
  const [name, status] = [columns.indexOf('svname'), columns.indexOf('status')]
  const servers: Record<string, string> = {}
  for (const row of rows) {
    const f = row.split(',')
    if (f[0] === backend && !['FRONTEND', 'BACKEND'].includes(f[name]!)) servers[f[name]!] = f[status]!
  }
  return servers
}
