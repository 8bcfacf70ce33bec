/**
 * The redis_exporter role on scripted Redis/Sentinel hosts: a host running both gets
 * Debian's exporter for Redis and hastack's unit for Sentinel, each with its own
 * server's password in a root-only file, on its own port of the cluster address; a
 * Sentinel-only host keeps Debian's Redis instance off; a converged host changes
 * nothing; a drifted Sentinel settings file restarts only the Sentinel exporter;
 * check mode writes nothing.
 */
import t from 'tap'
import { redisExporterRole } from '../../roles/redis_exporter/index.ts'
import { monitoringInventory, monitoringWorld } from './monitoring-world.ts'

const play = [{ name: 'redis_exporter', hosts: 'redis:sentinel', roles: [redisExporterRole] }]
const REDIS_UNIT = 'prometheus-redis-exporter'
const SENTINEL_UNIT = 'prometheus-redis-exporter-sentinel'
const REDIS_DEFAULTS = `/etc/default/${REDIS_UNIT}`
const SENTINEL_DEFAULTS = `/etc/default/${SENTINEL_UNIT}`
const SENTINEL_SETTINGS = 'Ensure the Sentinel exporter settings are current'
const RESTART_SENTINEL = 'Restart the Sentinel exporter'

/** The monitoring inventory with a fourth Sentinel that runs no Redis server (a quorum of 3 of 4). */
function withSentinelOnlyHost(): Record<string, unknown> {
  const doc = monitoringInventory({ sentinel_quorum: 3 }) as {
    all: { children: Record<string, { hosts: Record<string, unknown> }> }
  }
  doc.all.children.sentinel!.hosts.sentinel4 = { address: '10.0.0.34' }
  return doc
}

t.test('a Redis and Sentinel host exports both, each authenticated, on the cluster address', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const redis1 = lab.host('redis1')
  const vars = lab.inventory.hosts.get('redis1')!.vars
  t.same(run.named('redis1', 'changed'), [
    'Ensure redis_exporter is installed',
    'Ensure the Redis exporter settings are current',
    'Ensure the Redis exporter is enabled and started',
    SENTINEL_SETTINGS,
    'Ensure the Sentinel exporter unit is current',
    'Ensure the Sentinel exporter is enabled and started',
    'Restart the Redis exporter',
    RESTART_SENTINEL,
  ])
  const redisDefaults = redis1.readFile(REDIS_DEFAULTS) ?? ''
  t.match(redisDefaults, `REDIS_ADDR="redis://127.0.0.1:${String(vars.redis_port)}"`)
  t.ok(redisDefaults.includes(`REDIS_PASSWORD="${String(vars.redis_password)}"`), "Redis' own password")
  t.match(redisDefaults, '--web.listen-address=10.0.0.31:9121"')
  const sentinelDefaults = redis1.readFile(SENTINEL_DEFAULTS) ?? ''
  t.match(sentinelDefaults, `REDIS_ADDR="redis://127.0.0.1:${String(vars.sentinel_port)}"`)
  t.ok(sentinelDefaults.includes(`REDIS_PASSWORD="${String(vars.sentinel_password)}"`), "Sentinel's own password")
  t.match(sentinelDefaults, '--web.listen-address=10.0.0.31:9122"')
  for (const path of [REDIS_DEFAULTS, SENTINEL_DEFAULTS])
    t.match(redis1.fs.get(path), { owner: 'root', mode: '0600' }, `${path} is readable by root only`)
  t.match(redis1.readFile(`/etc/systemd/system/${SENTINEL_UNIT}.service`), `EnvironmentFile=${SENTINEL_DEFAULTS}`)
  for (const unit of [REDIS_UNIT, SENTINEL_UNIT])
    t.same(redis1.service(unit), { enabled: true, active: true, restarts: 1, reloads: 0 }, unit)
  t.same(redis1.unmatched, [])
})

t.test("a Sentinel-only host exports its Sentinel and keeps Debian's Redis instance off", async (t) => {
  const { lab } = await monitoringWorld(withSentinelOnlyHost())
  t.teardown(() => lab.cleanup())
  const sentinel4 = lab.host('sentinel4')
  // Debian's package enables and starts its instance when nothing denies it.
  sentinel4.setService(REDIS_UNIT, { enabled: true, active: true })
  const run = await lab.run(play)
  t.ok(run.success)
  t.ok(run.named('sentinel4', 'changed').includes("Ensure Debian's Redis exporter stays off on a Sentinel-only host"))
  t.same(sentinel4.service(REDIS_UNIT), { enabled: false, active: false, restarts: 0, reloads: 0 })
  t.equal(sentinel4.readFile(REDIS_DEFAULTS), undefined, 'no Redis settings on a host without Redis')
  t.match(sentinel4.readFile(SENTINEL_DEFAULTS), '--web.listen-address=10.0.0.34:9122"')
  t.ok(sentinel4.service(SENTINEL_UNIT).active)
  t.notOk(run.tasks('sentinel4').some((x) => x.name === 'Wait for the Redis exporter to listen'))
  t.equal(run.tasks('sentinel4').find((x) => x.name === 'Wait for the Sentinel exporter to listen')?.status, 'ok')
})

t.test('a converged host changes nothing', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('redis2').resetCalls()
  const run = await lab.run(play)
  t.ok(run.success)
  t.equal(run.stats.get('redis2')?.changed, 0)
  t.same(lab.host('redis2').mutations, [])
  t.same(lab.host('redis2').writes, [])
})

t.test('drifted Sentinel settings restart the Sentinel exporter only', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const redis2 = lab.host('redis2')
  const converged = redis2.readFile(SENTINEL_DEFAULTS)
  redis2.writeFile(SENTINEL_DEFAULTS, 'ARGS="--web.listen-address=0.0.0.0:9122"\n', { mode: '0644' })
  redis2.resetCalls()
  const run = await lab.run(play)
  t.same(run.named('redis2', 'changed'), [SENTINEL_SETTINGS, RESTART_SENTINEL])
  t.equal(redis2.readFile(SENTINEL_DEFAULTS), converged)
  t.match(redis2.fs.get(SENTINEL_DEFAULTS), { mode: '0600' }, 'root-only again')
  t.equal(redis2.service(SENTINEL_UNIT).restarts, 2)
  t.equal(redis2.service(REDIS_UNIT).restarts, 1, 'the Redis exporter keeps running')
})

t.test('check mode on a fresh host reports the plan and writes nothing', async (t) => {
  const { lab } = await monitoringWorld()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('redis3', 'changed').includes(SENTINEL_SETTINGS))
  t.same(lab.host('redis3').writes, [])
  t.same(lab.host('redis3').mutations, [])
  t.same(lab.host('redis3').unmatched, [], 'every command sent was a known read')
})
