/**
 * The monitoring roles without a lab: scrape jobs derived from the inventory's groups,
 * the generated prometheus.yml accepted by promtool, the exporters' settings bound to the
 * cluster address, and the inventory checks (retention, intervals, receivers) that run
 * before any connection.
 */
import t from 'tap'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { parse } from 'yaml'
import { tree } from '../fixtures/tree.ts'
import { InventoryErrors, loadInventory } from '../../lib/inventory/index.ts'
import { renderTemplate } from '../../lib/template.ts'
import type { HostView, Inventory } from '../../lib/types.ts'
import { allRoles } from '../../roles/index.ts'
import { prometheusConfig, scrapeJobs, HAPROXY_PASSWORD_FILE } from '../../roles/prometheus/scrape.ts'
import { prometheusYaml } from '../../roles/prometheus/index.ts'
import { alertmanagerConfig, receiverErrors, type Receiver } from '../../roles/alertmanager/receivers.ts'
import { durationMs } from '../../roles/monitoring/duration.ts'
import { hasMonitoring, monitoringPlays } from '../../playbooks/plays/monitoring.ts'

const INVENTORY = `
all:
  children:
    etcd: { hosts: { db1: { address: 10.0.0.11 }, db2: { address: 10.0.0.12 }, db3: { address: 10.0.0.13 } } }
    postgres: { hosts: { db1: , db2: , db3: } }
    redis: { hosts: { redis1: { address: 10.0.0.31 }, redis2: { address: 10.0.0.32 } } }
    sentinel: { hosts: { redis1: , redis2: , redis3: { address: 10.0.0.33 } } }
    haproxy: { hosts: { lb1: { address: 10.0.0.20 } } }
    monitoring: { hosts: { mon1: { address: 10.0.0.40 } } }
`

async function load(text: string, extra: string[] = []): Promise<Inventory> {
  const dir = await tree({ 'inv.yml': text })
  return loadInventory(path.join(dir, 'inv.yml'), { roles: allRoles, extraVars: extra })
}

/** The problems loading reports (empty when it loads). */
async function problems(text: string, extra: string[] = []): Promise<string[]> {
  try {
    await load(text, extra)
    return []
  } catch (err) {
    if (err instanceof InventoryErrors) return err.errors.map((e) => e.message)
    throw err
  }
}

const monVars = (inv: Inventory) => inv.hosts.get('mon1')!.vars

function view(inv: Inventory, name: string): HostView {
  const vars = inv.hosts.get(name)!.vars
  return {
    name,
    vars,
    facts: {} as HostView['facts'],
    groups: inv.hosts.get(name)!.groups,
    inventory: inv,
    hostvars: (n) => inv.hosts.get(n)!.vars,
  }
}

t.test('every service of the stack becomes a scrape job with one target per host of its group', async (t) => {
  const inv = await load(INVENTORY)
  const jobs = scrapeJobs(inv, monVars(inv))
  const targets = Object.fromEntries(jobs.map((j) => [j.job_name, j.static_configs.map((s) => s.targets[0])]))
  t.same(targets, {
    node: [
      '10.0.0.11:9100',
      '10.0.0.12:9100',
      '10.0.0.13:9100',
      '10.0.0.31:9100',
      '10.0.0.32:9100',
      '10.0.0.33:9100',
      '10.0.0.20:9100',
      '10.0.0.40:9100',
    ],
    postgres: ['10.0.0.11:9187', '10.0.0.12:9187', '10.0.0.13:9187'],
    patroni: ['10.0.0.11:8008', '10.0.0.12:8008', '10.0.0.13:8008'],
    etcd: ['10.0.0.11:2379', '10.0.0.12:2379', '10.0.0.13:2379'],
    redis: ['10.0.0.31:9121', '10.0.0.32:9121'],
    sentinel: ['10.0.0.31:9122', '10.0.0.32:9122', '10.0.0.33:9122'],
    haproxy: ['10.0.0.20:7000'],
    prometheus: ['10.0.0.40:9090'],
    alertmanager: ['10.0.0.40:9093'],
  })
})

