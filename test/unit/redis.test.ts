/**
 * The Redis and Sentinel roles without a lab: rendered configuration files,
 * the HAProxy endpoint partial, runtime settings, redis-cli plumbing, the
 * primary vote and the cross-host validation.
 */
import t from 'tap'
import type { Connection, HostView, Inventory, PutOptions, TaskContext, Vars } from '../../lib/types.ts'
import { renderTemplate } from '../../lib/template.ts'
import { defaults as redisDefaults } from '../../roles/redis/vars.ts'
import { sentinelRole, sentinelSettings, validateSentinel } from '../../roles/sentinel/index.ts'
import { saveRulesInFileTask, validateRedis } from '../../roles/redis/index.ts'
import {
  differing,
  memoryBytes,
  placeSaveRules,
  runtimeSettings,
  saveLines,
  saveValue,
} from '../../roles/redis/settings.ts'
import { cliScript, cliWord, isError, pairs, splitReplies } from '../../roles/redis/cli.ts'
import { majority } from '../../roles/redis/primary.ts'
import { redisConfView, redisEndpointView, redisTlsView } from '../../roles/redis/render.ts'
import { clientBind } from '../../roles/haproxy/render.ts'

const ADDR: Record<string, string> = { redis1: '10.0.0.10', redis2: '10.0.0.11', redis3: '10.0.0.12', lb1: '10.0.0.13' }
const GROUPS: Record<string, string[]> = {
  redis: ['redis1', 'redis2', 'redis3'],
  sentinel: ['redis1', 'redis2', 'redis3'],
  haproxy: ['lb1'],
}

function fakeInventory(extra: Vars = {}): Inventory {
  const vars = (name: string): Vars => ({
    ...redisDefaults,
    ...sentinelRole.defaults,
    redis_password: 'rpw-0123456789abcdef',
    sentinel_password: 'spw-0123456789abcdef',
    address: ADDR[name],
    ...extra,
  })
  const hosts = new Map(
    Object.keys(ADDR).map((name) => [
      name,
      { name, groups: ['all'], vars: vars(name), origins: {}, connection: {} as any },
    ]),
  )
  const groups = new Map(
    Object.entries(GROUPS).map(([name, hs]) => [name, { name, hosts: hs, children: [], parents: ['all'], vars: {} }]),
  )
  return {
    file: 'x.yml',
    hosts,
    groups,
    secrets: {},
    groupHosts: (g) => GROUPS[g] ?? [],
    select: () => [],
  } as Inventory
}

function view(name: string, inventory = fakeInventory()): HostView {
  return {
    name,
    vars: inventory.hosts.get(name)!.vars,
    facts: {} as any,
    groups: ['all'],
    inventory,
    hostvars: (n) => inventory.hosts.get(n)!.vars,
  }
}

t.test('hastack.conf binds the cluster address and loopback, with auth, AOF, RDB and write bounds', async (t) => {
  const text = renderTemplate('redis/hastack.conf.ejs', view('redis2'), redisTlsView(view('redis2').vars))
  t.match(text, /^bind 10\.0\.0\.11 127\.0\.0\.1$/m)
  t.match(text, /^requirepass rpw-0123456789abcdef$/m)
  t.match(text, /^masterauth rpw-0123456789abcdef$/m)
  t.match(text, /^appendonly yes$/m)
  t.match(text, /^appendfsync everysec$/m)
  t.notMatch(text, /^save /m, 'save rules are additive: they live in redis.conf only')
  t.match(text, /^maxmemory 256mb$/m)
  t.match(text, /^min-replicas-to-write 1$/m)
  t.match(text, /^min-replicas-max-lag 10$/m)
  t.match(text, /^supervised systemd$/m)
  t.match(text, /^replica-announce-ip 10\.0\.0\.11$/m)
  t.notMatch(text, /replicaof/, 'replication is not in the managed file')
})

t.test('redis.conf (first deploy) includes the managed file and names the primary only on replicas', async (t) => {
  const replica = renderTemplate('redis/redis.conf.ejs', view('redis2'), redisConfView(view('redis2'), '10.0.0.10'))
  t.match(replica, /^include \/etc\/redis\/hastack\.conf$/m)
  t.match(replica, /^replicaof 10\.0\.0\.10 6379$/m)
  const rulesThenInclude = /^save 3600 1\nsave 300 100\nsave 60 10000\ninclude \/etc\/redis\/hastack\.conf$/m
  t.match(replica, rulesThenInclude, 'one line per rule, before the include')
  const primary = renderTemplate('redis/redis.conf.ejs', view('redis1'), redisConfView(view('redis1'), ''))
  t.notMatch(primary, /replicaof/)
})

