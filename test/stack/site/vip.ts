/**
 * The VIP in front of the two HAProxy hosts (destructive): with the Patroni leader and the Redis
 * primary moved off the VIP holder, writes go through the VIP every 100 ms to PostgreSQL (:5000) and
 * to the Redis endpoint while the holder is killed (`lab kill`): the longest write gap of each stays
 * within 3 s and no acknowledged write is lost. The killed host returns without taking the VIP back
 * (one move, counted from keepalived's journal). Then HAProxy alone is stopped on the new holder: the
 * VIP moves back within the same bound, and stays when HAProxy starts again. Every host is running and
 * the stack healthy when it ends.
 */
import { Redis } from 'ioredis'
import pg from 'pg'
import { tcpOpen } from '../../../lab/lab.ts'
import { longestGap, writeLoop, type PgTarget, type Write } from '../pg/cluster.ts'
import { until } from '../until.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'

/** The bound on a client's longest write gap when the VIP moves. */
const GAP_BOUND_S = 3
/** How long the writers run on after the fault: long enough to see writes resume for a while. */
const AFTER_FAULT_MS = 15_000
const WRITE_TIMEOUT_MS = 400
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The haproxy hosts that hold the VIP now (asked over SSH, in parallel). */
export async function holders(ctx: SiteContext, vip: string): Promise<string[]> {
  const hosts = ctx.hosts('haproxy')
  const held = await Promise.all(
    hosts.map(async (h) => {
      const r = await ctx.lab.ssh(h, `ip -o -4 addr show | grep -qF ' ${vip}/' && echo held`, { timeoutMs: 10_000 })
      return r.stdout.includes('held')
    }),
  )
  return hosts.filter((_, i) => held[i])
}

/** The one holder of the VIP, once exactly one host holds it (bounded). */
function oneHolder(ctx: SiteContext, vip: string, timeoutMs = 60_000): Promise<string> {
  return until(`one holder of ${vip}`, timeoutMs, async () => {
    const found = await holders(ctx, vip)
    return found.length === 1 ? found[0] : undefined
  })
}

/** Times keepalived on `host` entered MASTER since `sinceEpoch` (its journal). */
async function masterEntries(ctx: SiteContext, host: string, sinceEpoch: number): Promise<number> {
  const cmd = `sudo journalctl -u keepalived --since @${sinceEpoch} --no-pager -o cat | grep -c 'Entering MASTER STATE'`
  const r = await ctx.lab.ssh(host, cmd, { timeoutMs: 15_000 })
  return Number(r.stdout.trim() || 0)
}

/** Patroni's members as GET /cluster reports them, from the first host that answers ([] when none does). */
async function patroniMembers(ctx: SiteContext): Promise<{ name: string; role: string; state: string }[]> {
  return (await ctx.patroniCluster()) ?? []
}

const leaderOf = (members: { name: string; role: string }[]) => members.find((m) => m.role === 'leader')?.name

/** Switch the Patroni leader over to another member when `avoid` leads (its REST API, with the password). */
async function leaderOff(t: Tap, ctx: SiteContext, avoid: string): Promise<void> {
  const members = await until('a Patroni leader', 60_000, async () => {
    const m = await patroniMembers(ctx)
    return leaderOf(m) ? m : undefined
  })
  if (leaderOf(members) !== avoid) return
  const balancers = new Set(ctx.hosts('haproxy'))
  const replicas = members.filter((m) => m.role !== 'leader').map((m) => m.name)
  const candidate = replicas.find((m) => !balancers.has(m)) ?? replicas[0]!
  const r = await ctx.patroniApi(avoid, '/switchover', {
    method: 'POST',
    auth: `patroni:${ctx.secrets().patroni_restapi_password}`,
    body: { leader: avoid, candidate },
    timeoutMs: 60_000,
  })
  t.equal(r.status, 200, `Patroni leader switched over from ${avoid} to ${candidate}`)
  await until(`${candidate} leads`, 90_000, async () => leaderOf(await patroniMembers(ctx)) === candidate)
}

/**
 * Whether HAProxy on a host answers its `/healthz`, asked as keepalived asks it: the host's own check
 * script, in plain HTTP on HAProxy's loopback health listener.
 */
async function haproxyServes(ctx: SiteContext, host: string): Promise<boolean> {
  return (await ctx.lab.ssh(host, 'sudo -n /etc/keepalived/hastack-check-haproxy')).code === 0
}