t.test('each target is labelled with its host, its groups and the role behind it', async (t) => {
  const inv = await load(INVENTORY)
  const jobs = scrapeJobs(inv, monVars(inv))
  const labelsOf = (job: string, host: string) =>
    jobs.find((j) => j.job_name === job)!.static_configs.find((s) => s.labels.host === host)!.labels
  t.same(labelsOf('patroni', 'db2'), { host: 'db2', groups: 'etcd,postgres', hastack_role: 'patroni' })
  t.same(labelsOf('sentinel', 'redis1'), { host: 'redis1', groups: 'redis,sentinel', hastack_role: 'redis_exporter' })
  t.same(labelsOf('node', 'lb1'), { host: 'lb1', groups: 'haproxy', hastack_role: 'node_exporter' })
})

t.test('adding a host to a group adds its targets; an empty group adds no job', async (t) => {
  const grown = await load(
    INVENTORY.replace(
      'redis2: { address: 10.0.0.32 } }',
      'redis2: { address: 10.0.0.32 }, redis4: { address: 10.0.0.34 } }',
    ),
  )
  const redis = scrapeJobs(grown, monVars(grown)).find((j) => j.job_name === 'redis')!
  t.same(
    redis.static_configs.map((s) => s.labels.host),
    ['redis1', 'redis2', 'redis4'],
  )
  const noRedis = await load(INVENTORY.replace(/ {4}redis:.*\n {4}sentinel:.*\n/, ''))
  const names = scrapeJobs(noRedis, monVars(noRedis)).map((j) => j.job_name)
  t.notOk(names.includes('redis') || names.includes('sentinel'), names.join(','))
})

t.test('the etcd job follows etcd_group when the members live in a group of another name', async (t) => {
  const renamed = await load(INVENTORY.replace('    etcd: {', '    dcs: {'), ['etcd_group=dcs'])
  const etcd = scrapeJobs(renamed, monVars(renamed)).find((j) => j.job_name === 'etcd')!
  t.same(
    etcd.static_configs.map((s) => s.labels.host),
    ['db1', 'db2', 'db3'],
  )
})

t.test('a port set in the inventory moves its targets', async (t) => {
  const inv = await load(INVENTORY, ['node_exporter_port=19100', 'patroni_restapi_port=18008'])
  const jobs = scrapeJobs(inv, monVars(inv))
  t.equal(jobs.find((j) => j.job_name === 'node')!.static_configs[0]!.targets[0], '10.0.0.11:19100')
  t.equal(jobs.find((j) => j.job_name === 'patroni')!.static_configs[0]!.targets[0], '10.0.0.11:18008')
})

