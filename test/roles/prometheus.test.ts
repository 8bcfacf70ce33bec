/**
 * The prometheus role on a scripted monitoring host: a fresh host gets Prometheus with
 * hastack's rule files and a prometheus.yml whose scrape targets come from the
 * inventory's groups, checked by `promtool check config` as a candidate before it is
 * written; a converged host changes nothing and runs no check; a host added to a group
 * becomes a target through a checked file and a reload, never a restart; a file promtool
 * rejects never replaces the live one; a drifted or retired rule file is put right with
 * a reload; check mode writes nothing.
 */
import t from 'tap'
import { parse } from 'yaml'
import { prometheusRole } from '../../roles/prometheus/index.ts'
import type { PrometheusConfig } from '../../roles/prometheus/scrape.ts'
import { MONITORING_HOST, monitoringInventory, monitoringWorld } from './monitoring-world.ts'

const play = [{ name: 'prometheus', hosts: 'monitoring', roles: [prometheusRole] }]
const CONFIG = '/etc/prometheus/prometheus.yml'
const RULES = '/etc/prometheus/rules/hastack'
const CONFIG_TASK = 'Ensure the Prometheus configuration is current'
const RELOAD = 'Reload Prometheus'
const RESTART = 'Restart Prometheus'
const PROMTOOL = 'promtool check config /etc/prometheus/.prometheus.yml.hastack-scripted'

/** The targets of each scrape job of a prometheus.yml. */
function targetsByJob(text: string | undefined): Record<string, string[]> {
  const config = parse(text ?? '') as PrometheusConfig
  return Object.fromEntries(
    config.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((s) => s.targets)]),
  )
}

/** The monitoring inventory with a second HAProxy host (a host added to a group). */
function withSecondLoadBalancer(): Record<string, unknown> {
  const doc = monitoringInventory() as { all: { children: Record<string, { hosts: Record<string, unknown> }> } }
  doc.all.children.haproxy!.hosts.lb2 = { address: '10.0.0.21' }
  return doc
}

t.test('a fresh host gets Prometheus scraping what the inventory groups run, checked by promtool', async (t) => {
  const { lab, checks } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const mon = lab.host(MONITORING_HOST)
  const order = run.tasks(MONITORING_HOST).map((x) => x.name)
  t.ok(order.includes(CONFIG_TASK), 'the configuration task ran (its put checks the candidate first)')
  t.ok(run.named(MONITORING_HOST, 'changed').includes(CONFIG_TASK))
  t.same(targetsByJob(mon.readFile(CONFIG)), {
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
    redis: ['10.0.0.31:9121', '10.0.0.32:9121', '10.0.0.33:9121'],
    sentinel: ['10.0.0.31:9122', '10.0.0.32:9122', '10.0.0.33:9122'],
    haproxy: ['10.0.0.20:7000'],
    prometheus: ['10.0.0.40:9090'],
    alertmanager: ['10.0.0.40:9093'],
  })
  t.same(
    checks.map((c) => c.command),
    [PROMTOOL],
    'promtool checked one candidate',
  )
  t.equal(checks[0]?.content, mon.readFile(CONFIG), 'the checked candidate is the file that was written')
  t.notOk(mon.fs.has(`/etc/prometheus/.${CONFIG.split('/').pop()}.hastack-scripted`), 'no candidate left behind')
  t.match(mon.readFile('/etc/default/prometheus'), '--web.listen-address=10.0.0.40:9090 ')
  t.match(mon.fs.get('/etc/prometheus/haproxy-stats.pass'), { owner: 'root', group: 'prometheus', mode: '0640' })
  const vars = lab.inventory.hosts.get(MONITORING_HOST)!.vars
  t.equal(mon.readFile('/etc/prometheus/haproxy-stats.pass'), String(vars.haproxy_stats_password))
  t.ok(
    [...mon.fs.keys()].some((p) => p.startsWith(`${RULES}/`) && p.endsWith('.yml')),
    "hastack's rule files are deployed",
  )
  t.ok(mon.service('prometheus').active)
  const handlers = run.tasks(MONITORING_HOST).filter((x) => x.name === RELOAD || x.name === RESTART)
  t.same(
    handlers.map((x) => x.name),
    [RESTART],
    'the first install restarts Prometheus once; the restart supersedes the reload',
  )
  t.equal(run.tasks(MONITORING_HOST).find((x) => x.name === 'Wait for Prometheus to be ready')?.status, 'ok')
  t.same(mon.unmatched, [])
})

t.test('an inventory without HAProxy has no haproxy job and no HAProxy password on the host', async (t) => {
  const doc = monitoringInventory() as { all: { children: Record<string, unknown> } }
  delete doc.all.children.haproxy
  const { lab } = await monitoringWorld(doc)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const mon = lab.host(MONITORING_HOST)
  const targets = targetsByJob(mon.readFile(CONFIG))
  t.equal(targets.haproxy, undefined)
  t.notOk(targets.node?.includes('10.0.0.20:9100'), 'lb1 left the inventory with its group')
  t.notOk(run.tasks(MONITORING_HOST).some((x) => x.name === 'Ensure Prometheus has the HAProxy metrics password'))
  t.notOk(mon.fs.has('/etc/prometheus/haproxy-stats.pass'))
})

