/**
 * Redis HA in the lab, end to end: boot redis1..3 + lb1, converge from bare
 * hosts, check replication and the Sentinels, write and read through ioredis's
 * Sentinel support and through lb1:6379, converge again (changed 0), power-cut
 * the primary under 100 ms write loops and measure the failover, boot the old
 * primary (a replica; the endpoint never routes to it), converge after the
 * failover (changed 0), partition the primary and count what it still accepted
 * and what was lost. Also checks what the README promises: a live maxmemory
 * change without a restart, Sentinel settings reconciled after a failover,
 * `--list-hosts` touching no host and `-f 1` working on one host at a time.
 * Needs root (the lab). HASTACK_LAB_REUSE=1 reuses a running `redis` lab and
 * leaves it up.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { Redis } from 'ioredis'
import { Lab } from '../../lab/lab.ts'
import { SuiteGate } from './gate.ts'
import { runPlaybook } from './playbook-run.ts'
import { longestGap, pollHaproxy, routable, writeLoop } from './redis/probes.ts'
import { until } from './until.ts'

const repo = resolve(import.meta.dirname, '../..')
const inventory = join(repo, 'test/stack/redis/hosts.yml')
const reuse = process.env.HASTACK_LAB_REUSE === '1'
const lab = new Lab({ inventory, name: 'redis', log: (m) => t.comment(`lab: ${m}`) })
const inv = parse(readFileSync(inventory, 'utf8')).all.vars
const NAME = 'hastack-redis'
const DOWN_AFTER_S = inv.sentinel_down_after_milliseconds / 1000
const MAX_LAG_S = inv.redis_min_replicas_max_lag
/** The write loops write once every 100 ms. */
const WRITES_PER_S = 10
/** Election, promotion and client reconnection on top of down-after-milliseconds. */
const ELECTION_BOUND_S = 12
const QUORUM = 2
const REDIS_HOSTS = ['redis1', 'redis2', 'redis3']
const figures: Record<string, unknown> = {}
const clients: Redis[] = []
/**
 * The suite's fail-fast gate (test/stack/gate.ts): once a check leaves Redis broken, the later checks fail at
 * once, naming it. Probed only once the first converge has run (Redis and its secrets exist).
 */
let redisExpected = false
const gate = new SuiteGate({ suite: 'Redis suite', probe: async () => (redisExpected ? redisBroken() : undefined) })
/** A check of this suite, behind the gate. */
const check = (name: string, body: (t: Test) => Promise<void>) => t.test(name, gate.check(name, body))

let addr: Record<string, string> = {}
let secrets: { redis_password: string; sentinel_password: string }
/** The hosts were booted from fresh disks by this run (not reused). */
let fresh = false

t.teardown(async () => {
  for (const c of clients) c.disconnect()
  t.comment(`figures: ${JSON.stringify(figures)}`)
  if (!reuse) await lab.down().catch((e) => t.comment(`lab down failed: ${e}`))
})

async function converge(label: string, extra: string[] = []) {
  const json = join(repo, `reports/redis-${label}.json`)
  const r = await runPlaybook({ cwd: repo, launcher: 'tsx', playbook: 'playbooks/redis.ts', inventory, json, extra })
  if (r.exitCode !== 0) t.comment(r.tail)
  if (label !== 'first' && r.changed.length) t.comment(`changed tasks:\n${r.changed.join('\n')}`)
  return { ...r.totals, exitCode: r.exitCode, changedTasks: r.changed, seconds: r.seconds, stdout: r.stdout, json }
}

function redisTo(host: string, port = 6379, extra: object = {}): Redis {
  const c = new Redis({
    host,
    port,
    password: secrets.redis_password,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 200,
    lazyConnect: true,
    ...extra,
  })
  c.on('error', () => {})
  clients.push(c)
  return c
}

