/**
 * The node_exporter role on a scripted host: a fresh host gets the exporter and dbus
 * (for the systemd collector), installed without starting, its arguments bound to the
 * cluster address, then started; a converged host changes nothing; drifted arguments
 * are rewritten and the exporter restarted; check mode writes nothing.
 */
import t from 'tap'
import { nodeExporterRole } from '../../roles/node_exporter/index.ts'
import { monitoringInventory, monitoringWorld } from './monitoring-world.ts'

const play = [{ name: 'node_exporter', hosts: 'db1', roles: [nodeExporterRole] }]
const DEFAULTS = '/etc/default/prometheus-node-exporter'
const ARGS_TASK = 'Ensure the node_exporter arguments are current'
const RESTART = 'Restart node_exporter'
const UNIT = 'prometheus-node-exporter'

t.test('a fresh host installs the exporter and dbus, binds it to the cluster address and starts it', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const db1 = lab.host('db1')
  t.same(run.named('db1', 'changed'), [
    'Ensure node_exporter is installed',
    'Ensure the system bus runs for the collector',
    ARGS_TASK,
    'Ensure node_exporter is enabled and started',
    RESTART,
  ])
  t.ok(db1.mutations.includes(`apt-get install ${UNIT} dbus (service starts denied)`))
  t.match(db1.readFile(DEFAULTS), /--web\.listen-address=10\.0\.0\.11:9100 --collector\.systemd /)
  t.notMatch(db1.readFile(DEFAULTS), /fs-types-exclude=[^ "]*overlay/, 'an overlay root counts as a disk')
  t.equal(run.tasks('db1').find((x) => x.name === 'Wait for node_exporter to listen')?.status, 'ok')
  t.same(db1.service(UNIT), { enabled: true, active: true, restarts: 1, reloads: 0 })
  t.ok(db1.service('dbus').active, 'the collector has a system bus')
  t.same(db1.unmatched, [])
})

t.test('a converged host changes nothing', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('db1').resetCalls()
  const run = await lab.run(play)
  t.ok(run.success)
  t.equal(run.stats.get('db1')?.changed, 0)
  t.same(lab.host('db1').mutations, [])
  t.same(lab.host('db1').writes, [])
})

t.test('drifted arguments are rewritten and the exporter restarted', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const db1 = lab.host('db1')
  const converged = db1.readFile(DEFAULTS)
  db1.writeFile(DEFAULTS, 'ARGS="--web.listen-address=0.0.0.0:9100"\n')
  db1.resetCalls()
  const run = await lab.run(play)
  t.same(run.named('db1', 'changed'), [ARGS_TASK, RESTART])
  t.equal(db1.readFile(DEFAULTS), converged, 'bound to the cluster address again')
  t.equal(db1.service(UNIT).restarts, 2)
})

t.test('a port from the inventory reaches the arguments and the wait', async (t) => {
  const { lab } = await monitoringWorld(monitoringInventory({ node_exporter_port: 9200 }))
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  t.match(lab.host('db1').readFile(DEFAULTS), /--web\.listen-address=10\.0\.0\.11:9200 /)
  t.ok(
    lab.host('db1').commands.some((c) => c.includes('/dev/tcp/10.0.0.11/9200')),
    'waited for on the configured port',
  )
})

t.test('check mode on a fresh host reports the plan and writes nothing', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('db1', 'changed').includes(ARGS_TASK))
  t.same(lab.host('db1').writes, [])
  t.same(lab.host('db1').mutations, [])
  t.same(lab.host('db1').unmatched, [], 'every command sent was a known read')
})