t.test('HAProxy is scraped with basic auth from a password file; no secret is in prometheus.yml', async (t) => {
  const inv = await load(INVENTORY)
  const yaml = prometheusYaml(inv, monVars(inv))
  const haproxy = prometheusConfig(inv, monVars(inv)).scrape_configs.find((j) => j.job_name === 'haproxy')!
  t.same(haproxy.basic_auth, { username: 'admin', password_file: HAPROXY_PASSWORD_FILE })
  for (const secret of Object.values(inv.secrets))
    t.notOk(yaml.includes(secret), 'a generated secret leaked into prometheus.yml')
  t.match(yaml, /^# Managed by hastack/)
})

t.test('prometheus.yml sends alerts to the monitoring hosts and loads the deployed rules', async (t) => {
  const inv = await load(INVENTORY, ['prometheus_scrape_interval=30s'])
  const config = prometheusConfig(inv, monVars(inv))
  t.same(config.alerting.alertmanagers, [{ static_configs: [{ targets: ['10.0.0.40:9093'] }] }])
  t.same(config.rule_files, ['/etc/prometheus/rules/hastack/*.yml'])
  t.same(config.global, { scrape_interval: '30s', evaluation_interval: '30s' })
})

t.test('promtool check config accepts the generated prometheus.yml', async (t) => {
  // Plaintext: with TLS on, promtool also opens the client certificate, which only a converged host has.
  const inv = await load(INVENTORY, ['tls_enabled=false'])
  const dir = await tree({})
  const file = path.join(dir, 'prometheus.yml')
  writeFileSync(file, prometheusYaml(inv, monVars(inv)))
  const run = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8', timeout: 60_000 })
  t.notOk(run.error, "promtool runs (Debian's prometheus package)")
  t.equal(run.status, 0, `${run.stdout}${run.stderr}`)
})

t.test('a bad retention or scrape interval is refused before any connection', async (t) => {
  t.match(
    (await problems(INVENTORY, ['prometheus_retention=15days'])).join('\n'),
    /prometheus_retention: "15days" is not a duration/,
  )
  t.match(
    (await problems(INVENTORY, ['prometheus_retention=30m'])).join('\n'),
    /prometheus_retention is 30m: it must be between 2h and 10y/,
  )
  t.match(
    (await problems(INVENTORY, ['prometheus_retention=0d'])).join('\n'),
    /prometheus_retention: "0d" is a zero duration/,
  )
  t.match(
    (await problems(INVENTORY, ['prometheus_scrape_interval=10m'])).join('\n'),
    /prometheus_scrape_interval is 10m/,
  )
  t.same(await problems(INVENTORY, ['prometheus_retention=90d']), [])
})

t.test('Prometheus durations are read as Prometheus reads them', async (t) => {
  t.equal(durationMs('15s'), 15_000)
  t.equal(durationMs('1h30m'), 5_400_000)
  t.equal(durationMs('2w'), 14 * 86_400_000)
  t.throws(() => durationMs('30m1h'), /not a duration/)
  t.throws(() => durationMs(''), /not a duration/)
})

t.test('receivers: an unknown type, a bad URL, a duplicate name and e-mail without a relay are refused', async (t) => {
  const smtp = { smarthost: '', from: '' }
  t.same(receiverErrors([{ name: 'ops', type: 'pager', url: 'http://x' }], smtp), [
    'alertmanager_receivers[0]: unknown receiver type "pager" (webhook or email)',
  ])
  t.same(receiverErrors([{ name: 'ops', type: 'webhook', url: 'ftp://x' }], smtp), [
    'alertmanager_receivers[0]: url must be an http(s) URL',
  ])
  t.match(
    receiverErrors(
      [
        { name: 'a', type: 'webhook', url: 'http://x/' },
        { name: 'a', type: 'webhook', url: 'http://y/' },
      ],
      smtp,
    ),
    ['alertmanager_receivers[1]: the name a is used twice'],
  )
  t.same(receiverErrors([{ name: 'mail', type: 'email', to: 'ops@example.org' }], smtp), [
    'alertmanager_receivers[0]: e-mail needs alertmanager_smtp_smarthost as host:port',
    'alertmanager_receivers[0]: e-mail needs alertmanager_smtp_from as an address',
  ])
  t.same(receiverErrors([{ name: 'w', type: 'webhook', url: 'http://x/', to: 'a@b.org' }], smtp), [
    'alertmanager_receivers[0]: unknown key to for a webhook receiver',
  ])
  t.same(receiverErrors([{ name: 'w', type: 'webhook', url: 'http://x/', severities: ['urgent'] }], smtp), [
    'alertmanager_receivers[0]: severities must be a non-empty list of critical, warning, info',
  ])
})

t.test('receivers from the inventory are checked when it loads', async (t) => {
  const receivers = 'vars: { alertmanager_receivers: [ { name: ops, type: sms, to: "+100" } ] }'
  const bad = INVENTORY.replace('mon1: { address: 10.0.0.40 } } }', `mon1: { address: 10.0.0.40 } }, ${receivers} }`)
  t.match((await problems(bad)).join('\n'), /host mon1: alertmanager_receivers\[0\]: unknown receiver type "sms"/)
})

const TIMING = { groupWait: '30s', groupInterval: '5m', repeatInterval: '4h' }

t.test('notification timing comes from the inventory and is checked when it loads', async (t) => {
  const receivers = [{ name: 'hook', type: 'webhook' as const, url: 'http://127.0.0.1:9999/alerts' }]
  const fast = alertmanagerConfig(receivers, { smarthost: '', from: '' }, { ...TIMING, groupWait: '5s' }) as any
  t.match(fast.route, { group_wait: '5s', group_interval: '5m', repeat_interval: '4h' })
  const timing = 'vars: { alertmanager_group_wait: 2h, alertmanager_repeat_interval: 10s }'
  const bad = INVENTORY.replace('mon1: { address: 10.0.0.40 } } }', `mon1: { address: 10.0.0.40 } }, ${timing} }`)
  t.match((await problems(bad)).join('\n'), /host mon1: alertmanager_group_wait is 2h: it must be between 1s and 1h/)
  t.match(
    (await problems(bad)).join('\n'),
    /host mon1: alertmanager_repeat_interval is 10s: it must be between 1m and 30d/,
  )
})

t.test('every receiver gets every alert, or only the severities it asks for', async (t) => {
  const receivers: Receiver[] = [
    { name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9999/alerts' },
    { name: 'mail', type: 'email', to: 'ops@example.org', severities: ['critical'] },
  ]
  const smtp = { smarthost: 'mail.example.org:25', from: 'alerts@example.org' }
  const config = alertmanagerConfig(receivers, smtp, TIMING) as any
  t.same(config.route.routes, [
    { receiver: 'hook', continue: true },
    { receiver: 'mail', continue: true, matchers: ['severity=~"critical"'] },
  ])
  t.same(config.receivers[1], {
    name: 'hook',
    webhook_configs: [{ url: 'http://127.0.0.1:9999/alerts', send_resolved: true }],
  })
  t.equal(config.global.smtp_smarthost, 'mail.example.org:25')
  t.notOk(
    'global' in alertmanagerConfig(receivers.slice(0, 1), { smarthost: '', from: '' }, TIMING),
    'no SMTP settings without e-mail',
  )
})

t.test('exporters, Prometheus and Alertmanager listen on the cluster address, never on all addresses', async (t) => {
  const inv = await load(INVENTORY)
  const rendered = [
    renderTemplate('node_exporter/default.ejs', view(inv, 'db1')),
    renderTemplate('postgres_exporter/default.ejs', view(inv, 'db1'), { postgres_exporter_password_file: '/p' }),
    renderTemplate('redis_exporter/default.ejs', view(inv, 'redis1'), {
      redis_exporter_target: 'Sentinel',
      redis_exporter_target_port: 26379,
      redis_exporter_target_password: 'pw',
      redis_exporter_listen_port: 9122,
      redis_exporter_ca: '',
    }),
    renderTemplate('prometheus/default.ejs', view(inv, 'mon1')),
    renderTemplate('alertmanager/default.ejs', view(inv, 'mon1')),
  ]
  const listen = rendered.map((text) => /--web\.listen-address=([^\s"]+)/.exec(text)?.[1])
  t.same(listen, ['10.0.0.11:9100', '10.0.0.11:9187', '10.0.0.31:9122', '10.0.0.40:9090', '10.0.0.40:9093'])
  t.match(rendered[4], /--cluster\.listen-address="/, 'Alertmanager opens no gossip port')
  t.match(rendered[3], /--storage\.tsdb\.retention\.time=15d/)
  t.match(
    rendered[1],
    /DATA_SOURCE_URI="127\.0\.0\.1:5432\/postgres\?sslmode=disable"\nDATA_SOURCE_USER="hastack_monitor"/,
  )
})

t.test('the monitoring playbook leaves out the parts whose group the inventory lacks', async (t) => {
  const inv = await load(INVENTORY.replace(/ {4}redis:.*\n {4}sentinel:.*\n/, ''))
  t.same(
    monitoringPlays(inv).map((p) => p.hosts),
    ['all', 'postgres', 'monitoring'],
  )
})

t.test('site.ts takes the monitoring part only where the inventory has a monitoring host', async (t) => {
  t.equal(hasMonitoring(await load(INVENTORY)), true)
  t.equal(hasMonitoring(await load(INVENTORY.replace(/ {4}monitoring:.*\n/, ''))), false)
})

t.test('the generated configuration parses back to what was generated', async (t) => {
  const inv = await load(INVENTORY)
  t.same(parse(prometheusYaml(inv, monVars(inv))), prometheusConfig(inv, monVars(inv)))
})
