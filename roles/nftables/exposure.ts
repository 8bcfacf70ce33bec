/**
 * Which port of which host the stack needs reachable, and from where: derived from the inventory
 * (which group runs which service, which group talks to it). The one source of truth for the
 * nftables role (what each host accepts) and the audit (which listening sockets are expected).
 * Pure: inventory in, a list of exposures out.
 */
import type { Inventory, Vars } from '../../lib/types.ts'
import { alertmanagerRole } from '../alertmanager/index.ts'
import { etcdRole } from '../etcd/index.ts'
import { grafanaRole } from '../grafana/index.ts'
import { haproxyRole } from '../haproxy/index.ts'
import { LOGGING_GROUP, journalRemoteRole } from '../journal_remote/index.ts'
import { nodeExporterRole } from '../node_exporter/index.ts'
import { postgresExporterRole } from '../postgres_exporter/index.ts'
import { prometheusRole } from '../prometheus/index.ts'
import { redisExporterRole } from '../redis_exporter/index.ts'
import { STACK_DEFAULTS, groupMembers, tlsOn } from '../stack.ts'

/** Where connections to an exposed port may come from. */
export interface Sources {
  /** Inventory hosts (their `address`). */
  hosts: string[]
  /** Extra IPv4 networks (CIDR), e.g. `postgresql_client_networks`. */
  networks: string[]
  /**
   * The operators' admin network: the control machine (the address hastack's SSH connection comes from) and
   * `firewall_admin_networks`. It reaches SSH and every management port (MANAGEMENT below), never a peer link.
   */
  control: boolean
  /** Any address: the load balancers' client ports. */
  anywhere: boolean
}

/** One service port of one host and who may reach it. `vrrp` has no port (IP protocol 112). */
export interface Exposure {
  host: string
  service: string
  protocol: 'tcp' | 'udp' | 'vrrp'
  port?: number
  sources: Sources
}

/** The SSH port every host accepts from the control machine. */
export const SSH_PORT = 22

/** The defaults of every variable naming a port or a group, under the inventory's values. */
const PORT_DEFAULTS: Vars = {
  ...STACK_DEFAULTS,
  ...etcdRole.defaults,
  ...haproxyRole.defaults,
  ...nodeExporterRole.defaults,
  ...postgresExporterRole.defaults,
  ...redisExporterRole.defaults,
  ...prometheusRole.defaults,
  ...alertmanagerRole.defaults,
  ...grafanaRole.defaults,
  ...journalRemoteRole.defaults,
}

/** A host's variables with the port and group defaults under them. */
export function exposureVars(inventory: Inventory, host: string): Vars {
  return { ...PORT_DEFAULTS, ...inventory.hosts.get(host)!.vars }
}

function unique(names: string[]): string[] {
  return [...new Set(names)]
}

/**
 * What the admin network reaches besides SSH: the ports an operator uses from a bastion (etcdctl, psql,
 * patronictl, redis-cli, a browser, a metrics scrape). Not the peer links (etcd peers, VRRP, journal upload,
 * pgBackRest's SSH between hosts) nor the app's backends, which only HAProxy uses.
 */
export const MANAGEMENT = { control: true } as const

