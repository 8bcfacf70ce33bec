/**
 * The sentinel role on three scripted hosts: the first deploy writes
 * sentinel.conf watching the current primary; afterwards hastack never writes
 * the file again and reconciles the settings it owns with SENTINEL SET (a
 * drifted or changed setting, a lost auth-pass, a forgotten monitor), also
 * after a failover; check mode writes nothing.
 */
import t from 'tap'
import { redisRole } from '../../roles/redis/index.ts'
import { sentinelRole } from '../../roles/sentinel/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { RedisWorld } from './redis-world.ts'
import { stackInventory } from './stack.ts'

const HOSTS = ['redis1', 'redis2', 'redis3']
const CONF = '/etc/redis/sentinel.conf'
const MONITOR = 'Ensure this Sentinel monitors hastack-redis with the inventory settings'
const FIRST_DEPLOY = 'Ensure sentinel.conf is written (first deploy only)'
const redisPlay = [{ name: 'redis', hosts: 'redis', roles: [redisRole] }]
const sentinelPlay = [{ name: 'sentinel', hosts: 'sentinel', roles: [sentinelRole] }]

/** Redis converged; the Sentinels converged too unless `fresh`. */
async function world(fresh = false): Promise<{ lab: ScriptedLab; redis: RedisWorld }> {
  const lab = await scriptedLab(stackInventory())
  const redis = new RedisWorld(lab)
  await lab.run(redisPlay)
  if (!fresh) await lab.run(sentinelPlay)
  for (const h of HOSTS) lab.host(h).resetCalls()
  return { lab, redis }
}

t.test('the first deploy writes sentinel.conf watching the primary and starts every Sentinel', async (t) => {
  const { lab, redis } = await world(true)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(sentinelPlay)
  t.ok(run.success)
  for (const h of HOSTS) {
    t.match(lab.host(h).readFile(CONF), /^sentinel monitor hastack-redis 10\.0\.0\.31 6379 2$/m, `${h} watches redis1`)
    t.ok(
      run.named(h, 'changed').includes(FIRST_DEPLOY) && run.named(h, 'changed').includes('Restart Sentinel'),
      `${h}: file written, Sentinel restarted`,
    )
    t.equal(run.tasks(h).find((x) => x.name === MONITOR)?.status, 'ok', `${h}: the file already carries the settings`)
    t.same(lab.host(h).unmatched, [], `${h}: only expected commands`)
  }
  t.equal(redis.sentinel('10.0.0.32')?.masters.get('hastack-redis')?.ip, '10.0.0.31')
})

t.test('converged Sentinels change nothing, also after a failover', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(sentinelPlay)
  redis.failover('hastack-redis', 'redis3')
  const afterFailover = await lab.run(sentinelPlay)
  for (const h of HOSTS) {
    t.equal(run.stats.get(h)?.changed, 0, `${h}: changed=0`)
    t.equal(afterFailover.stats.get(h)?.changed, 0, `${h}: changed=0 after the failover`)
    t.same(lab.host(h).writes, [], `${h}: sentinel.conf never rewritten by hastack`)
    t.same(lab.host(h).mutations, [], `${h}: nothing sent that changes it`)
  }
  t.equal(redis.sentinel('10.0.0.31')?.masters.get('hastack-redis')?.ip, '10.0.0.33', 'the failover stands')
})

t.test('a drifted running setting is set back with SENTINEL SET, without a restart or a file write', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  redis.sentinel('10.0.0.32')!.masters.get('hastack-redis')!.settings['down-after-milliseconds'] = '1234'
  const run = await lab.run(sentinelPlay)
  t.same(run.named('redis2', 'changed'), [MONITOR])
  t.same(lab.host('redis2').mutations, ['SENTINEL SET hastack-redis down-after-milliseconds'])
  t.same(lab.host('redis2').writes, [])
  t.equal(lab.host('redis2').service('redis-sentinel').restarts, 1, "only the first deploy's restart")
  t.equal(run.stats.get('redis1')?.changed, 0)
})

t.test('a changed inventory setting reaches every Sentinel through SENTINEL SET', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.reconfigure(stackInventory({ sentinel_failover_timeout: 30000, sentinel_parallel_syncs: 2 }))
  const run = await lab.run(sentinelPlay)
  for (const h of HOSTS) {
    t.same(run.named(h, 'changed'), [MONITOR], h)
    t.same(lab.host(h).mutations, ['SENTINEL SET hastack-redis failover-timeout parallel-syncs'], h)
  }
  t.equal(redis.sentinel('10.0.0.33')?.masters.get('hastack-redis')?.settings['failover-timeout'], '30000')
})

t.test('a lost auth-pass is set again; a forgotten monitor follows the primary the Sentinels name', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  redis.failover('hastack-redis', 'redis2')
  const conf = lab.host('redis1').readFile(CONF)!
  lab.host('redis1').writeFile(CONF, conf.replace(/^sentinel auth-pass .*\n/m, ''), { owner: 'redis', mode: '0640' })
  redis.sentinel('10.0.0.33')!.masters.delete('hastack-redis')
  const run = await lab.run(sentinelPlay)
  t.same(run.named('redis1', 'changed'), [MONITOR])
  t.same(lab.host('redis1').mutations, ['SENTINEL SET hastack-redis auth-pass'])
  t.match(lab.host('redis1').readFile(CONF), /^sentinel auth-pass hastack-redis /m)
  t.same(run.named('redis3', 'changed'), [MONITOR])
  t.equal(
    redis.sentinel('10.0.0.33')?.masters.get('hastack-redis')?.ip,
    '10.0.0.32',
    'monitors redis2, not the initial primary',
  )
  t.equal(run.stats.get('redis2')?.changed, 0)
})

t.test('check mode on fresh Sentinels reports the plan and writes nothing', async (t) => {
  const { lab } = await world(true)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(sentinelPlay, { check: true })
  t.ok(run.success)
  for (const h of HOSTS) {
    t.ok(run.named(h, 'changed').includes(FIRST_DEPLOY), `${h}: sentinel.conf would be written`)
    t.same(lab.host(h).writes, [], `${h}: no put`)
    t.same(lab.host(h).mutations, [], `${h}: no apply command`)
    t.same(lab.host(h).unmatched, [], `${h}: every command sent was a known read`)
  }
})
