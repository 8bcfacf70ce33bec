/**
 * One reading of the whole stack: every host of the inventory is asked, over its one connection and
 * all hosts in parallel, for what its groups run (Patroni, etcd, Redis, Sentinel, HAProxy, the VIP,
 * backups, Prometheus's alerts). The result is plain data, judged by health.ts and printed by
 * status-text.ts; a host that cannot be reached is named with the reason.
 */
import type { Connection } from '../../lib/types.ts'
import { mask } from '../../lib/output/mask.ts'
import type { Fleet } from './fleet.ts'
import { cliEndpoint, type Endpoint } from '../../roles/redis/cli.ts'
import type { Component, Limits } from './health.ts'
import { etcdClientUrl, patroniApiCa, patroniApiUrl } from '../../roles/tls.ts'
import {
  holdsAddress,
  readAlerts,
  readBackupTimestamp,
  readEtcd,
  readHaproxy,
  readPatroni,
  readRedis,
  readSentinel,
  type EtcdReading,
  type HaproxyReading,
  type PatroniReading,
  type RedisReading,
  type SentinelReading,
} from './readers.ts'

export interface StackState {
  readAt: string
  /** Each host's cluster address, to turn addresses (Redis, Sentinel) back into host names. */
  addresses: Record<string, string>
  /** Hosts that could not be reached, with the reason. */
  unreachable: Record<string, string>
  patroni: PatroniReading[]
  etcd: EtcdReading[]
  redis: RedisReading[]
  sentinels: SentinelReading[]
  haproxy: HaproxyReading[]
  /** With `vip_address` set on the haproxy hosts: who holds it. */
  vip?: { address: string; holders: string[] }
  /** The newest backup success any host reports (Unix seconds). */
  backup?: { host: string; timestamp: number }
  /** Firing alerts, when the inventory has a monitoring host that answers. */
  alerts?: string[]
  /** The Redis master name and Sentinel quorum, as the inventory sets them. */
  redisMasterName: string
  sentinelQuorum: number
}

/** What the stack's groups are called (the shared variables' defaults unless the inventory says otherwise). */
export function stackGroups(fleet: Fleet) {
  const any = fleet.inventory.hosts.keys().next().value
  const v = any ? fleet.vars(any) : {}
  return {
    etcd: String(v.etcd_group ?? 'etcd'),
    postgres: String(v.patroni_group ?? 'postgres'),
    redis: 'redis',
    sentinel: 'sentinel',
    haproxy: 'haproxy',
    app: 'app',
    monitoring: 'monitoring',
  }
}

/** The URL of a host's Patroni REST API, at its inventory address (https with `patroni_api_tls`). */
export function patroniApi(fleet: Fleet, host: string): string {
  return patroniApiUrl(fleet.vars(host))
}

/** A host's Redis as redis-cli on that host reaches it (TLS options included when the stack uses them). */
export function redisEndpoint(fleet: Fleet, host: string): Endpoint {
  const v = fleet.vars(host)
  return cliEndpoint(v, String(v.address), Number(v.redis_port), String(v.redis_password ?? ''))
}

/** A host's Sentinel as redis-cli on that host reaches it (TLS options included when the stack uses them). */
export function sentinelEndpoint(fleet: Fleet, host: string): Endpoint {
  const v = fleet.vars(host)
  return cliEndpoint(v, String(v.address), Number(v.sentinel_port), String(v.sentinel_password ?? ''))
}

/**
 * Read one host's part, its readers at once (each on its own channel: a reading costs the slowest
 * reader, not their sum); the readings are pushed into `state`.
 */