t.test('sentinel.conf (first deploy) monitors the primary with auth both ways', async (t) => {
  const text = renderTemplate('sentinel/sentinel.conf.ejs', view('redis3'), {
    sentinel_primary: '10.0.0.10',
    ...redisTlsView(view('redis3').vars),
  })
  t.match(text, /^# hastack: sentinel bootstrap$/m)
  t.match(text, /^bind 10\.0\.0\.12 127\.0\.0\.1$/m)
  t.match(text, /^requirepass spw-0123456789abcdef$/m)
  t.match(text, /^sentinel sentinel-pass spw-0123456789abcdef$/m)
  t.match(text, /^sentinel monitor hastack-redis 10\.0\.0\.10 6379 2$/m)
  t.match(text, /^sentinel auth-pass hastack-redis rpw-0123456789abcdef$/m)
  t.match(text, /^sentinel down-after-milliseconds hastack-redis 5000$/m)
  t.match(text, /^sentinel resolve-hostnames no$/m)
})

t.test('the endpoint has one backend per host, one entry per Sentinel, routed on a quorum', async (t) => {
  const text = renderTemplate('haproxy/redis.cfg.ejs', view('lb1'), {
    redis_endpoint: redisEndpointView(view('lb1')),
    redis_bind: clientBind(view('lb1'), 6379),
  })
  t.match(text, /bind 10\.0\.0\.13:6379/)
  t.match(text, /bind 127\.0\.0\.1:6379/)
  for (const h of ['redis1', 'redis2', 'redis3']) {
    t.match(text, new RegExp(`use_backend redis_${h} if \\{ nbsrv\\(redis_${h}\\) ge 2 \\}`))
    for (const s of ['redis1', 'redis2', 'redis3']) {
      t.match(
        text,
        new RegExp(
          `server ${h}_via_${s} ${ADDR[h]!.replace(/\./g, '\\.')}:6379 check .* addr ${ADDR[s]!.replace(/\./g, '\\.')} port 26379`,
        ),
      )
    }
  }
  const hexes = [...text.matchAll(/tcp-check expect binary ([0-9a-f]+)/g)].map((m) =>
    Buffer.from(m[1]!, 'hex').toString(),
  )
  t.same(hexes, [
    '*2\r\n$9\r\n10.0.0.10\r\n$4\r\n6379\r\n',
    '*2\r\n$9\r\n10.0.0.11\r\n$4\r\n6379\r\n',
    '*2\r\n$9\r\n10.0.0.12\r\n$4\r\n6379\r\n',
  ])
  t.match(text, /tcp-check send 'AUTH spw-0123456789abcdef'"\\r\\n"/)
  t.match(text, /tcp-check expect string role:master/)
  t.match(text, /default_backend redis_no_primary/)
})

t.test('memory sizes and runtime settings read as CONFIG GET prints them', async (t) => {
  t.equal(memoryBytes('256mb'), 268435456)
  t.equal(memoryBytes('1gb'), 1073741824)
  t.equal(memoryBytes('1k'), 1000)
  t.equal(memoryBytes(4096), 4096)
  t.throws(() => memoryBytes('lots'))
  const wanted = runtimeSettings(view('redis1').vars)
  t.equal(wanted.maxmemory, '268435456')
  t.equal(wanted.bind, '10.0.0.10 127.0.0.1')
  t.same(differing(wanted, { ...wanted }), [])
  t.same(differing(wanted, { ...wanted, maxmemory: '0' }), ['maxmemory'])
  t.same(sentinelSettings(view('redis1').vars), {
    quorum: '2',
    'down-after-milliseconds': '5000',
    'failover-timeout': '60000',
    'parallel-syncs': '1',
  })
})

t.test('redis-cli plumbing keeps the password off the command line and splits replies', async (t) => {
  const script = cliScript({ host: '127.0.0.1', port: 6379, password: "p'w" }, [
    ['CONFIG', 'GET', 'maxmemory'],
    ['CONFIG', 'SET', 'a b', 'x"y'],
  ])
  t.match(script, /^REDISCLI_AUTH='p'\\''w'$/m)
  t.match(script, /"CONFIG" "SET" "a b" "x\\"y"/)
  t.notMatch(
    script
      .split('\n')
      .filter((l) => l.startsWith('redis-cli'))
      .join('\n'),
    /p'w/,
  )
  t.equal(cliWord('a\\b'), '"a\\\\b"')
  t.same(splitReplies('maxmemory\n0\n---hastack-next---\nOK\n'), [['maxmemory', '0'], ['OK']])
  t.same(pairs(['a', '1', 'b', '2']), { a: '1', b: '2' })
  t.ok(isError(['ERR No such master with that name']))
  t.ok(isError(['Could not connect to Redis at 127.0.0.1:6379: Connection refused']))
  t.notOk(isError(['OK']))
})

t.test('the primary is the address most Sentinels name', async (t) => {
  t.equal(majority({ a: '10.0.0.1', b: '10.0.0.2', c: '10.0.0.2' }), '10.0.0.2')
  t.equal(majority({ a: undefined, b: undefined }), undefined)
  t.equal(majority({ a: '10.0.0.1', b: undefined }), '10.0.0.1')
})

t.test('validation catches unsafe Redis and Sentinel settings', async (t) => {
  t.same(validateRedis(fakeInventory()), [])
  t.same(validateSentinel(fakeInventory()), [])
  t.match(validateRedis(fakeInventory({ redis_initial_primary: 'lb1' })).join('\n'), /not in the redis group/)
  t.match(validateRedis(fakeInventory({ redis_min_replicas_to_write: 3 })).join('\n'), /only 2 replica/)
  t.match(validateRedis(fakeInventory({ redis_haproxy_rise: 2 })).join('\n'), /too small/)
  t.match(validateSentinel(fakeInventory({ sentinel_quorum: 1 })).join('\n'), /not a majority/)
  t.match(validateSentinel(fakeInventory({ sentinel_quorum: 4 })).join('\n'), /only 3 Sentinels/)
  const empty = { ...fakeInventory(), groups: new Map(), groupHosts: () => [] } as Inventory
  t.same(validateRedis(empty), [], 'inventories without Redis are not checked')
  t.same(validateSentinel(empty), [])
})

// The shape Redis 7.0.15 (Debian 12's redis-server, tried on loopback) gives a redis.conf with
// `include` first and `save 3600 1 300 100 60 10000` after it once CONFIG REWRITE ran (as Sentinel
// does on every failover): the first rule in place, the others appended. After a restart it answers
// CONFIG GET save with the last rule only; with the rules placed before the include it keeps all three.
const REWRITTEN_BY_REDIS_7_0 = [
  '# hastack: redis bootstrap',
  'include /etc/redis/hastack.conf',
  'save 3600 1',
  'replicaof 10.0.0.11 6379',
  '',
  '# Generated by CONFIG REWRITE',
  'latency-tracking-info-percentiles 50 99 99.9',
  'save 300 100',
  'save 60 10000',
  'maxmemory 256mb',
  '',
].join('\n')
const CONFIG_GET_SAVE_AFTER_RESTART = ['save', '60 10000']

t.test('the save rules a restart keeps from a rewritten redis.conf differ from the wanted ones', async (t) => {
  const wanted = runtimeSettings(view('redis1').vars)
  t.equal(wanted.save, '3600 1 300 100 60 10000')
  t.same(differing({ save: wanted.save }, pairs(CONFIG_GET_SAVE_AFTER_RESTART)), ['save'])
  const healthy = pairs(['save', '3600 1 300 100 60 10000'])
  t.same(differing({ save: wanted.save }, healthy), [], 'the answer of a healthy server')
})

t.test('save rules are compared as Redis prints them', async (t) => {
  t.equal(saveValue(' 3600  1\t300 100 '), '3600 1 300 100')
  t.equal(saveValue('0900 01'), '900 1', 'Redis prints numbers without leading zeros')
  t.equal(saveValue(''), '', 'no rules: CONFIG GET save answers an empty string')
  t.same(saveLines(''), ['save ""'])
  t.same(saveLines('900 1 300 10'), ['save 900 1', 'save 300 10'])
})

t.test('every save line goes back before the include, where a restart adds them all up', async (t) => {
  const include = 'include /etc/redis/hastack.conf'
  const rules = saveLines('3600 1 300 100 60 10000')
  const fixed = placeSaveRules(REWRITTEN_BY_REDIS_7_0, rules, include)
  t.equal(
    fixed,
    [
      '# hastack: redis bootstrap',
      'save 3600 1',
      'save 300 100',
      'save 60 10000',
      'include /etc/redis/hastack.conf',
      'replicaof 10.0.0.11 6379',
      '',
      '# Generated by CONFIG REWRITE',
      'latency-tracking-info-percentiles 50 99 99.9',
      'maxmemory 256mb',
      '',
    ].join('\n'),
  )
  t.equal(placeSaveRules(fixed, rules, include), fixed, 'idempotent')
  const debian = 'bind 127.0.0.1\nsave 900 1\n'
  t.equal(placeSaveRules(debian, ['save 1 1'], include), debian, 'a file without the include is left alone')
})

t.test('appended save lines move back before the include; the owner and mode stay as Redis set them', async (t) => {
  const puts: { path: string; content: string; options?: PutOptions }[] = []
  let conf = REWRITTEN_BY_REDIS_7_0
  const conn = {
    // The path's state (as pathStateCommand prints it), then the file itself.
    run: async () => ({ code: 0, stdout: `regular file|640|redis|redis|${conf.length}\n`, stderr: '', durationMs: 0 }),
    get: async () => Buffer.from(conf),
    put: async (path: string, content: string, options?: PutOptions) => void puts.push({ path, content, options }),
  } as unknown as Connection
  const ctx = { conn, check: false, diff: true, host: {} } as unknown as TaskContext
  const task = saveRulesInFileTask({ vars: { redis_save: '3600 1 300 100 60 10000' } })
  const plan = await task.check(ctx)
  t.equal(plan.change, true)
  if (plan.change) await plan.apply()
  t.equal(puts.length, 1)
  t.equal(puts[0]!.path, '/etc/redis/redis.conf')
  t.equal(puts[0]!.options, undefined, 'no mode or owner: the file keeps those Redis gave it')
  t.match(puts[0]!.content, /^save 60 10000\ninclude /m)
  conf = puts[0]!.content
  t.equal((await task.check(ctx)).change, false, 'the next run changes nothing')
})
