/**
 * prometheus.yml generated from the inventory: one scrape job per service of the stack,
 * its targets the hosts of the service's group (adding a host to a group adds its targets),
 * each target labelled with its inventory host, its groups and the hastack role behind it
 * (`hastack_role`: a target label named `role` would override the exporters' own `role`,
 * Redis' master or slave, which Prometheus would then rename to `exported_role`).
 * Pure: inventory in, configuration object out (roles/prometheus writes it as YAML).
 */
import type { Inventory, Vars } from '../../lib/types.ts'
import { STACK_DEFAULTS, groupMembers, tlsOn, type TlsService } from '../stack.ts'
import { TLS_FILES, tlsPath } from '../certificates/index.ts'

/** Where the prometheus role puts hastack's rule files and the HAProxy password. */
export const RULES_REMOTE_DIR = '/etc/prometheus/rules/hastack'
export const HAPROXY_PASSWORD_FILE = '/etc/prometheus/haproxy-stats.pass'

export interface StaticTarget {
  targets: string[]
  labels: { host: string; groups: string; hastack_role: string }
}

export interface ScrapeJob {
  job_name: string
  metrics_path?: string
  basic_auth?: { username: string; password_file: string }
  scheme?: 'https'
  tls_config?: { ca_file: string }
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
  /** The TLS switch of the port scraped: with it on, HTTPS checked against the stack's CA. */
  tls?: TlsService
}

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
  },
  {
    job: 'etcd',
    group: (v) => String(v.etcd_group ?? STACK_DEFAULTS.etcd_group),
    role: 'etcd',
    portVar: 'etcd_client_port',
  },
  { job: 'redis', group: () => 'redis', role: 'redis_exporter', portVar: 'redis_exporter_port' },
  { job: 'sentinel', group: () => 'sentinel', role: 'redis_exporter', portVar: 'redis_exporter_sentinel_port' },
  {
    job: 'haproxy',
    group: () => 'haproxy',
    role: 'haproxy',
    portVar: 'haproxy_stats_port',
    basicAuth: true,
    tls: 'haproxy_stats',
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
    const job: ScrapeJob = {
      job_name: spec.job,
      static_configs: hosts.map((host) => ({
        targets: [endpoint(inventory, host, spec.portVar)],
        labels: { host, groups: groupsLabel(inventory, host), hastack_role: spec.role },
      })),
    }
    if (spec.basicAuth) {
      job.basic_auth = { username: String(monitoringVars.haproxy_stats_user), password_file: HAPROXY_PASSWORD_FILE }
    }
    if (spec.tls && tlsOn(monitoringVars, spec.tls)) {
      job.scheme = 'https'
      job.tls_config = { ca_file: tlsPath(monitoringVars, TLS_FILES.ca) }
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