t.test('a converged host changes nothing and runs no check', async (t) => {
  const { lab, checks } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host(MONITORING_HOST).resetCalls()
  checks.length = 0
  const run = await lab.run(play)
  t.ok(run.success)
  t.equal(run.stats.get(MONITORING_HOST)?.changed, 0)
  t.same(lab.host(MONITORING_HOST).mutations, [])
  t.same(lab.host(MONITORING_HOST).writes, [])
  t.same(checks, [])
})

t.test('a host added to a group becomes a target through a checked file and a reload, not a restart', async (t) => {
  const { lab, checks } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const mon = lab.host(MONITORING_HOST)
  const { restarts, reloads } = mon.service('prometheus')
  checks.length = 0
  await lab.reconfigure(withSecondLoadBalancer())
  const run = await lab.run(play)
  t.same(run.named(MONITORING_HOST, 'changed'), [CONFIG_TASK, RELOAD])
  const targets = targetsByJob(mon.readFile(CONFIG))
  t.same(targets.haproxy, ['10.0.0.20:7000', '10.0.0.21:7000'])
  t.ok(targets.node?.includes('10.0.0.21:9100'), 'the new host is scraped for host metrics too')
  t.same(
    checks.map((c) => c.command),
    [PROMTOOL],
    'the new file was checked first',
  )
  t.equal(mon.service('prometheus').restarts, restarts, 'not restarted')
  t.equal(mon.service('prometheus').reloads, reloads + 1, 'reloaded once')
})

t.test('a configuration promtool rejects never replaces the live one and is not reloaded', async (t) => {
  const world = await monitoringWorld()
  const { lab } = world
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const mon = lab.host(MONITORING_HOST)
  const live = mon.readFile(CONFIG)
  const reloads = mon.service('prometheus').reloads
  world.rejectWith('parsing YAML file: unknown field')
  await lab.reconfigure(withSecondLoadBalancer())
  const run = await lab.run(play)
  t.notOk(run.success)
  const check = run.tasks(MONITORING_HOST).find((x) => x.name === CONFIG_TASK)
  t.equal(check?.status, 'failed', 'the configuration task fails: its checker rejected the candidate')
  t.match(
    check?.reason,
    /FAILED: parsing YAML file[\s\S]*validation of the new \/etc\/prometheus\/prometheus\.yml failed/,
  )
  t.equal(mon.readFile(CONFIG), live, 'the live file is left as it was')
  t.notOk(mon.fs.has(`/etc/prometheus/.${CONFIG.split('/').pop()}.hastack-scripted`), 'the candidate is removed')
  t.notOk(
    run.tasks(MONITORING_HOST).some((x) => x.name === RELOAD),
    'no reload',
  )
  t.equal(mon.service('prometheus').reloads, reloads)
})

t.test('a drifted rule file is put back and a retired one removed, each applied by a reload', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const mon = lab.host(MONITORING_HOST)
  const restarts = mon.service('prometheus').restarts
  const shipped = mon.readFile(`${RULES}/node.yml`)
  mon.writeFile(`${RULES}/node.yml`, 'groups: []\n')
  mon.writeFile(`${RULES}/retired.yml`, 'groups: []\n')
  mon.resetCalls()
  const run = await lab.run(play)
  t.same(run.named(MONITORING_HOST, 'changed'), [
    'Ensure the alert rules node.yml are current',
    'Remove the old rule file retired.yml',
    RELOAD,
  ])
  t.equal(mon.readFile(`${RULES}/node.yml`), shipped)
  t.notOk(mon.fs.has(`${RULES}/retired.yml`))
  t.equal(mon.service('prometheus').restarts, restarts, 'not restarted')
})

t.test('changed arguments restart Prometheus (a reload cannot change its flags)', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const mon = lab.host(MONITORING_HOST)
  const restarts = mon.service('prometheus').restarts
  await lab.reconfigure(monitoringInventory({ prometheus_retention: '30d' }))
  const run = await lab.run(play)
  t.same(run.named(MONITORING_HOST, 'changed'), ['Ensure the Prometheus arguments are current', RESTART])
  t.match(mon.readFile('/etc/default/prometheus'), '--storage.tsdb.retention.time=30d"')
  t.equal(mon.service('prometheus').restarts, restarts + 1)
})

t.test('check mode on a fresh host reports the plan, writes nothing and runs no checker', async (t) => {
  const { lab, checks } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named(MONITORING_HOST, 'changed').includes(CONFIG_TASK))
  t.same(lab.host(MONITORING_HOST).writes, [])
  t.same(lab.host(MONITORING_HOST).mutations, [])
  t.same(checks, [])
  t.same(lab.host(MONITORING_HOST).unmatched, [], 'every command sent was a known read')
})