/** Every exposure of the stack, host by host in inventory order. */
export function stackExposures(inventory: Inventory): Exposure[] {
  const first = inventory.hosts.keys().next().value
  if (first === undefined) return []
  // Each host's variables merged once (a merge copies some 250 variables; the list reads a few of them often).
  const merged = new Map<string, Vars>()
  const varsOf = (host: string) => merged.get(host) ?? merged.set(host, exposureVars(inventory, host)).get(host)!
  const top = varsOf(first)
  const members = (group: string) => (group === 'all' ? [...inventory.hosts.keys()] : groupMembers(inventory, group))
  const etcd = members(String(top.etcd_group))
  const patroni = members(String(top.patroni_group))
  const backup = members(String(top.pgbackrest_group))
  const redis = members('redis')
  const sentinel = members('sentinel')
  const haproxy = members('haproxy')
  const monitoring = members('monitoring')
  const app = members('app')
  const exposures: Exposure[] = []
  const from = (hosts: string[], extra: Partial<Sources> = {}): Sources => ({
    hosts: unique(hosts),
    networks: [],
    control: false,
    anywhere: false,
    ...extra,
  })
  /** Each host of `on` exposes the port its own `portVar` names to `sources`. */
  const expose = (
    on: string[],
    service: string,
    portVar: string,
    sources: Sources,
    protocol: 'tcp' | 'udp' = 'tcp',
  ) => {
    for (const host of on) exposures.push({ host, service, protocol, port: Number(varsOf(host)[portVar]), sources })
  }
  for (const host of inventory.hosts.keys())
    exposures.push({ host, service: 'ssh', protocol: 'tcp', port: SSH_PORT, sources: from([], { control: true }) })
  expose(etcd, 'etcd client', 'etcd_client_port', from([...etcd, ...patroni, ...backup, ...monitoring], MANAGEMENT))
  expose(etcd, 'etcd peer', 'etcd_peer_port', from(etcd))
  const pgVars = patroni.length > 0 ? varsOf(patroni[0]!) : top
  const pgNetworks = (pgVars.postgresql_client_networks as string[] | undefined) ?? []
  const pgSources = [...patroni, ...haproxy, ...backup]
  expose(patroni, 'postgresql', 'postgresql_port', from(pgSources, { ...MANAGEMENT, networks: pgNetworks }))
  expose(patroni, 'patroni rest api', 'patroni_restapi_port', from([...pgSources, ...monitoring], MANAGEMENT))
  if (backup.length > 0) {
    // pgBackRest's own SSH: the repository host reaches the members, the members push WAL to it.
    for (const host of patroni)
      exposures.push({ host, service: 'pgbackrest ssh', protocol: 'tcp', port: SSH_PORT, sources: from(backup) })
    for (const host of backup)
      exposures.push({ host, service: 'pgbackrest ssh', protocol: 'tcp', port: SSH_PORT, sources: from(patroni) })
    // pgBackRest's TLS server (pgbackrest_tls): the members other than the repository host fetch and push WAL.
    const tlsClients = patroni.filter((m) => !backup.includes(m))
    if (tlsOn(varsOf(backup[0]!), 'pgbackrest') && tlsClients.length > 0)
      expose(backup, 'pgbackrest tls', 'pgbackrest_tls_port', from(tlsClients))
  }
  expose(redis, 'redis', 'redis_port', from([...redis, ...sentinel, ...haproxy, ...app, ...backup], MANAGEMENT))
  // A Redis host asks the Sentinels which server is the primary before its first start (roles/redis/primary.ts).
  expose(sentinel, 'sentinel', 'sentinel_port', from([...sentinel, ...redis, ...app], MANAGEMENT))
  const clients = from([], { anywhere: true })
  if (patroni.length > 0) {
    expose(haproxy, 'haproxy postgresql read-write', 'haproxy_pg_rw_port', clients)
    expose(haproxy, 'haproxy postgresql read-only', 'haproxy_pg_ro_port', clients)
  }
  if (redis.length > 0) expose(haproxy, 'haproxy redis', 'redis_haproxy_port', clients)
  if (app.length > 0) {
    expose(haproxy, 'haproxy vote app', 'app_http_port', clients)
    expose(haproxy, 'haproxy result page', 'app_result_http_port', clients)
    expose(app, 'app vote', 'app_vote_port', from(haproxy))
    expose(app, 'app result', 'app_result_port', from(haproxy))
  }
  expose(haproxy, 'haproxy stats', 'haproxy_stats_port', from(monitoring, MANAGEMENT))
  if (haproxy.length > 1 && varsOf(haproxy[0]!).vip_address !== undefined)
    for (const host of haproxy)
      exposures.push({
        host,
        service: 'keepalived vrrp',
        protocol: 'vrrp',
        sources: from(haproxy.filter((h) => h !== host)),
      })
  if (monitoring.length > 0) {
    expose(members('all'), 'node_exporter', 'node_exporter_port', from(monitoring, MANAGEMENT))
    expose(patroni, 'postgres_exporter', 'postgres_exporter_port', from(monitoring, MANAGEMENT))
    expose(redis, 'redis_exporter', 'redis_exporter_port', from(monitoring, MANAGEMENT))
    expose(sentinel, 'sentinel exporter', 'redis_exporter_sentinel_port', from(monitoring, MANAGEMENT))
    expose(monitoring, 'prometheus', 'prometheus_port', from(monitoring, MANAGEMENT))
    expose(monitoring, 'alertmanager', 'alertmanager_port', from(monitoring, MANAGEMENT))
    expose(monitoring, 'grafana', 'grafana_port', from([], MANAGEMENT))
  }
  expose(members(LOGGING_GROUP), 'journal-remote', 'journal_remote_port', from(members('all')))
  return exposures
}

/** The exposures of one host. */
export function hostExposures(inventory: Inventory, host: string): Exposure[] {
  return stackExposures(inventory).filter((e) => e.host === host)
}
