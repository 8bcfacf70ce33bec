/**
 * The alertmanager role on a scripted monitoring host: a fresh host gets Alertmanager
 * bound to the cluster address (no gossip listener) with the inventory's receivers in
 * an alertmanager.yml that `amtool check-config` accepted as a candidate first, readable
 * by root and the prometheus group only; a converged host changes nothing; a receiver
 * added to the inventory reaches the file through a check and a reload, not a restart;
 * a file amtool rejects never replaces the live one; check mode writes nothing. (Bad
 * receivers are refused by the inventory checks: test/unit/monitoring.test.ts.)
 */
import t from 'tap'
import { parse } from 'yaml'
import { alertmanagerRole } from '../../roles/alertmanager/index.ts'
import { MONITORING_HOST, monitoringInventory, monitoringWorld } from './monitoring-world.ts'

const play = [{ name: 'alertmanager', hosts: 'monitoring', roles: [alertmanagerRole] }]
const CONFIG = '/etc/prometheus/alertmanager.yml'
const CONFIG_TASK = 'Ensure the Alertmanager configuration is current'
const RELOAD = 'Reload Alertmanager'
const UNIT = 'prometheus-alertmanager'
const AMTOOL = 'amtool check-config /etc/prometheus/.alertmanager.yml.hastack-scripted'

const ONCALL = { name: 'oncall', type: 'webhook', url: 'http://127.0.0.1:5001/alerts', severities: ['critical'] }
const OPS_MAIL = { name: 'ops-mail', type: 'email', to: 'ops@example.org' }
const SMTP = { alertmanager_smtp_smarthost: 'localhost:25', alertmanager_smtp_from: 'alerts@example.org' }

/** The monitoring inventory with these receivers (and the SMTP settings e-mail needs). */
const withReceivers = (...receivers: object[]) => monitoringInventory({ alertmanager_receivers: receivers, ...SMTP })

interface AlertmanagerFile {
  global?: Record<string, unknown>
  route: { receiver: string; routes: { receiver: string; continue: boolean; matchers?: string[] }[] }
  receivers: { name: string; webhook_configs?: { url: string }[]; email_configs?: { to: string }[] }[]
}

t.test("a fresh host gets Alertmanager with the inventory's receivers, checked by amtool", async (t) => {
  const { lab, checks } = await monitoringWorld(withReceivers(ONCALL))
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const mon = lab.host(MONITORING_HOST)
  const order = run.tasks(MONITORING_HOST).map((x) => x.name)
  t.ok(order.includes(CONFIG_TASK), 'the configuration task ran (its put checks the candidate first)')
  t.ok(run.named(MONITORING_HOST, 'changed').includes(CONFIG_TASK))
  const config = parse(mon.readFile(CONFIG) ?? '') as AlertmanagerFile
  t.same(
    config.receivers.map((r) => r.name),
    ['hastack-none', 'oncall'],
  )
  t.same(config.receivers[1]?.webhook_configs?.[0]?.url, ONCALL.url)
  t.same(config.route.routes, [{ receiver: 'oncall', continue: true, matchers: ['severity=~"critical"'] }])
  t.equal(config.global, undefined, 'no SMTP settings without an e-mail receiver')
  t.same(
    checks.map((c) => c.command),
    [AMTOOL],
  )
  t.equal(checks[0]?.content, mon.readFile(CONFIG), 'the checked candidate is the file that was written')
  t.match(mon.fs.get(CONFIG), { owner: 'root', group: 'prometheus', mode: '0640' })
  t.match(mon.readFile(`/etc/default/${UNIT}`), '--web.listen-address=10.0.0.40:9093 --cluster.listen-address="')
  t.ok(mon.service(UNIT).active)
  t.equal(run.tasks(MONITORING_HOST).find((x) => x.name === 'Wait for Alertmanager to be ready')?.status, 'ok')
  t.same(mon.unmatched, [])
})

t.test('a converged host changes nothing and runs no check', async (t) => {
  const { lab, checks } = await monitoringWorld(withReceivers(ONCALL))
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host(MONITORING_HOST).resetCalls()
  checks.length = 0
  const run = await lab.run(play)
  t.ok(run.success)
  t.equal(run.stats.get(MONITORING_HOST)?.changed, 0)
  t.same(lab.host(MONITORING_HOST).mutations, [])
  t.same(checks, [])
})

t.test('a receiver added to the inventory is checked and applied by a reload, not a restart', async (t) => {
  const { lab, checks } = await monitoringWorld(withReceivers(ONCALL))
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const mon = lab.host(MONITORING_HOST)
  const { restarts, reloads } = mon.service(UNIT)
  checks.length = 0
  await lab.reconfigure(withReceivers(ONCALL, OPS_MAIL))
  const run = await lab.run(play)
  t.same(run.named(MONITORING_HOST, 'changed'), [CONFIG_TASK, RELOAD])
  const config = parse(mon.readFile(CONFIG) ?? '') as AlertmanagerFile
  t.same(config.receivers[2], { name: 'ops-mail', email_configs: [{ to: OPS_MAIL.to, send_resolved: true }] })
  t.same(config.route.routes[1], { receiver: 'ops-mail', continue: true }, 'every severity')
  t.match(config.global, { smtp_smarthost: 'localhost:25', smtp_from: 'alerts@example.org' })
  t.same(
    checks.map((c) => c.command),
    [AMTOOL],
  )
  t.same(mon.service(UNIT), { enabled: true, active: true, restarts, reloads: reloads + 1 })
})

t.test('a configuration amtool rejects never replaces the live one and is not reloaded', async (t) => {
  const world = await monitoringWorld(withReceivers(ONCALL))
  const { lab } = world
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const mon = lab.host(MONITORING_HOST)
  const live = mon.readFile(CONFIG)
  const reloads = mon.service(UNIT).reloads
  world.rejectWith('unsupported scheme "" for URL')
  await lab.reconfigure(withReceivers(ONCALL, OPS_MAIL))
  const run = await lab.run(play)
  t.notOk(run.success)
  const check = run.tasks(MONITORING_HOST).find((x) => x.name === CONFIG_TASK)
  t.equal(check?.status, 'failed', 'the configuration task fails: its checker rejected the candidate')
  t.match(
    check?.reason,
    /FAILED: unsupported scheme[\s\S]*validation of the new \/etc\/prometheus\/alertmanager\.yml failed/,
  )
  t.equal(mon.readFile(CONFIG), live, 'the live file is left as it was')
  t.notOk(mon.fs.has(`${CONFIG}.hastack-candidate`), 'the rejected candidate is removed')
  t.notOk(run.tasks(MONITORING_HOST).some((x) => x.name === RELOAD))
  t.equal(mon.service(UNIT).reloads, reloads)
})

t.test('check mode on a fresh host reports the plan, writes nothing and runs no checker', async (t) => {
  const { lab, checks } = await monitoringWorld(withReceivers(ONCALL))
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named(MONITORING_HOST, 'changed').includes(CONFIG_TASK))
  t.same(lab.host(MONITORING_HOST).writes, [])
  t.same(lab.host(MONITORING_HOST).mutations, [])
  t.same(checks, [])
  t.same(lab.host(MONITORING_HOST).unmatched, [], 'every command sent was a known read')
})