async function readHost(fleet: Fleet, host: string, conn: Connection, state: StackState): Promise<void> {
  const g = stackGroups(fleet)
  const v = fleet.vars(host)
  const inGroup = (group: string) => fleet.members(group).includes(host)
  const vip = inGroup(g.haproxy) && typeof v.vip_address === 'string' && v.vip_address ? v.vip_address : undefined
  const asksAlerts = inGroup(g.monitoring) && state.alerts === undefined
  if (vip) state.vip ??= { address: vip, holders: [] }
  const [patroni, etcd, redis, sentinel, haproxy, holdsVip, alerts, backup] = await Promise.all([
    inGroup(g.postgres) ? readPatroni(conn, host, patroniApi(fleet, host), patroniApiCa(v)) : undefined,
    inGroup(g.etcd) ? readEtcd(conn, host, etcdClientUrl(v)) : undefined,
    inGroup(g.redis) ? readRedis(conn, host, redisEndpoint(fleet, host)) : undefined,
    inGroup(g.sentinel) ? readSentinel(conn, host, sentinelEndpoint(fleet, host), state.redisMasterName) : undefined,
    inGroup(g.haproxy) ? readHaproxy(conn, host) : undefined,
    vip ? holdsAddress(conn, vip) : false,
    asksAlerts ? readAlerts(conn, `http://${v.address}:${v.prometheus_port ?? 9090}`) : undefined,
    readBackupTimestamp(conn),
  ])
  if (patroni) state.patroni.push(patroni)
  if (etcd) state.etcd.push(etcd)
  if (redis) state.redis.push(redis)
  if (sentinel) state.sentinels.push(sentinel)
  if (haproxy) state.haproxy.push(haproxy)
  if (holdsVip) state.vip!.holders.push(host)
  if (asksAlerts && state.alerts === undefined) state.alerts = alerts
  if (backup !== undefined && (!state.backup || backup > state.backup.timestamp)) {
    state.backup = { host, timestamp: backup }
  }
}

/** Read the whole stack: one connection per host, hosts in parallel; readings in inventory order. */
export async function readStack(fleet: Fleet): Promise<StackState> {
  const hosts = [...fleet.inventory.hosts.keys()]
  const first = fleet.vars(hosts[0]!)
  const state: StackState = {
    readAt: new Date().toISOString(),
    addresses: Object.fromEntries(hosts.map((h) => [h, String(fleet.vars(h).address)])),
    unreachable: {},
    patroni: [],
    etcd: [],
    redis: [],
    sentinels: [],
    haproxy: [],
    redisMasterName: String(first.redis_master_name),
    sentinelQuorum: Number(first.sentinel_quorum),
  }
  await Promise.all(
    hosts.map(async (host) => {
      try {
        await readHost(fleet, host, await fleet.conn(host), state)
      } catch (error) {
        state.unreachable[host] = mask(error instanceof Error ? error.message : String(error))
      }
    }),
  )
  const order = (a: { host: string }, b: { host: string }) => hosts.indexOf(a.host) - hosts.indexOf(b.host)
  for (const list of [state.patroni, state.etcd, state.redis, state.sentinels, state.haproxy]) list.sort(order)
  state.vip?.holders.sort((a, b) => hosts.indexOf(a) - hosts.indexOf(b))
  return state
}

/** The inventory's members of each component (its group's hosts). */
export function componentMembers(fleet: Fleet): (component: Component) => string[] {
  const g = stackGroups(fleet)
  const group: Record<Component, string> = {
    etcd: g.etcd,
    postgres: g.postgres,
    redis: g.redis,
    sentinel: g.sentinel,
    app: g.app,
    haproxy: g.haproxy,
  }
  return (component) => fleet.members(group[component])
}

/** The health limits, from the variables the roles already use for the same judgement, on their groups' hosts. */
export function limitsOf(fleet: Fleet): Limits {
  const members = componentMembers(fleet)
  const varsOf = (component: Component) => {
    const [first] = members(component)
    return first ? fleet.vars(first) : {}
  }
  return {
    pgMaxLagBytes: Number(varsOf('postgres').patroni_maximum_lag_on_failover ?? 1_048_576),
    redisMaxLagSeconds: Number(varsOf('redis').redis_min_replicas_max_lag ?? 10),
  }
}
