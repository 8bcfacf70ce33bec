/**
 * The redis role on three scripted hosts with a pretend Redis and Sentinel
 * behind them: the first deploy makes the initial primary and points the
 * others at it; later runs change nothing, apply a drifted or changed setting
 * at run time without a restart (the PING period a cut-off switchover left
 * off too), and take the primary from the Sentinels, so a promoted replica is
 * never turned back; check mode writes nothing.
 */
import t from 'tap'
import { redisRole } from '../../roles/redis/index.ts'
import { sentinelRole } from '../../roles/sentinel/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { RedisWorld } from './redis-world.ts'
import { stackInventory } from './stack.ts'

const HOSTS = ['redis1', 'redis2', 'redis3']
const CONF = '/etc/redis/redis.conf'
const RUNTIME = 'Ensure the running Redis has the inventory settings'
const FIRST_DEPLOY = 'Ensure redis.conf includes the hastack settings (first deploy only)'
const SAVE_RULES = 'Ensure redis.conf keeps every RDB snapshot rule across restarts'
const redisPlay = [{ name: 'redis', hosts: 'redis', roles: [redisRole] }]
const sentinelPlay = [{ name: 'sentinel', hosts: 'sentinel', roles: [sentinelRole] }]

async function world(vars: Record<string, unknown> = {}): Promise<{ lab: ScriptedLab; redis: RedisWorld }> {
  const lab = await scriptedLab(stackInventory(vars))
  return { lab, redis: new RedisWorld(lab) }
}

const replicaof = (lab: ScriptedLab, host: string) => /^replicaof (\S+)/m.exec(lab.host(host).readFile(CONF) ?? '')?.[1]

t.test('the first deploy makes the initial primary and points the others at it', async (t) => {
  const { lab } = await world()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(redisPlay)
  t.ok(run.success)
  t.equal(replicaof(lab, 'redis1'), undefined, 'redis1 (the first host) is the primary')
  t.equal(replicaof(lab, 'redis2'), '10.0.0.31')
  t.equal(replicaof(lab, 'redis3'), '10.0.0.31')
  for (const h of HOSTS) {
    const changed = run.named(h, 'changed')
    t.ok(
      changed.includes(FIRST_DEPLOY) && changed.includes('Restart Redis'),
      `${h}: redis.conf written, Redis restarted with it`,
    )
    t.equal(run.tasks(h).find((x) => x.name === RUNTIME)?.status, 'ok', `${h}: the files already carry the settings`)
    t.same(lab.host(h).unmatched, [], `${h}: only expected commands`)
  }
})

t.test('redis_initial_primary chooses another first primary', async (t) => {
  const { lab } = await world({ redis_initial_primary: 'redis3' })
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  t.same(
    HOSTS.map((h) => replicaof(lab, h)),
    ['10.0.0.33', '10.0.0.33', undefined],
  )
})

t.test('a converged deployment changes nothing', async (t) => {
  const { lab } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  await lab.run(sentinelPlay)
  for (const h of HOSTS) lab.host(h).resetCalls()
  const run = await lab.run(redisPlay)
  for (const h of HOSTS) {
    t.equal(run.stats.get(h)?.changed, 0, `${h}: changed=0`)
    t.same(lab.host(h).mutations, [], `${h}: nothing sent that changes it`)
  }
})

t.test('a setting changed at run time is set back with CONFIG SET, without a restart', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  redis.server('10.0.0.32')!.config.maxmemory = '1048576'
  lab.host('redis2').resetCalls()
  const run = await lab.run(redisPlay)
  t.same(run.named('redis2', 'changed'), [RUNTIME])
  t.match(run.tasks('redis2').find((x) => x.name === RUNTIME)?.reason, /maxmemory/)
  t.same(lab.host('redis2').mutations, ['CONFIG SET maxmemory', 'CONFIG REWRITE'])
  t.equal(run.stats.get('redis1')?.changed, 0)
})

t.test("a switchover cut off while the old primary's PINGs were off: the next run turns them back on", async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  redis.server('10.0.0.31')!.config['repl-ping-replica-period'] = '2147483647'
  lab.host('redis1').resetCalls()
  const run = await lab.run(redisPlay)
  t.same(run.named('redis1', 'changed'), [RUNTIME])
  t.same(lab.host('redis1').mutations, ['CONFIG SET repl-ping-replica-period', 'CONFIG REWRITE'])
  t.equal(redis.server('10.0.0.31')!.config['repl-ping-replica-period'], '10')
})

t.test('a changed redis_maxmemory is written and applied live on every host, never restarting Redis', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  await lab.reconfigure(stackInventory({ redis_maxmemory: '512mb' }))
  const run = await lab.run(redisPlay)
  for (const h of HOSTS) {
    t.same(run.named(h, 'changed'), ['Ensure the hastack Redis settings file is current', RUNTIME], h)
    t.equal(lab.host(h).service('redis-server').restarts, 1, `${h}: only the first deploy's restart`)
  }
  t.equal(redis.server('10.0.0.31')!.config.maxmemory, String(512 * 1024 * 1024))
})