/** One command to the first Sentinel (with its password); undefined when it does not answer. */
async function sentinelCall(ctx: SiteContext, ...args: string[]): Promise<unknown> {
  const [sentinel] = ctx.hosts('sentinel')
  const client = new Redis({
    host: ctx.lab.host(sentinel!).address,
    port: 26379,
    password: ctx.secrets().sentinel_password,
    ...ctx.redisTls(),
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call('SENTINEL', ...args)
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

/** The Redis primary's address as the Sentinels name it. */
async function redisPrimary(ctx: SiteContext): Promise<string | undefined> {
  const reply = (await sentinelCall(ctx, 'get-master-addr-by-name', 'hastack-redis')) as string[] | undefined
  return reply?.[0]
}

/** Fail the Redis primary over (Sentinel) when it runs on `avoid`; wait until another host is primary. */
async function redisPrimaryOff(t: Tap, ctx: SiteContext, avoid: string): Promise<void> {
  const avoidAddress = ctx.lab.host(avoid).address
  if ((await until('a Redis primary', 60_000, () => redisPrimary(ctx))) !== avoidAddress) return
  t.equal(await sentinelCall(ctx, 'FAILOVER', 'hastack-redis'), 'OK', `Redis primary failed over away from ${avoid}`)
  await until('another Redis primary', 90_000, async () => {
    const primary = await redisPrimary(ctx)
    return primary !== undefined && primary !== avoidAddress
  })
}

/** Where the Redis write loop connects: the endpoint, with ioredis' TLS options when the stack uses TLS. */
type RedisTarget = { host: string; port: number; password: string } & ReturnType<SiteContext['redisTls']>

/** A Redis write loop through the endpoint: a fresh connection after every failure, each write acknowledged or not. */
function redisWriteLoop(target: RedisTarget, prefix: string, stop: () => boolean) {
  const writes: Write[] = []
  const done = (async () => {
    let client: Redis | undefined
    const started = Date.now()
    for (let seq = 1; seq <= 1200 && Date.now() - started < 120_000 && !stop(); seq++) {
      const tick = Date.now()
      const w: Write = { seq, sent: tick }
      writes.push(w)
      try {
        if (!client) {
          client = new Redis({
            ...target,
            lazyConnect: true,
            connectTimeout: WRITE_TIMEOUT_MS,
            commandTimeout: WRITE_TIMEOUT_MS,
            maxRetriesPerRequest: 0,
            enableOfflineQueue: false,
            retryStrategy: () => null,
          })
          client.on('error', () => {})
          await client.connect()
        }
        await client.set(`${prefix}:${seq}`, String(seq))
        w.acked = Date.now()
      } catch (e) {
        w.error = (e as Error).message
        client?.disconnect()
        client = undefined
      }
      await sleep(Math.max(0, 100 - (Date.now() - tick)))
    }
    client?.disconnect()
  })()
  return { writes, done }
}

/** Acknowledged writes of both loops that are missing afterwards (read back through the VIP). */
async function lostWrites(pgTarget: PgTarget, prefix: string, pgWrites: Write[], redis: Redis, redisWrites: Write[]) {
  const client = new pg.Client({ ...pgTarget, connectionTimeoutMillis: 5000 })
  await client.connect()
  const stored = new Set(
    (await client.query('SELECT seq FROM hastack_writes WHERE label = $1', [prefix])).rows.map((r) => Number(r.seq)),
  )
  await client.end()
  const ackedRedis = redisWrites.filter((w) => w.acked)
  const values = ackedRedis.length ? await redis.mget(ackedRedis.map((w) => `${prefix}:${w.seq}`)) : []
  return {
    pg: pgWrites.filter((w) => w.acked && !stored.has(w.seq)).length,
    redis: values.filter((v) => v === null).length,
  }
}

/** The table the PostgreSQL write loop (test/stack/pg/cluster.ts) inserts into, created through the VIP. */
async function ensureWritesTable(pgTarget: PgTarget): Promise<void> {
  const client = new pg.Client({ ...pgTarget, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    await client.query(
      'CREATE TABLE IF NOT EXISTS hastack_writes (id bigserial PRIMARY KEY, label text NOT NULL, ' +
        'seq int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())',
    )
  } finally {
    await client.end()
  }
}

/**
 * Write through the VIP to both endpoints, cause `fault` after 3 s of steady writes, run on for
 * AFTER_FAULT_MS, and report both gaps and lost writes.
 */
async function measure(t: Tap, ctx: SiteContext, vip: string, label: string, fault: () => Promise<void>) {
  const secrets = ctx.secrets()
  const pgTarget = {
    host: vip,
    port: 5000,
    user: 'app',
    password: secrets.postgresql_app_password!,
    database: 'app',
    ssl: ctx.pgTls(),
  }
  const redisTarget: RedisTarget = { host: vip, port: 6380, password: secrets.redis_password!, ...ctx.redisTls() }
  const prefix = `vip-${label}-${Date.now()}`
  await ensureWritesTable(pgTarget)
  let faultAt = 0
  const over = () => faultAt > 0 && Date.now() - faultAt > AFTER_FAULT_MS
  const pgLoop = writeLoop({
    target: pgTarget,
    label: prefix,
    periodMs: 100,
    maxMs: 90_000,
    writeTimeoutMs: WRITE_TIMEOUT_MS,
    stop: over,
  })
  const redisLoop = redisWriteLoop(redisTarget, prefix, over)
  await sleep(3000)
  await fault()
  faultAt = Date.now()
  const pgWrites = await pgLoop
  await redisLoop.done
  const pgGap = longestGap(pgWrites).seconds
  const redisGap = longestGap(redisLoop.writes).seconds
  const acked = (ws: Write[]) => ws.filter((w) => w.acked).length
  t.comment(`${label}: longest write gap PostgreSQL ${pgGap.toFixed(2)} s, Redis ${redisGap.toFixed(2)} s`)
  t.comment(`${label}: acknowledged ${acked(pgWrites)}/${pgWrites.length} pg, ${acked(redisLoop.writes)} Redis`)
  t.ok(pgGap <= GAP_BOUND_S, `${label}: PostgreSQL write gap ${pgGap.toFixed(2)} s ≤ ${GAP_BOUND_S} s`)
  t.ok(redisGap <= GAP_BOUND_S, `${label}: Redis write gap ${redisGap.toFixed(2)} s ≤ ${GAP_BOUND_S} s`)
  const reader = new Redis({ ...redisTarget, connectTimeout: 3000, maxRetriesPerRequest: 1 })
  reader.on('error', () => {})
  try {
    const lost = await lostWrites(pgTarget, prefix, pgWrites, reader, redisLoop.writes)
    t.same(lost, { pg: 0, redis: 0 }, `${label}: no acknowledged write lost`)
  } finally {
    reader.disconnect()
  }
}

/** The stack is whole again: every Patroni member running with a leader, Redis with both replicas. */
async function waitHealthy(ctx: SiteContext, vip: string): Promise<void> {
  const members = ctx.hosts('postgres').length
  await until(
    'every Patroni member running',
    180_000,
    async () => {
      const m = await patroniMembers(ctx)
      return m.length === members && leaderOf(m) && m.every((x) => ['running', 'streaming'].includes(x.state))
    },
    1000,
  )
  const redis = new Redis({
    host: vip,
    port: 6380,
    password: ctx.secrets().redis_password,
    ...ctx.redisTls(),
    maxRetriesPerRequest: 1,
  })
  redis.on('error', () => {})
  try {
    const replicas = ctx.hosts('redis').length - 1
    await until(
      `the Redis primary with ${replicas} replicas`,
      180_000,
      async () => {
        const info = await redis.info('replication').catch(() => '')
        return info.includes(`connected_slaves:${replicas}`)
      },
      1000,
    )
  } finally {
    redis.disconnect()
  }
}

export const vip: SiteCheck = {
  name: 'vip: killing the VIP holder or stopping its HAProxy moves the VIP once, writes pause ≤ 3 s, none lost',
  destructive: true,
  async run(t, ctx) {
    const address = ctx.lab.need().vip
    if (!address) return void t.fail('the lab has no VIP (its haproxy group needs two hosts)')
    const first = await oneHolder(ctx, address)
    t.ok(await tcpOpen(address, 5000, 2000), `the VIP ${address} answers on 5000 from the machine (held by ${first})`)
    await leaderOff(t, ctx, first)
    await redisPrimaryOff(t, ctx, first)
    await waitHealthy(ctx, address)
    const since = Math.floor(Date.now() / 1000)

    await measure(t, ctx, address, 'kill', () => ctx.lab.kill(first))
    const second = await oneHolder(ctx, address, 10_000)
    t.not(second, first, `the VIP moved from ${first} to ${second}`)
    await ctx.lab.start(first)
    await waitHealthy(ctx, address)
    await until(`${first} serves HAProxy again`, 60_000, () => haproxyServes(ctx, first))
    await sleep(5000)
    t.equal(await oneHolder(ctx, address), second, `${first} is back and the VIP stays on ${second}`)
    t.equal(await masterEntries(ctx, second, since), 1, `${second} became MASTER once`)
    t.equal(await masterEntries(ctx, first, since), 0, `${first} never took the VIP back`)

    const stopAt = Math.floor(Date.now() / 1000)
    const stopHaproxy = async () => {
      const r = await ctx.lab.ssh(second, 'sudo systemctl stop haproxy')
      t.equal(r.code, 0, `HAProxy stopped on ${second}`)
    }
    await measure(t, ctx, address, 'haproxy-stop', stopHaproxy)
    t.equal(await oneHolder(ctx, address, 10_000), first, `the VIP moved to ${first} when HAProxy stopped on ${second}`)
    t.equal((await ctx.lab.ssh(second, 'sudo systemctl start haproxy')).code, 0, `HAProxy started on ${second}`)
    await until(`${second} serves HAProxy again`, 60_000, () => haproxyServes(ctx, second))
    await sleep(5000)
    t.equal(await oneHolder(ctx, address), first, `the VIP stays on ${first} once HAProxy serves on ${second} again`)
    t.equal(await masterEntries(ctx, second, stopAt), 0, `${second} did not take it back`)
    await waitHealthy(ctx, address)
  },
}
