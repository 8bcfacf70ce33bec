/**
 * A renewed host certificate reaches a running service (roles/certificates/served.ts) on scripted hosts:
 * HAProxy presenting an older certificate than the one on disk gets a hitless reload (never a restart) and
 * the run waits until it presents the new one; a second run changes nothing; a service presenting the
 * current certificate, or not answering TLS yet, is left alone; check mode reports the reload without it.
 * Redis loads it with CONFIG SET (never restarted); Sentinels restart one at a time, each back with its
 * quorum (SENTINEL CKQUORUM) before the next; one Patroni reload serves PostgreSQL and the REST API.
 */
import t from 'tap'
import { haproxyRole } from '../../roles/haproxy/index.ts'
import { patroniRole } from '../../roles/patroni/index.ts'
import { redisRole } from '../../roles/redis/index.ts'
import { sentinelRole } from '../../roles/sentinel/index.ts'
import { parseSerials, serialsCommand } from '../../lib/facts/served.ts'
import { scriptedLab, type ScriptedLab, type ScriptedConnection } from '../fixtures/scripted.ts'
import { PatroniCluster } from './patroni-world.ts'
import { RedisWorld } from './redis-world.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'haproxy', hosts: 'haproxy', roles: [haproxyRole] }]
const PRESENTS = "Ensure HAProxy's stats page presents the current host certificate"
const redisPlay = [{ name: 'redis', hosts: 'redis', roles: [redisRole] }]
const sentinelPlay = [{ name: 'sentinel', hosts: 'sentinel', roles: [sentinelRole] }]
const REDIS_HOSTS = ['redis1', 'redis2', 'redis3']
const OLD = '1A2B'
const RENEWED = '3C4D'

/**
 * A TLS stack's load balancer whose HAProxy presents `presented` until its next reload (then the renewed
 * certificate on disk); `presented: ''` is a HAProxy that does not answer TLS.
 */
async function balancer(presented: string): Promise<ScriptedLab> {
  const lab = await scriptedLab(stackInventory({ tls_enabled: true }))
  const lb1 = lab.host('lb1')
  lb1.on(/^haproxy -c /, { code: 0 })
  let reloadsAtStart: number | undefined
  lb1.on(/openssl s_client/, (command: string, _options, conn: ScriptedConnection) => {
    reloadsAtStart ??= conn.service('haproxy').reloads
    const now = conn.service('haproxy').reloads > reloadsAtStart ? RENEWED : presented
    if (command.startsWith('printf')) return { stdout: `serial=${RENEWED}\n${now ? `serial=${now}` : ''}\n` }
    return { code: now === RENEWED ? 0 : 1 }
  })
  return lab
}

t.test('the serials on disk and presented are read in one command and parsed', async (t) => {
  const endpoint = { service: 'PostgreSQL', address: '10.0.0.11', port: 5432, starttls: 'postgres' as const }
  const command = serialsCommand({ ...endpoint, certFile: '/etc/hastack/tls/host.crt' })
  t.match(command, /openssl x509 -noout -serial -in \/etc\/hastack\/tls\/host\.crt/)
  t.match(command, /openssl s_client -connect 10\.0\.0\.11:5432 -starttls postgres/)
  t.same(parseSerials('serial=1A\nserial=2B\n'), { onDisk: '1A', presented: '2B' })
  t.same(parseSerials('serial=1A\n\n'), { onDisk: '1A', presented: '' }, 'no TLS answer: nothing presented')
})

t.test(
  'HAProxy presenting an older certificate is reloaded, not restarted, then a re-run changes nothing',
  async (t) => {
    const lab = await balancer(OLD)
    t.teardown(() => lab.cleanup())
    const first = await lab.run(play)
    t.ok(first.success)
    t.ok(first.named('lb1', 'changed').includes(PRESENTS), 'the renewed certificate was picked up')
    const haproxy = lab.host('lb1').service('haproxy')
    t.equal(haproxy.restarts, 0, 'never restarted')
    t.equal(haproxy.reloads, 2, "the configuration's first reload and the certificate's")
    const again = await lab.run(play)
    t.equal(again.stats.get('lb1')?.changed, 0, 'a second run changes nothing')
    t.equal(lab.host('lb1').service('haproxy').reloads, 2)
  },
)

t.test('a HAProxy presenting the current certificate, or not answering TLS, is left alone', async (t) => {
  for (const presented of [RENEWED, '']) {
    const lab = await balancer(presented)
    t.teardown(() => lab.cleanup())
    const run = await lab.run(play)
    t.ok(run.success)
    t.notOk(run.named('lb1', 'changed').includes(PRESENTS), presented || 'no TLS answer')
    t.equal(lab.host('lb1').service('haproxy').reloads, 1, "only the new configuration's reload")
  }
})

t.test('check mode reports the pick-up and reloads nothing', async (t) => {
  const lab = await balancer(OLD)
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const lb1 = lab.host('lb1')
  const reloads = lb1.service('haproxy').reloads
  lb1.on(/openssl s_client/, { stdout: `serial=${RENEWED}\nserial=${OLD}\n` })
  const check = await lab.run(play, { check: true })
  t.ok(check.named('lb1', 'changed').includes(PRESENTS))
  t.equal(lb1.service('haproxy').reloads, reloads)
})

/**
 * A TLS Redis and Sentinel stack whose processes present OLD until they load their files again: Redis on
 * CONFIG SET tls-cert-file, a Sentinel on a restart (each restart is logged in the world's timeline).
 */