function sentinelTo(host: string): Redis {
  const c = new Redis({
    host,
    port: 26379,
    password: secrets.sentinel_password,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 500,
    lazyConnect: true,
  })
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
    // A primary that lost its replicas (NOREPLICAS) or was demoted (READONLY): ask the Sentinels again.
    reconnectOnError: (e) => /^(NOREPLICAS|READONLY)/.test(e.message),
  })
  c.on('error', () => {})
  clients.push(c)
  return c
}

/** Each Sentinel's answer: the primary's address and how many other Sentinels it sees. */
async function sentinelViews(
  hosts = ['redis1', 'redis2', 'redis3'],
): Promise<Record<string, { primary?: string; others?: number }>> {
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
    return Object.fromEntries(
      info
        .split('\r\n')
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    )
  } finally {
    c.disconnect()
  }
}

/** The gate's probe: what is wrong when the Sentinels do not agree on one primary with two online replicas (60 s). */
async function redisBroken(): Promise<{ reason: string } | undefined> {
  const boundMs = 60_000
  let seen = 'no Sentinel answered'
  const healthy = await until(
    'one primary, two online replicas, Sentinels agreeing',
    boundMs,
    async () => {
      const v = await sentinelViews()
      const primaries = [...new Set(Object.values(v).map((x) => hostOf(x.primary) ?? x.primary))]
      seen = `Sentinels name ${primaries.join(', ') || 'no primary'}`
      if (primaries.length !== 1 || !primaries[0] || !Object.values(v).every((x) => x.others === 2)) return false
      const i = await replication(primaries[0])
      seen = `${primaries[0]} is ${i.role} with ${i.connected_slaves ?? 0} connected replicas`
      return i.role === 'master' && [i.slave0, i.slave1].every((r) => r?.includes('state=online'))
    },
    1000,
  ).catch(() => false)
  return healthy ? undefined : { reason: `Redis not healthy within ${boundMs / 1000} s (${seen})` }
}

/** The endpoint's health-check timing as deployed on lb1: interval (ms) and rise. */
async function endpointChecks(): Promise<{ interMs: number; rise: number }> {
  const cfg = await lab.ssh('lb1', 'sudo cat /etc/haproxy/haproxy.cfg')
  const m = /check inter (\d+) fall \d+ rise (\d+)/.exec(cfg.stdout)
  if (!m) throw new Error('no Redis check line in lb1:/etc/haproxy/haproxy.cfg')
  return { interMs: Number(m[1]), rise: Number(m[2]) }
}

/** Each Redis server's process id and uptime (INFO server), and its CONFIG GET of `param`. */
async function serverState(host: string, param: string): Promise<{ pid: string; uptime: number; value: string }> {
  const c = redisTo(addr[host]!)
  try {
    const info = (await c.info('server')) as string
    const field = (k: string) => new RegExp(`^${k}:(\\S+)`, 'm').exec(info)?.[1] ?? ''
    const [, value] = (await c.call('CONFIG', 'GET', param)) as string[]
    return { pid: field('process_id'), uptime: Number(field('uptime_in_seconds')), value: value ?? '' }
  } finally {
    c.disconnect()
  }
}

/** A Sentinel's view of one setting of the monitored primary (SENTINEL MASTER). */
async function sentinelSetting(host: string, key: string): Promise<string | undefined> {
  const s = sentinelTo(addr[host]!)
  try {
    const m = (await s.call('SENTINEL', 'MASTER', NAME)) as string[]
    return m[m.indexOf(key) + 1]
  } finally {
    s.disconnect()
  }
}

/**
 * What a host's journal recorded between two moments (ms): when SSH logins were accepted and
 * when sudo ran a command (the lab hosts share this machine's clock), in ms.
 */
