/**
 * Redis HA in the lab, end to end: boot redis1..3 + lb1, converge from bare
 * hosts, check replication and the Sentinels, write and read through ioredis's
 * Sentinel support and through lb1:6379, converge again (changed 0), power-cut
 * the primary under 100 ms write loops and measure the failover, boot the old
 * primary (a replica; the endpoint never routes to it), converge after the
 * failover (changed 0), partition the primary and count what it still accepted
 * and what was lost. Needs root (the lab). HASTACK_LAB_REUSE=1 reuses a running
 * `redis` lab and leaves it up.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { Redis } from 'ioredis'
import { Lab } from '../../lab/lab.ts'
import { runPlaybook } from './playbook-run.ts'
import { longestGap, pollHaproxy, routable, writeLoop, type HaproxySample } from './redis/probes.ts'

const repo = resolve(import.meta.dirname, '../..')
const inventory = join(repo, 'test/stack/redis/hosts.yml')
const reuse = process.env.HASTACK_LAB_REUSE === '1'
const lab = new Lab({ inventory, name: 'redis', log: (m) => t.comment(`lab: ${m}`) })
const inv = parse(readFileSync(inventory, 'utf8')).all.vars
const NAME = 'hastack-redis'
const DOWN_AFTER_S = inv.sentinel_down_after_milliseconds / 1000
const MAX_LAG_S = inv.redis_min_replicas_max_lag
/** Election, promotion and client reconnection on top of down-after-milliseconds. */
const ELECTION_BOUND_S = 12
const QUORUM = 2
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const figures: Record<string, unknown> = {}
const clients: Redis[] = []

let addr: Record<string, string> = {}
let secrets: { redis_password: string; sentinel_password: string }

t.teardown(async () => {
  for (const c of clients) c.disconnect()
  t.comment(`figures: ${JSON.stringify(figures)}`)
  if (!reuse) await lab.down().catch((e) => t.comment(`lab down failed: ${e}`))
})

async function converge(label: string, extra: string[] = []): Promise<{ changed: number; failed: number; unreachable: number; seconds: number }> {
  const json = join(repo, `reports/redis-${label}.json`)
  const r = await runPlaybook({ cwd: repo, launcher: 'tsx', playbook: 'playbooks/redis.ts', inventory, json, extra })
  if (r.exitCode !== 0) t.comment(r.tail)
  if (label !== 'first' && r.changed.length) t.comment(`changed tasks:\n${r.changed.join('\n')}`)
  return { ...r.totals, seconds: r.seconds }
}

function redisTo(host: string, port = 6379, extra: object = {}): Redis {
  const c = new Redis({ host, port, password: secrets.redis_password, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 1, retryStrategy: () => 200, lazyConnect: true, ...extra })
  c.on('error', () => {})
  clients.push(c)
  return c
}

function sentinelTo(host: string): Redis {
  const c = new Redis({ host, port: 26379, password: secrets.sentinel_password, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 1, retryStrategy: () => 500, lazyConnect: true })
  c.on('error', () => {})
  clients.push(c)
  return c
}

function viaSentinel(): Redis {
  const c = new Redis({
    sentinels: ['redis1', 'redis2', 'redis3'].map((h) => ({ host: addr[h]!, port: 26379 })),
    name: NAME,
    password: secrets.redis_password,
    sentinelPassword: secrets.sentinel_password,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 100,
    sentinelRetryStrategy: () => 100,
  })
  c.on('error', () => {})
  clients.push(c)
  return c
}

/** Each Sentinel's answer: the primary's address and how many other Sentinels it sees. */
async function sentinelViews(hosts = ['redis1', 'redis2', 'redis3']): Promise<Record<string, { primary?: string; others?: number }>> {
  const out: Record<string, { primary?: string; others?: number }> = {}
  await Promise.all(
    hosts.map(async (h) => {
      const s = sentinelTo(addr[h]!)
      try {
        const [ip] = (await s.call('SENTINEL', 'get-master-addr-by-name', NAME)) as string[]
        const m = (await s.call('SENTINEL', 'MASTER', NAME)) as string[]
        out[h] = { primary: ip, others: Number(m[m.indexOf('num-other-sentinels') + 1]) }
      } catch {
        out[h] = {}
      } finally {
        s.disconnect()
      }
    }),
  )
  return out
}