async function redisStack(): Promise<{ lab: ScriptedLab; redis: RedisWorld }> {
  const lab = await scriptedLab(stackInventory({ tls_enabled: true }))
  const redis = new RedisWorld(lab)
  await lab.run([...redisPlay, ...sentinelPlay])
  for (const host of REDIS_HOSTS) {
    const conn = lab.host(host)
    // Converged: the user redis is in the group that reads the TLS copy (the world keeps no group database).
    conn.on(/getent passwd redis/, {
      stdout: 'redis:x:100:101::/var/lib/redis:/usr/sbin/nologin\nredis hastack-tls-redis\n',
    })
    const restartsAtStart = conn.service('redis-sentinel').restarts
    const loaded = () => conn.mutations.some((m) => m.startsWith('CONFIG SET tls-cert-file tls-key-file'))
    conn.on(/^systemctl restart redis-sentinel$/, (_command, _options, c) => {
      redis.received.push(`${c.address} restart`)
      c.service('redis-sentinel').restarts++
      c.mutated('systemctl restart redis-sentinel')
      return {}
    })
    conn.on(/openssl s_client/, (command: string, _options, c: ScriptedConnection) => {
      const port = /:(\d+)/.exec(command.slice(command.indexOf('s_client')))![1]
      const renewed = port === '6379' ? loaded() : c.service('redis-sentinel').restarts > restartsAtStart
      const now = renewed ? RENEWED : OLD
      if (command.startsWith('printf')) return { stdout: `serial=${RENEWED}\nserial=${now}\n` }
      return { code: renewed ? 0 : 1 }
    })
  }
  return { lab, redis }
}

t.test('Redis loads its renewed certificate with CONFIG SET, never restarted; a re-run changes nothing', async (t) => {
  const { lab } = await redisStack()
  t.teardown(() => lab.cleanup())
  const restartsBefore = REDIS_HOSTS.map((h) => lab.host(h).service('redis-server').restarts)
  const run = await lab.run(redisPlay)
  t.ok(run.success)
  for (const [i, host] of REDIS_HOSTS.entries()) {
    t.ok(run.named(host, 'changed').includes('Ensure Redis presents the current host certificate'), host)
    t.ok(lab.host(host).mutations.includes('CONFIG SET tls-cert-file tls-key-file'), `${host}: CONFIG SET`)
    t.equal(lab.host(host).service('redis-server').restarts, restartsBefore[i], `${host}: Redis not restarted`)
  }
  const again = await lab.run(redisPlay)
  t.same(again.named('redis1', 'changed'), [], 'a second run changes nothing')
})

t.test('Sentinels restart one at a time, each back with its quorum before the next', async (t) => {
  const { lab, redis } = await redisStack()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(sentinelPlay)
  t.ok(run.success)
  const addresses = REDIS_HOSTS.map((h) => String(lab.inventory.hosts.get(h)!.vars.address))
  const timeline = redis.received.filter((line) => / restart$|CKQUORUM/.test(line))
  const restarts = timeline.filter((line) => line.endsWith(' restart'))
  t.equal(restarts.length, 3, 'each Sentinel restarted once')
  for (const [i, line] of timeline.entries()) {
    if (!line.endsWith(' restart')) continue
    const next = timeline.slice(i + 1).find((l) => l.endsWith(' restart'))
    const between = timeline.slice(i + 1, next ? timeline.indexOf(next) : undefined)
    const address = line.split(' ')[0]!
    t.ok(addresses.includes(address))
    t.ok(
      between.some((l) => l.startsWith(`${address}:26379 SENTINEL CKQUORUM`)),
      `${address}: its quorum checked before the next restart`,
    )
  }
  const again = await lab.run(sentinelPlay)
  t.same(again.named('redis1', 'changed'), [], 'a second run changes nothing')
})

t.test('PostgreSQL and the REST API pick up the renewed certificate with one Patroni reload, no restart', async (t) => {
  const lab = await scriptedLab(stackInventory({ tls_enabled: true }))
  t.teardown(() => lab.cleanup())
  new PatroniCluster(lab)
  const patroniPlay = [{ name: 'patroni', hosts: 'postgres', roles: [patroniRole] }]
  t.ok((await lab.run(patroniPlay)).success)
  const members = ['db1', 'db2', 'db3']
  const before = members.map((m) => ({ ...lab.host(m).service('patroni') }))
  for (const [i, member] of members.entries()) {
    const conn = lab.host(member)
    // Converged: postgres is in the groups that read its TLS copies (the world keeps no group database).
    conn.on(/getent passwd postgres/, {
      stdout: 'postgres:x:104:110::/var/lib/postgresql:/bin/bash\npostgres hastack-tls-postgres hastack-tls-patroni\n',
    })
    conn.on(/openssl s_client/, (command: string, _options, c: ScriptedConnection) => {
      const now = c.service('patroni').reloads > before[i]!.reloads ? RENEWED : OLD
      if (command.startsWith('printf')) return { stdout: `serial=${RENEWED}\nserial=${now}\n` }
      return { code: now === RENEWED ? 0 : 1 }
    })
  }
  const run = await lab.run(patroniPlay)
  t.ok(run.success)
  for (const [i, member] of members.entries()) {
    const changed = run.named(member, 'changed')
    t.ok(changed.includes("Ensure Patroni's REST API presents the current host certificate"), `${member}: picked up`)
    t.notOk(changed.includes('Ensure PostgreSQL presents the current host certificate'), 'by the same reload')
    t.equal(lab.host(member).service('patroni').reloads, before[i]!.reloads + 1, `${member}: one reload`)
    t.equal(lab.host(member).service('patroni').restarts, before[i]!.restarts, `${member}: no restart`)
  }
  const again = await lab.run(patroniPlay)
  t.same(again.named('db1', 'changed'), [], 'a second run changes nothing')
})
