/**
 * prometheus.yml generated from the inventory: one scrape job per service of the stack,
 * its targets the hosts of the service's group (adding a host to a group adds its targets),
 * each target labelled with its inventory host, its groups and the hastack role behind it
 * (`hastack_role`: a target label named `role` would override the exporters' own `role`,
 * Redis' master or slave, which Prometheus would then rename to `exported_role`).
 * Pure: inventory in, configuration object out (roles/prometheus writes it as YAML).
 */
import type { Inventory, Vars } from '../../lib/types.ts'
import { STACK_DEFAULTS, groupMembers, tlsOn } from '../stack.ts'
import { tlsFiles } from '../tls.ts'

/** Where the prometheus role puts hastack's rule files and the HAProxy password. */
export const RULES_REMOTE_DIR = '/etc/prometheus/rules/hastack'
export const HAPROXY_PASSWORD_FILE = '/etc/prometheus/haproxy-stats.pass'

export interface StaticTarget {
  targets: string[]
  labels: { host: string; groups: string; hastack_role: string }
}

/** How Prometheus verifies a target over https, and the client certificate it shows (etcd asks for one). */
export interface TlsConfig {
  ca_file: string
  cert_file?: string
  key_file?: string
}

export interface ScrapeJob {
  job_name: string
  scheme?: 'https'
  tls_config?: TlsConfig
  metrics_path?: string
  basic_auth?: { username: string; password_file: string }
  static_configs: StaticTarget[]
}

export interface PrometheusConfig {
  global: { scrape_interval: string; evaluation_interval: string }
  rule_files: string[]
  alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] }
  scrape_configs: ScrapeJob[]
}

/** One kind of target: which group runs it, which role sets it up, which variable names its port. */
interface JobSpec {
  job: string
  /** The group whose hosts are targets (a variable naming the group, or the group itself). */
  group: (v: Vars) => string
  role: string
  portVar: string
  basicAuth?: boolean
  /** Over https when this says so (the monitoring host's variables): the CA, and a client certificate if needed. */
  tls?: (v: Vars) => TlsConfig | undefined
}

/**
 * etcd's metrics are on its client port: with TLS etcd asks every client for a certificate, so Prometheus
 * shows its own (the prometheus copy of the monitoring host's key). The certificate's name is no etcd user:
 * it reads /metrics and /health, nothing in the key space. One TLS listener, no plaintext metrics port.
 */
const etcdTls = (v: Vars): TlsConfig | undefined => {
  if (!tlsOn(v, 'etcd')) return undefined
  const f = tlsFiles(v, 'prometheus')
  return { ca_file: f.ca, cert_file: f.cert, key_file: f.key }
}
/** Patroni's /metrics over HTTPS needs no credentials: the CA only. */
const patroniTls = (v: Vars): TlsConfig | undefined =>
  tlsOn(v, 'patroni_api') ? { ca_file: tlsFiles(v).ca } : undefined

/** HAProxy's stats page over HTTPS needs its basic-auth password and the CA. */
const haproxyStatsTls = (v: Vars): TlsConfig | undefined =>
  tlsOn(v, 'haproxy_stats') ? { ca_file: tlsFiles(v).ca } : undefined

const JOBS: JobSpec[] = [
  { job: 'node', group: () => 'all', role: 'node_exporter', portVar: 'node_exporter_port' },
  {
    job: 'postgres',
    group: (v) => String(v.patroni_group ?? STACK_DEFAULTS.patroni_group),
    role: 'postgres_exporter',
    portVar: 'postgres_exporter_port',
  },
  {
    job: 'patroni',
    group: (v) => String(v.patroni_group ?? STACK_DEFAULTS.patroni_group),
    role: 'patroni',
    portVar: 'patroni_restapi_port',
    tls: patroniTls,
  },
  {
    job: 'etcd',
    group: (v) => String(v.etcd_group ?? STACK_DEFAULTS.etcd_group),
    role: 'etcd',
    portVar: 'etcd_client_port',
    tls: etcdTls,
  },
  { job: 'redis', group: () => 'redis', role: 'redis_exporter', portVar: 'redis_exporter_port' },
  { job: 'sentinel', group: () => 'sentinel', role: 'redis_exporter', portVar: 'redis_exporter_sentinel_port' },
  {
    job: 'haproxy',
    group: () => 'haproxy',
    role: 'haproxy',
    portVar: 'haproxy_stats_port',
    basicAuth: true,
    tls: haproxyStatsTls,
  },
  { job: 'prometheus', group: () => 'monitoring', role: 'prometheus', portVar: 'prometheus_port' },
  { job: 'alertmanager', group: () => 'monitoring', role: 'alertmanager', portVar: 'alertmanager_port' },
]

function groupHosts(inventory: Inventory, group: string): string[] {
  return group === 'all' ? [...inventory.hosts.keys()] : groupMembers(inventory, group)
}

/** `address:port` of a host's service, from that host's own variables. */
function endpoint(inventory: Inventory, host: string, portVar: string): string {
  const v = inventory.hosts.get(host)!.vars
  const port = v[portVar]
  if (port === undefined) throw new Error(`host ${host} has no ${portVar}`)
  return `${String(v.address)}:${String(port)}`
}

/** The groups a host belongs to, without `all`, sorted and comma-separated. */
export function groupsLabel(inventory: Inventory, host: string): string {
  return inventory.hosts
    .get(host)!
    .groups.filter((g) => g !== 'all')
    .sort()
    .join(',')
}

/** The scrape jobs of the stack; a job whose group has no host is left out. */
export function scrapeJobs(inventory: Inventory, monitoringVars: Vars): ScrapeJob[] {
  const jobs: ScrapeJob[] = []
  for (const spec of JOBS) {
    const hosts = groupHosts(inventory, spec.group(monitoringVars))
    if (hosts.length === 0) continue
    const tls = spec.tls?.(monitoringVars)
    const job: ScrapeJob = {
      job_name: spec.job,
      ...(tls ? { scheme: 'https' as const, tls_config: tls } : {}),
      static_configs: hosts.map((host) => ({
        targets: [endpoint(inventory, host, spec.portVar)],
        labels: { host, groups: groupsLabel(inventory, host), hastack_role: spec.role },
      })),
    }
    if (spec.basicAuth) {
      job.basic_auth = { username: String(monitoringVars.haproxy_stats_user), password_file: HAPROXY_PASSWORD_FILE }
    }
    jobs.push(job)
  }
  return jobs
}

/** The whole prometheus.yml for a monitoring host. */
export function prometheusConfig(inventory: Inventory, monitoringVars: Vars): PrometheusConfig {
  const interval = String(monitoringVars.prometheus_scrape_interval)
  const alertmanagers = groupHosts(inventory, 'monitoring').map((h) => endpoint(inventory, h, 'alertmanager_port'))
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [`${RULES_REMOTE_DIR}/*.yml`],
    alerting: { alertmanagers: alertmanagers.length ? [{ static_configs: [{ targets: alertmanagers }] }] : [] },
    scrape_configs: scrapeJobs(inventory, monitoringVars),
  }
}