t.test('save lines a rewrite appended after the include go back before it: a restart keeps every rule', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  const redis2 = lab.host('redis2')
  // What Redis 7.0's CONFIG REWRITE leaves: the first rule in place, the others appended at the end.
  const rewritten = (redis2.readFile(CONF) ?? '')
    .split('\n')
    .filter((l) => !/^save (300 100|60 10000)$/.test(l))
    .concat('# Generated by CONFIG REWRITE', 'save 300 100', 'save 60 10000', '')
    .join('\n')
  redis2.writeFile(CONF, rewritten, { owner: 'redis', group: 'redis', mode: '0640' })
  redis2.service('redis-server').restarts++
  t.equal(redis.server('10.0.0.32')!.config.save, '60 10000', 'restarted as it stands, only the last rule is left')
  const run = await lab.run(redisPlay)
  t.ok(run.named('redis2', 'changed').includes(SAVE_RULES))
  t.match(redis2.readFile(CONF), /^save 3600 1\nsave 300 100\nsave 60 10000\ninclude /m)
  t.match(redis2.fs.get(CONF), { owner: 'redis', group: 'redis', mode: '0640' }, 'Redis keeps owning the file')
  redis2.service('redis-server').restarts++
  t.equal(redis.server('10.0.0.32')!.config.save, '3600 1 300 100 60 10000', 'a restart now keeps every rule')
  t.notOk(run.named('redis1', 'changed').includes(SAVE_RULES), 'an untouched host keeps its file')
})

t.test("after a failover a reinstalled old primary rejoins as a replica of the Sentinels' primary", async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  await lab.run(sentinelPlay)
  redis.failover('hastack-redis', 'redis2')
  // redis1 comes back as a new machine: no redis.conf, Redis not running.
  lab.host('redis1').fs.delete(CONF)
  lab.host('redis1').setService('redis-server', { enabled: false, active: false })
  const run = await lab.run(redisPlay)
  t.ok(run.success)
  t.equal(replicaof(lab, 'redis1'), '10.0.0.32', 'redis1 follows redis2, never made primary again')
  t.ok(run.named('redis1', 'changed').includes(FIRST_DEPLOY))
  t.equal(run.stats.get('redis2')?.changed, 0, 'the promoted replica is left alone')
  t.equal(run.stats.get('redis3')?.changed, 0)
})

t.test(
  'with every Sentinel down, a reinstalled host replicates from the server that says it is the primary',
  async (t) => {
    const { lab, redis } = await world()
    t.teardown(() => lab.cleanup())
    await lab.run(redisPlay)
    await lab.run(sentinelPlay)
    redis.failover('hastack-redis', 'redis2')
    for (const h of HOSTS) lab.host(h).setService('redis-sentinel', { enabled: true, active: false })
    lab.host('redis1').fs.delete(CONF)
    lab.host('redis1').setService('redis-server', { enabled: false, active: false })
    const run = await lab.run(redisPlay)
    t.ok(run.success)
    t.equal(
      replicaof(lab, 'redis1'),
      '10.0.0.32',
      "redis1 follows redis2 (ROLE: master), not the inventory's first host",
    )
    t.ok(redis.received.includes('10.0.0.32:6379 ROLE'), 'the servers were asked once no Sentinel answered')
  },
)

t.test('with every Sentinel down and two servers saying primary, the run stops naming both', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(redisPlay)
  await lab.run(sentinelPlay)
  redis.failover('hastack-redis', 'redis2')
  redis.server('10.0.0.33')!.replicaof = undefined
  for (const h of HOSTS) lab.host(h).setService('redis-sentinel', { enabled: true, active: false })
  lab.host('redis1').fs.delete(CONF)
  lab.host('redis1').setService('redis-server', { enabled: false, active: false })
  const run = await lab.run(redisPlay)
  t.notOk(run.success)
  t.match(run.lines.join('\n'), /2 Redis servers say they are the primary \(10\.0\.0\.32, 10\.0\.0\.33\)/)
  t.equal(lab.host('redis1').readFile(CONF), undefined, 'redis1 got no redis.conf')
})

t.test('check mode on fresh hosts reports the plan and writes nothing', async (t) => {
  const { lab, redis } = await world()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(redisPlay, { check: true })
  t.ok(run.success)
  for (const h of HOSTS) {
    t.ok(run.named(h, 'changed').includes(FIRST_DEPLOY), `${h}: redis.conf would be written`)
    t.equal(run.tasks(h).find((x) => x.name === RUNTIME)?.status, 'skipped', `${h}: no Redis to ask yet`)
    t.same(lab.host(h).writes, [], `${h}: no put`)
    t.same(lab.host(h).mutations, [], `${h}: no apply command`)
    t.same(lab.host(h).unmatched, [], `${h}: every command sent was a known read`)
  }
  t.same(redis.received, [])
})