function hostOf(address: string | undefined): string | undefined {
  return Object.entries(addr).find(([, a]) => a === address)?.[0]
}

async function replication(host: string): Promise<Record<string, string>> {
  const c = redisTo(addr[host]!)
  try {
    const info = (await c.info('replication')) as string
    return Object.fromEntries(info.split('\r\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]))
  } finally {
    c.disconnect()
  }
}

/** Poll fn until it returns a truthy value, at most timeoutMs. */
async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await sleep(250)
  }
  throw new Error(`${what}: not reached within ${timeoutMs / 1000}s${last ? ` (${last})` : ''}`)
}

t.test('the lab boots and the playbook converges from bare hosts', async (t) => {
  if (!(reuse && lab.instance)) await lab.up({ bootTimeoutMs: 180_000 })
  addr = Object.fromEntries(lab.instance!.hosts.map((h) => [h.name, h.address]))
  const check = await converge('check', ['--check'])
  t.equal(check.failed + check.unreachable, 0, 'a check run on the hosts succeeds')
  const touched = await lab.ssh('redis1', `test -e /etc/redis/hastack.conf && echo touched; dpkg-query -W -f '\${db:Status-Status}' redis-server 2>/dev/null | grep -qx installed && echo installed; true`)
  t.equal(touched.stdout.trim(), reuse ? touched.stdout.trim() : '', 'check mode installed and wrote nothing')
  const first = await converge('first')
  figures.firstConvergeSeconds = first.seconds
  t.equal(first.failed + first.unreachable, 0, `first converge succeeded in ${first.seconds.toFixed(0)} s`)
  secrets = parse(readFileSync(join(repo, 'test/stack/redis/hosts.secrets.yml'), 'utf8'))
})

t.test('one primary with two online replicas; every Sentinel agrees and sees the other two', async (t) => {
  const views = await until('Sentinels agree', 30_000, async () => {
    const v = await sentinelViews()
    const primaries = new Set(Object.values(v).map((x) => x.primary))
    return primaries.size === 1 && Object.values(v).every((x) => x.others === 2) && v
  })
  const primary = hostOf(views.redis1!.primary)!
  t.ok(primary, `Sentinels name ${primary}`)
  const info = await until('two online replicas', 30_000, async () => {
    const i = await replication(primary)
    return i.role === 'master' && i.connected_slaves === '2' && i.slave0?.includes('state=online') && i.slave1?.includes('state=online') && i
  })
  t.equal(info.role, 'master')
  for (const h of Object.keys(views).filter((h) => h !== primary)) t.equal((await replication(h)).role, 'slave', `${h} is a replica`)
})