async function hostActivity(host: string, fromMs: number, toMs: number): Promise<{ logins: number[]; sudo: number[] }> {
  const since = Math.floor(fromMs / 1000)
  const till = Math.ceil(toMs / 1000)
  const cmd = `sudo journalctl --no-pager -o short-unix --since @${since} --until @${till} _COMM=sshd + _COMM=sudo`
  const r = await lab.ssh(host, cmd, { timeoutMs: 20_000 })
  if (r.code !== 0) throw new Error(`journalctl on ${host} exited with ${r.code}: ${r.stderr}`)
  const at = (re: RegExp) =>
    r.stdout
      .split('\n')
      .filter((l) => re.test(l))
      .map((l) => Number(l.split(' ')[0]) * 1000)
  const within = (ms: number) => ms >= fromMs && ms <= toMs
  return {
    logins: at(/sshd\[\d+\]: Accepted publickey/).filter(within),
    sudo: at(/sudo\[\d+\]: .*COMMAND=/).filter(within),
  }
}

check('the lab boots and the playbook converges from bare hosts', async (t) => {
  const running = lab.instance && lab.status().every((s) => s.state === 'running')
  if (!(reuse && running)) {
    fresh = true
    await lab.up({ bootTimeoutMs: 180_000 })
  }
  addr = Object.fromEntries(lab.instance!.hosts.map((h) => [h.name, h.address]))
  const check = await converge('check', ['--check'])
  t.equal(check.exitCode, 0, 'a check run on the hosts succeeds')
  if (fresh) {
    const status = `dpkg-query -W -f '\${db:Status-Status}' redis-server 2>/dev/null`
    const installed = `${status} | grep -qx installed && echo installed`
    const touched = await lab.ssh('redis1', `test -e /etc/redis/hastack.conf && echo touched; ${installed}; true`)
    t.equal(touched.stdout.trim(), '', 'bare hosts: check mode installed and wrote nothing')
    t.ok(check.changed > 0, `bare hosts: check mode reports ${check.changed} changes to make`)
  }
  redisExpected = true
  const first = await converge('first')
  figures.firstConvergeSeconds = first.seconds
  t.equal(first.exitCode, 0, `first converge succeeded in ${first.seconds.toFixed(0)} s`)
  secrets = parse(readFileSync(join(repo, 'test/stack/redis/hosts.secrets.yml'), 'utf8'))
})

check('one primary with two online replicas; every Sentinel agrees and sees the other two', async (t) => {
  const views = await until('Sentinels agree', 30_000, async () => {
    const v = await sentinelViews()
    const primaries = new Set(Object.values(v).map((x) => x.primary))
    return primaries.size === 1 && Object.values(v).every((x) => x.others === 2) && v
  })
  const primary = hostOf(views.redis1!.primary)!
  t.ok(primary, `Sentinels name ${primary}`)
  const info = await until('two online replicas', 30_000, async () => {
    const i = await replication(primary)
    return (
      i.role === 'master' &&
      i.connected_slaves === '2' &&
      i.slave0?.includes('state=online') &&
      i.slave1?.includes('state=online') &&
      i
    )
  })
  t.equal(info.role, 'master')
  for (const h of Object.keys(views).filter((h) => h !== primary))
    t.equal((await replication(h)).role, 'slave', `${h} is a replica`)
})