t.test('ioredis through Sentinel and a plain client through lb1:6379 write and read', async (t) => {
  const s = viaSentinel()
  await s.set('hello:sentinel', 'via-sentinel')
  t.equal(await s.get('hello:sentinel'), 'via-sentinel')
  const lb = redisTo(addr.lb1!)
  await until('lb1:6379 serves the primary', 20_000, async () => (await lb.set('hello:lb1', 'via-lb1')) === 'OK')
  t.equal(await lb.get('hello:lb1'), 'via-lb1')
  t.equal(await s.get('hello:lb1'), 'via-lb1', 'both reach the same primary')
  const unauth = new Redis({ host: addr.lb1!, port: 6379, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  unauth.on('error', () => {})
  await t.rejects(unauth.get('hello:lb1'), /NOAUTH/, 'a client without the password is refused')
  unauth.disconnect()
})

t.test('a second converge changes nothing', async (t) => {
  const r = await converge('second')
  figures.secondConvergeSeconds = r.seconds
  t.equal(r.changed, 0, 'changed: 0')
  t.equal(r.failed + r.unreachable, 0)
})

let oldPrimary = ''
let newPrimary = ''
t.test('a power cut of the primary under writes: a replica is promoted in bounded time', async (t) => {
  oldPrimary = hostOf((await sentinelViews()).redis1!.primary)!
  const poll = pollHaproxy(lab, 'lb1', 150)
  await sleep(1000)
  const s = viaSentinel()
  const lb = redisTo(addr.lb1!)
  await s.ping()
  const loops = { sentinel: writeLoop(s, 'kill:sentinel', { maxCount: 600, maxMs: 60_000 }), lb1: writeLoop(lb, 'kill:lb1', { maxCount: 600, maxMs: 60_000 }) }
  await sleep(2000)
  const killedAt = Date.now()
  await lab.kill(oldPrimary)
  const others = ['redis1', 'redis2', 'redis3'].filter((h) => h !== oldPrimary)
  const promotedAt = await until('a replica is promoted', 60_000, async () => {
    const v = await sentinelViews(others)
    const p = Object.values(v).map((x) => x.primary)
    return p.every((a) => a && a !== addr[oldPrimary]) && p[0] === p[1] && Date.now()
  })
  newPrimary = hostOf((await sentinelViews(others))[others[0]!]!.primary)!
  // Keep writing until both loops have written for 3 s after the failover.
  const resumed = await until('writes resume on both paths', 40_000, async () =>
    Object.values(loops).every((l) => l.log.acked.some((a) => a.at > promotedAt + 3000)),
  ).catch((e) => {
    const state = Object.entries(loops).map(([n, l]) => `${n}: last ack ${((l.log.acked.at(-1)?.at ?? 0) - killedAt) / 1000} s after the cut, last errors ${JSON.stringify(l.log.failed.slice(-3))}`)
    t.fail(`${e.message}: ${state.join('; ')}`)
    return false
  })
  const logs = { sentinel: await loops.sentinel.stop(), lb1: await loops.lb1.stop() }
  if (!resumed) {
    await poll.stop()
    await lab.start(oldPrimary)
    return
  }
  const failoverS = (promotedAt - killedAt) / 1000
  figures.failoverSeconds = failoverS
  t.ok(failoverS <= DOWN_AFTER_S + ELECTION_BOUND_S, `${newPrimary} promoted ${failoverS.toFixed(1)} s after the power cut (bound ${DOWN_AFTER_S} + ${ELECTION_BOUND_S} s)`)
  const reader = viaSentinel()
  for (const [name, log] of Object.entries(logs)) {
    const gap = longestGap(log, killedAt - 1000)
    const values = log.acked.length ? await reader.mget(...log.acked.map((a) => a.key)) : []
    const missing = values.filter((v) => v === null).length
    figures[`kill_${name}`] = { attempts: log.attempts, acked: log.acked.length, failed: log.failed.length, secondsWithoutWrites: gap, ackedMissing: missing }
    t.comment(`${name}: ${log.attempts} writes, ${log.acked.length} acknowledged, ${gap.toFixed(1)} s without writes, ${missing} acknowledged writes missing`)
    t.ok(gap <= DOWN_AFTER_S + ELECTION_BOUND_S, `${name}: writes resumed within the bound (${gap.toFixed(1)} s)`)
    t.ok(missing <= 10, `${name}: at most one second of acknowledged writes lost (${missing})`)
  }
  // Boot the old primary with its disk: it must come back as a replica, and the endpoint must never route to it.
  const startedAt = Date.now()
  await lab.start(oldPrimary)
  const rejoined = await until('the old primary rejoins as a replica', 60_000, async () => {
    const i = await replication(oldPrimary)
    return i.role === 'slave' && i.master_link_status === 'up' && i.master_host === addr[newPrimary] && Date.now()
  })
  figures.oldPrimaryRejoinSeconds = (rejoined - startedAt) / 1000
  await sleep(5000)
  const samples: HaproxySample[] = await poll.stop()
  const maxRoutable = Math.max(...samples.map((x) => routable(x, QUORUM).length))
  // Until HAProxy's checks notice the power cut (well under a second) the dead primary's backend still
  // shows up; from the first sample without it, it must never come back, above all once the old primary boots again.
  const oldBackend = `redis_${oldPrimary}`
  const afterKill = samples.filter((x) => x.t * 1000 > killedAt)
  const dropped = afterKill.findIndex((x) => !routable(x, QUORUM).includes(oldBackend))
  const oldRoutedAfterKill = dropped < 0 ? afterKill.length : afterKill.slice(dropped).filter((x) => routable(x, QUORUM).includes(oldBackend)).length
  figures.oldPrimaryStillRoutableAfterKillSeconds = dropped < 0 ? null : afterKill[dropped]!.t - killedAt / 1000
  const firstNew = samples.find((x) => routable(x, QUORUM).includes(`redis_${newPrimary}`))
  figures.haproxy = { samples: samples.length, maxRoutableAtOnce: maxRoutable, oldPrimaryRoutableSamplesAfterKill: oldRoutedAfterKill, newPrimaryRoutableAfterKillSeconds: firstNew ? firstNew.t - killedAt / 1000 : null }
  t.ok(samples.length > 100, `HAProxy polled ${samples.length} times`)
  t.ok(maxRoutable <= 1, `at most one backend routable at any moment (max ${maxRoutable})`)
  t.equal(oldRoutedAfterKill, 0, 'once HAProxy saw the power cut, the old primary was never routable again (also after it booted)')
})

t.test('a converge after the failover changes nothing and keeps the promoted primary', async (t) => {
  const r = await converge('after-failover')
  t.equal(r.changed, 0, 'changed: 0')
  t.equal(r.failed + r.unreachable, 0)
  t.equal((await replication(newPrimary)).role, 'master', `${newPrimary} is still the primary`)
  t.equal((await replication(oldPrimary)).role, 'slave', `${oldPrimary} is still a replica`)
})

t.test('a partitioned primary stops accepting writes within min-replicas-max-lag', async (t) => {
  const cut = newPrimary
  const direct = redisTo(addr[cut]!)
  await direct.ping()
  const s = viaSentinel()
  await s.ping()
  const cutAt = Date.now()
  await lab.partition(cut)
  const minority = writeLoop(direct, 'part:minority', { maxCount: 300, maxMs: (MAX_LAG_S + 15) * 1000 })
  const majority = writeLoop(s, 'part:sentinel', { maxCount: 400, maxMs: 40_000 })
  const refusedAt = await until('the cut-off primary refuses writes', (MAX_LAG_S + 15) * 1000, async () => minority.log.failed.find((f) => f.at > cutAt && /NOREPLICAS/.test(f.error))?.at)
  const elected = await until('the majority elects a primary', 40_000, async () => {
    const others = ['redis1', 'redis2', 'redis3'].filter((h) => h !== cut)
    const v = await sentinelViews(others)
    const p = Object.values(v).map((x) => x.primary)
    return p.every((a) => a && a !== addr[cut]) && p[0] === p[1] && hostOf(p[0])
  })
  const electedAt = Date.now()
  await sleep(2000)
  const minLog = await minority.stop()
  const majLog = await majority.stop()
  const acceptedAfterCut = minLog.acked.filter((a) => a.at > cutAt)
  await lab.heal()
  await until('the old primary rejoins as a replica', 60_000, async () => {
    const i = await replication(cut)
    return i.role === 'slave' && i.master_link_status === 'up'
  })
  const reader = viaSentinel()
  const minValues = acceptedAfterCut.length ? await reader.mget(...acceptedAfterCut.map((a) => a.key)) : []
  const lost = minValues.filter((v) => v === null).length
  const majValues = majLog.acked.length ? await reader.mget(...majLog.acked.map((a) => a.key)) : []
  const majAfterElection = majLog.acked.map((a, i) => ({ ...a, value: majValues[i] })).filter((a) => a.at > electedAt)
  const refusedS = (refusedAt - cutAt) / 1000
  figures.partition = {
    newPrimary: elected,
    secondsUntilMinorityRefusedWrites: refusedS,
    minorityAcceptedAfterCut: acceptedAfterCut.length,
    minorityAcceptedLostAfterHeal: lost,
    majorityAcked: majLog.acked.length,
    sentinelClientAcked: majLog.acked.length,
    sentinelClientAckedMissing: majValues.filter((v) => v === null).length,
    sentinelClientAckedAfterElectionMissing: majAfterElection.filter((a) => a.value === null).length,
  }
  t.comment(`partition: cut-off primary refused writes after ${refusedS.toFixed(1)} s, accepted ${acceptedAfterCut.length}, ${lost} of them lost after healing; the majority elected ${elected}`)
  t.ok(refusedS <= MAX_LAG_S + 4, `writes refused within min-replicas-max-lag (${MAX_LAG_S} s) + 4 s: ${refusedS.toFixed(1)} s`)
  t.equal(majAfterElection.filter((a) => a.value === null).length, 0, 'no write acknowledged after the election (through Sentinel) is lost')
})

t.test('a converge after the partition changes nothing', async (t) => {
  const r = await converge('after-partition')
  t.equal(r.changed, 0, 'changed: 0')
  t.equal(r.failed + r.unreachable, 0)
})