check('ioredis through Sentinel and a plain client through lb1:6379 write and read', async (t) => {
  const s = viaSentinel()
  await s.set('hello:sentinel', 'via-sentinel')
  t.equal(await s.get('hello:sentinel'), 'via-sentinel')
  const lb = redisTo(addr.lb1!)
  await until('lb1:6379 serves the primary', 20_000, async () => (await lb.set('hello:lb1', 'via-lb1')) === 'OK')
  t.equal(await lb.get('hello:lb1'), 'via-lb1')
  t.equal(await s.get('hello:lb1'), 'via-lb1', 'both reach the same primary')
  const unauth = new Redis({
    host: addr.lb1!,
    port: 6379,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  unauth.on('error', () => {})
  await t.rejects(unauth.get('hello:lb1'), /NOAUTH/, 'a client without the password is refused')
  unauth.disconnect()
})

check('a second converge changes nothing', async (t) => {
  const r = await converge('second')
  figures.secondConvergeSeconds = r.seconds
  t.equal(r.exitCode, 0, 'converge succeeded')
  t.equal(r.changed, 0, 'changed: 0')
})

check('a lost secrets file is refused before anything changes; the restored file converges again', async (t) => {
  const file = join(repo, 'test/stack/redis/hosts.secrets.yml')
  const aside = `${file}.aside`
  renameSync(file, aside)
  let refused
  try {
    const json = join(repo, 'reports/redis-lost-secrets.json')
    refused = await runPlaybook({ cwd: repo, launcher: 'tsx', playbook: 'playbooks/redis.ts', inventory, json })
    t.notOk(existsSync(file), 'the refused run left no new secrets file behind')
  } finally {
    renameSync(aside, file)
  }
  t.equal(refused.exitCode, 1, 'refused as bad input (exit 1)')
  t.match(refused.tail, /does not match what the hosts were given/, 'the message says the file does not match')
  t.match(refused.tail, /holds redis_password, but it is not in the secrets file/, 'and names the secret')
  t.equal(refused.totals.changed, 0, 'nothing changed')
  const restored = await converge('secrets-restored', ['--check'])
  t.equal(restored.exitCode, 0, 'with the file back, a check run passes')
  t.equal(restored.changed, 0, 'and finds nothing to change')
})

check("--list-hosts prints every play's hosts, exits 0, writes no report and logs in nowhere", async (t) => {
  const from = Date.now()
  const r = await converge('list-hosts', ['--list-hosts'])
  const to = Date.now()
  t.equal(r.exitCode, 0, 'exit 0')
  for (const h of [...REDIS_HOSTS, 'lb1']) t.match(r.stdout, new RegExp(`\\b${h}\\b`), `${h} is listed`)
  t.match(
    r.stdout,
    /play #4 \(haproxy\): Route clients through HAProxy\n\s+hosts \(1\): lb1\n/,
    'each play with its own hosts',
  )
  t.notOk(existsSync(r.json), 'no --json report was written')
  for (const h of [...REDIS_HOSTS, 'lb1']) {
    const seen = await hostActivity(h, from, to)
    t.same(seen, { logins: [], sudo: [] }, `${h}: no SSH login and no command`)
  }
})

check("-f 1 works on one host at a time: within a play, hosts' logins and commands never interleave", async (t) => {
  const hosts = [...REDIS_HOSTS, 'lb1']
  const from = Date.now()
  // Check mode and one role's tasks keep it short; every play still runs (the other roles' tasks skipped).
  const r = await converge('forks-1', ['--check', '-t', 'common', '-f', '1'])
  const to = Date.now()
  t.equal(r.exitCode, 0, 'exit 0')
  const plays = (r.stdout.match(/^PLAY \[/gm) ?? []).length
  t.equal(r.changed, 0, 'check mode after a converge: nothing to change')
  const activity = await Promise.all(hosts.map((h) => hostActivity(h, from, to)))
  activity.forEach((a, i) => {
    t.ok(a.logins.length === 1 && a.sudo.length > 0, `${hosts[i]}: one SSH login, ${a.sudo.length} sudo commands`)
  })
  // Every login and command in time order, consecutive ones of the same host merged. One host at a
  // time walks each play's hosts in inventory order: only a new play can go back to an earlier host.
  const events = activity.flatMap((a, i) => [...a.logins, ...a.sudo].map((at) => ({ at, i })))
  events.sort((x, y) => x.at - y.at)
  const runs = events.map((e) => e.i).filter((i, k, all) => k === 0 || all[k - 1] !== i)
  const backwards = runs.filter((i, k) => k > 0 && i < runs[k - 1]!).length
  figures.forks1 = { hostOrder: runs.map((i) => hosts[i]).join(' '), plays }
  t.comment(`-f 1: hosts in time order: ${runs.map((i) => hosts[i]).join(' ')}`)
  const text = `the order goes back to an earlier host ${backwards} times, at most once per new play (${plays} plays)`
  t.ok(plays > 1 && backwards <= plays - 1, text)
})

let oldPrimary = ''
let newPrimary = ''
check('a power cut of the primary under writes: a replica is promoted in bounded time', async (t) => {
  oldPrimary = hostOf((await sentinelViews()).redis1!.primary)!
  const checks = await endpointChecks()
  const poll = pollHaproxy(lab, 'lb1', 150)
  await until('the HAProxy poller has a first sample', 15_000, async () => (await poll.read()).samples.length > 0)
  const s = viaSentinel()
  const lb = redisTo(addr.lb1!)
  await s.ping()
  const loops = {
    sentinel: writeLoop(s, 'kill:sentinel', { maxCount: 600, maxMs: 60_000 }),
    lb1: writeLoop(lb, 'kill:lb1', { maxCount: 600, maxMs: 60_000 }),
  }
  const writing = () => Object.values(loops).every((l) => l.log.acked.length >= 2 * WRITES_PER_S)
  await until('both write loops have 2 s of acknowledged writes', 15_000, writing)
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
    const state = Object.entries(loops).map(
      ([n, l]) =>
        `${n}: last ack ${((l.log.acked.at(-1)?.at ?? 0) - killedAt) / 1000} s after the cut, last errors ${JSON.stringify(l.log.failed.slice(-3))}`,
    )
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
  t.ok(
    failoverS <= DOWN_AFTER_S + ELECTION_BOUND_S,
    `${newPrimary} promoted ${failoverS.toFixed(1)} s after the power cut (bound ${DOWN_AFTER_S} + ${ELECTION_BOUND_S} s)`,
  )
  const reader = viaSentinel()
  for (const [name, log] of Object.entries(logs)) {
    const gap = longestGap(log, killedAt - 1000)
    const values = log.acked.length ? await reader.mget(...log.acked.map((a) => a.key)) : []
    const missing = values.filter((v) => v === null).length
    figures[`kill_${name}`] = {
      attempts: log.attempts,
      acked: log.acked.length,
      failed: log.failed.length,
      secondsWithoutWrites: gap,
      ackedMissing: missing,
    }
    t.comment(
      `${name}: ${log.attempts} writes, ${log.acked.length} acknowledged, ${gap.toFixed(1)} s without writes, ${missing} acknowledged writes missing`,
    )
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
  // Keep sampling until every check of the old primary's backend reaches layer 7 again (its Sentinel
  // answers and names another primary, or the host answers as a replica), then for rise + 1 check
  // intervals more: an entry wrongly coming up would have to show in that time.
  const oldBackend = `redis_${oldPrimary}`
  const answeredAt = await until("HAProxy's checks of the booted old primary reach layer 7", 60_000, async () => {
    const last = (await poll.read()).samples.at(-1)
    const statuses = last?.checks[oldBackend] ?? []
    return statuses.length > 0 && statuses.every((c) => c.includes('L7')) && last!.t * 1000
  })
  const settleMs = (checks.rise + 1) * checks.interMs
  const lastSampleMs = async () => ((await poll.read()).samples.at(-1)?.t ?? 0) * 1000
  await until(
    'rise + 1 check intervals sampled after that',
    settleMs + 15_000,
    async () => (await lastSampleMs()) >= answeredAt + settleMs,
  )
  const { samples, errors, longestSampleGapMs } = await poll.stop()
  const maxRoutable = Math.max(...samples.map((x) => routable(x, QUORUM).length))
  // Until HAProxy's checks notice the power cut (well under a second) the dead primary's backend still
  // shows up; from the first sample without it, it must never come back, above all once the old primary boots again.
  const afterKill = samples.filter((x) => x.t * 1000 > killedAt)
  const dropped = afterKill.findIndex((x) => !routable(x, QUORUM).includes(oldBackend))
  const oldRoutedAfterKill =
    dropped < 0
      ? afterKill.length
      : afterKill.slice(dropped).filter((x) => routable(x, QUORUM).includes(oldBackend)).length
  figures.oldPrimaryStillRoutableAfterKillSeconds = dropped < 0 ? null : afterKill[dropped]!.t - killedAt / 1000
  const firstNew = samples.find((x) => routable(x, QUORUM).includes(`redis_${newPrimary}`))
  figures.haproxy = {
    samples: samples.length,
    pollErrors: errors.length,
    longestSampleGapMs,
    maxRoutableAtOnce: maxRoutable,
    oldPrimaryRoutableSamplesAfterKill: oldRoutedAfterKill,
    newPrimaryRoutableAfterKillSeconds: firstNew ? firstNew.t - killedAt / 1000 : null,
  }
  const lastError = errors.length ? ` (last: ${errors.at(-1)!.error})` : ''
  t.comment(
    `HAProxy poll: ${samples.length} samples, ${errors.length} failed polls${lastError}, ` +
      `longest gap ${longestSampleGapMs} ms`,
  )
  t.ok(samples.length > 100, `HAProxy polled ${samples.length} times`)
  // Nothing reloads HAProxy here: its admin socket should always answer; allow one failed poll in a hundred.
  t.ok(errors.length <= samples.length / 100, `failed polls of the admin socket: ${errors.length} (at most 1 %)`)
  // A server's state lasts at least one check interval: samples closer than that miss no routing change.
  const gapText = `${longestSampleGapMs} < ${checks.interMs} ms`
  t.ok(longestSampleGapMs < checks.interMs, `samples never further apart than one check interval (${gapText})`)
  t.ok(maxRoutable <= 1, `at most one backend routable at any moment (max ${maxRoutable})`)
  t.equal(
    oldRoutedAfterKill,
    0,
    'once HAProxy saw the power cut, the old primary was never routable again (also after it booted)',
  )
})

check('after the failover: maxmemory changes live, every Sentinel takes a new down-after-milliseconds', async (t) => {
  const states = () => Promise.all(REDIS_HOSTS.map(async (h) => [h, await serverState(h, 'maxmemory')] as const))
  const before = Object.fromEntries(await states())
  const maxmemoryMb = 96
  const downAfterMs = inv.sentinel_down_after_milliseconds + 1000
  const vars = ['-e', `redis_maxmemory=${maxmemoryMb}mb`, '-e', `sentinel_down_after_milliseconds=${downAfterMs}`]
  const r = await converge('live-settings', ['-t', 'redis,sentinel', ...vars])
  t.equal(r.exitCode, 0, 'converge with the changed settings succeeded')
  t.ok(r.changed > 0, `the change was applied (${r.changedTasks.length} changed tasks)`)
  t.notOk(
    r.changedTasks.some((x) => /Restart (Redis|Sentinel)/.test(x)),
    'no restart was needed',
  )
  for (const h of REDIS_HOSTS) {
    const now = await serverState(h, 'maxmemory')
    t.equal(now.value, String(maxmemoryMb * 1024 * 1024), `${h}: maxmemory is ${maxmemoryMb}mb`)
    t.equal(now.pid, before[h]!.pid, `${h}: the same Redis process (pid ${now.pid})`)
    t.ok(now.uptime >= before[h]!.uptime, `${h}: uptime went on (${before[h]!.uptime} → ${now.uptime} s)`)
    const downAfter = await sentinelSetting(h, 'down-after-milliseconds')
    t.equal(downAfter, String(downAfterMs), `${h}'s Sentinel: down-after-milliseconds ${downAfterMs}`)
  }
  const back = await converge('live-settings-back', ['-t', 'redis,sentinel'])
  t.equal(back.exitCode, 0, 'converge back to the inventory succeeded')
  for (const h of REDIS_HOSTS) {
    const now = await serverState(h, 'maxmemory')
    t.equal(now.value, before[h]!.value, `${h}: maxmemory back to ${before[h]!.value}`)
    t.equal(now.pid, before[h]!.pid, `${h}: still the same Redis process`)
    const downAfter = await sentinelSetting(h, 'down-after-milliseconds')
    t.equal(downAfter, String(inv.sentinel_down_after_milliseconds), `${h}'s Sentinel: back to ${downAfter}`)
  }
})

check('a converge after the failover changes nothing and keeps the promoted primary', async (t) => {
  const r = await converge('after-failover')
  t.equal(r.exitCode, 0, 'converge succeeded')
  t.equal(r.changed, 0, 'changed: 0')
  t.equal((await replication(newPrimary)).role, 'master', `${newPrimary} is still the primary`)
  t.equal((await replication(oldPrimary)).role, 'slave', `${oldPrimary} is still a replica`)
})

check('a partitioned primary stops accepting writes within min-replicas-max-lag', async (t) => {
  const cut = newPrimary
  const direct = redisTo(addr[cut]!)
  await direct.ping()
  const s = viaSentinel()
  await s.ping()
  const cutAt = Date.now()
  // Heal whatever happens, so a failure here leaves no partitioned lab behind (HASTACK_LAB_REUSE).
  t.teardown(() => lab.heal())
  await lab.partition(cut)
  const minority = writeLoop(direct, 'part:minority', { maxCount: 300, maxMs: (MAX_LAG_S + 15) * 1000 })
  const majority = writeLoop(s, 'part:sentinel', { maxCount: 400, maxMs: 40_000 })
  const refusedAt = await until(
    'the cut-off primary refuses writes',
    (MAX_LAG_S + 15) * 1000,
    async () => minority.log.failed.find((f) => f.at > cutAt && /NOREPLICAS/.test(f.error))?.at,
  )
  const elected = await until('the majority elects a primary', 40_000, async () => {
    const others = ['redis1', 'redis2', 'redis3'].filter((h) => h !== cut)
    const v = await sentinelViews(others)
    const p = Object.values(v).map((x) => x.primary)
    return p.every((a) => a && a !== addr[cut]) && p[0] === p[1] && hostOf(p[0])
  })
  const electedAt = Date.now()
  const ackedSinceElection = () => majority.log.acked.filter((a) => a.at > electedAt).length
  await until(
    '2 s of writes through Sentinel after the election',
    20_000,
    () => ackedSinceElection() >= 2 * WRITES_PER_S,
  )
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
  // The cut-off primary acknowledges writes until its replicas' last ack is older than min-replicas-max-lag
  // (acks come every second): at most that long of writes, plus 4 s of margin, at the loop's rate.
  const lossBound = (MAX_LAG_S + 4) * WRITES_PER_S
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
  t.comment(
    `partition: cut-off primary refused writes after ${refusedS.toFixed(1)} s, accepted ${acceptedAfterCut.length}, ${lost} of them lost after healing; the majority elected ${elected}`,
  )
  t.ok(
    refusedS <= MAX_LAG_S + 4,
    `writes refused within min-replicas-max-lag (${MAX_LAG_S} s) + 4 s: ${refusedS.toFixed(1)} s`,
  )
  const accepted = acceptedAfterCut.length
  t.ok(accepted <= lossBound, `the cut-off primary acknowledged ${accepted} writes (bound ${lossBound})`)
  t.ok(lost <= lossBound, `${lost} of them lost after healing (bound: ${MAX_LAG_S} s max lag + 4 s of writes)`)
  const afterElection = majAfterElection.length
  t.ok(afterElection >= 2 * WRITES_PER_S, `${afterElection} writes acknowledged through Sentinel after the election`)
  t.equal(
    majAfterElection.filter((a) => a.value === null).length,
    0,
    'no write acknowledged after the election (through Sentinel) is lost',
  )
})

check('a converge after the partition changes nothing', async (t) => {
  const r = await converge('after-partition')
  t.equal(r.exitCode, 0, 'converge succeeded')
  t.equal(r.changed, 0, 'changed: 0')
})
