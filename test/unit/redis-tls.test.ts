/**
 * TLS for Redis, Sentinel and HAProxy's Redis endpoint and stats page, without a lab: what each role
 * renders with `tls_enabled` on (and with `redis_tls` or `haproxy_stats_tls` turned off under it), the one
 * set of redis-cli options every caller takes, and the clients that follow (exporter, app, snapshots,
 * Prometheus' scrape of HAProxy, the switchover writer; keepalived's check stays plain on loopback).
 */
import path from 'node:path'
import t from 'tap'
import { tree } from '../fixtures/tree.ts'
import { loadInventory } from '../../lib/inventory/index.ts'
import { renderTemplate } from '../../lib/template.ts'
import type { HostView, Inventory } from '../../lib/types.ts'
import { allRoles } from '../../roles/index.ts'
import { cliEndpoint, cliScript, redisTlsArgs } from '../../roles/redis/cli.ts'
import { redisEndpointView, redisTlsView } from '../../roles/redis/render.ts'
import { haproxyView } from '../../roles/haproxy/render.ts'
import { keepalivedView } from '../../roles/keepalived/render.ts'
import { scrapeJobs } from '../../roles/prometheus/scrape.ts'
import { appEnvironment } from '../../roles/app/render.ts'
import { snapshotEnvView } from '../../roles/snapshots/render.ts'
import { switchWatch, writerPlacement } from '../../playbooks/day2/writer.ts'
import type { Fleet } from '../../playbooks/day2/fleet.ts'

const INVENTORY = `
all:
  children:
    etcd: { hosts: { node1: { address: 10.0.0.11 }, node2: { address: 10.0.0.12 }, node3: { address: 10.0.0.13 } } }
    postgres: { hosts: { node1: , node2: , node3: } }
    redis: { hosts: { node1: , node2: , node3: } }
    sentinel: { hosts: { node1: , node2: , node3: } }
    haproxy: { hosts: { node1: , node2: }, vars: { redis_haproxy_port: 6380 } }
    app: { hosts: { node1: } }
    monitoring: { hosts: { node1: } }
    backup_repo: { hosts: { node1: } }
`
const TLS = '/etc/hastack/tls'

async function load(extra: string[] = []): Promise<Inventory> {
  const dir = await tree({ 'inv.yml': INVENTORY })
  return loadInventory(path.join(dir, 'inv.yml'), { roles: allRoles, extraVars: extra })
}

function view(inv: Inventory, name: string): HostView {
  return {
    name,
    vars: inv.hosts.get(name)!.vars,
    facts: { ipv4: { eth0: [String(inv.hosts.get(name)!.vars.address)] } } as unknown as HostView['facts'],
    groups: inv.hosts.get(name)!.groups,
    inventory: inv,
    hostvars: (n) => inv.hosts.get(n)!.vars,
  }
}

const lines = (text: string, start: string) => text.split('\n').filter((l) => l.startsWith(start))

t.test('with TLS on, Redis and Sentinel listen on their port with TLS only, from the redis copy', async (t) => {
  const inv = await load(['tls_enabled=true'])
  const node = view(inv, 'node2')
  const redis = renderTemplate('redis/hastack.conf.ejs', node, redisTlsView(node.vars))
  t.same(lines(redis, 'port '), ['port 0'], 'no plaintext port')
  t.same(lines(redis, 'tls-'), [
    'tls-port 6379',
    `tls-cert-file ${TLS}/redis/host.crt`,
    `tls-key-file ${TLS}/redis/host.key`,
    `tls-ca-cert-file ${TLS}/redis/ca.crt`,
    'tls-auth-clients optional',
    'tls-replication yes',
    'tls-cluster no',
  ])
  t.match(redis, /^requirepass \S+$/m, 'the password stays')
  const sentinel = renderTemplate('sentinel/sentinel.conf.ejs', node, {
    sentinel_primary: '10.0.0.11',
    ...redisTlsView(node.vars),
  })
  t.same(lines(sentinel, 'port '), ['port 0'])
  t.match(sentinel, /^tls-port 26379$/m)
  t.match(sentinel, /^tls-replication yes$/m, 'TLS to Redis and to the other Sentinels too')
  t.match(sentinel, new RegExp(`^tls-key-file ${TLS}/redis/host\\.key$`, 'm'))
})

t.test('without TLS, or with redis_tls off under tls_enabled, Redis and Sentinel stay in plaintext', async (t) => {
  for (const extra of [['tls_enabled=false'], ['tls_enabled=true', 'redis_tls=false']]) {
    const inv = await load(extra)
    const node = view(inv, 'node1')
    const redis = renderTemplate('redis/hastack.conf.ejs', node, redisTlsView(node.vars))
    t.same(lines(redis, 'port '), ['port 6379'], extra.join(' '))
    t.same(lines(redis, 'tls-'), [])
    const sentinel = renderTemplate('sentinel/sentinel.conf.ejs', node, {
      sentinel_primary: '10.0.0.11',
      ...redisTlsView(node.vars),
    })
    t.same(lines(sentinel, 'tls-'), [])
    t.same(redisTlsArgs(node.vars), [], 'redis-cli gets no TLS option')
  }
})

t.test('every redis-cli the code runs takes the same TLS options, the password still on stdin', async (t) => {
  const inv = await load(['tls_enabled=true'])
  const vars = inv.hosts.get('node1')!.vars
  t.same(redisTlsArgs(vars), ['--tls', '--cacert', `${TLS}/ca.crt`])
  const script = cliScript(cliEndpoint(vars, '10.0.0.12', 26379, 'pw-0123456789abcdef'), [['PING']])
  t.match(script, `redis-cli --no-auth-warning --raw --tls --cacert ${TLS}/ca.crt -h 10.0.0.12 -p 26379 <<`)
  t.notMatch(script.split('\n').find((l) => l.startsWith('redis-cli')) ?? '', /pw-0123456789abcdef/)
  const snapshot = new Map(snapshotEnvView(view(inv, 'node1'), 'redis'))
  t.equal(snapshot.get('REDIS_CLI_TLS'), `--tls --cacert ${TLS}/ca.crt`, "the snapshot script's options")
})

t.test("HAProxy's Redis endpoint: TLS to clients, and checks and traffic verified against the CA", async (t) => {
  const inv = await load(['tls_enabled=true'])
  const lb = view(inv, 'node1')
  const text = renderTemplate('haproxy/redis.cfg.ejs', lb, {
    redis_endpoint: redisEndpointView(lb),
    redis_bind: '10.0.0.11:6380',
  })
  t.same(lines(text, '    bind '), [
    `    bind 10.0.0.11:6380 ssl crt ${TLS}/haproxy/host.pem`,
    `    bind 127.0.0.1:6380 ssl crt ${TLS}/haproxy/host.pem`,
  ])
  t.equal(lines(text, '    tcp-check connect default').length, 3, "each backend's first connect: the server's TLS")
  t.match(text, /^ {4}tcp-check connect addr 10\.0\.0\.12 port 6379 ssl sni node2$/m, 'Redis checked as node2')
  const server = lines(text, '    server node2_via_node3 ')[0]
  t.match(
    server,
    new RegExp(
      `addr 10\\.0\\.0\\.13 port 26379 ssl verify required ca-file ${TLS}/haproxy/ca\\.crt sni str\\(node2\\)` +
        ' check-ssl check-sni node3$',
    ),
    "traffic verified as the Redis host's name, checks as the Sentinel's",
  )
  const plain = await load(['tls_enabled=false'])
  const plainText = renderTemplate('haproxy/redis.cfg.ejs', view(plain, 'node1'), {
    redis_endpoint: redisEndpointView(view(plain, 'node1')),
    redis_bind: '10.0.0.11:6380',
  })
  t.notMatch(plainText, /ssl|sni|tcp-check connect default/, 'plaintext: none of it')
})

t.test('the stats page over HTTPS for Prometheus; keepalived asks the loopback health listener', async (t) => {
  const inv = await load(['tls_enabled=true'])
  const lb = view(inv, 'node1')
  t.equal(haproxyView(lb).stats_bind_tls, ` ssl crt ${TLS}/haproxy/host.pem`)
  const check = renderTemplate('keepalived/check-haproxy.ejs', lb, { keepalived: keepalivedView(lb) })
  t.match(check, /dev\/tcp\/127\.0\.0\.1\/7000/, 'plain HTTP on loopback, whatever the stats page speaks')
  t.notMatch(check, /curl/)
  const haproxyJob = scrapeJobs(inv, inv.hosts.get('node1')!.vars).find((j) => j.job_name === 'haproxy')
  t.match(haproxyJob, { scheme: 'https', tls_config: { ca_file: `${TLS}/ca.crt` } })

  const statsPlain = await load(['tls_enabled=true', 'haproxy_stats_tls=false'])
  t.equal(haproxyView(view(statsPlain, 'node1')).stats_bind_tls, '', 'haproxy_stats_tls=false: plain HTTP')
  const job = scrapeJobs(statsPlain, statsPlain.hosts.get('node1')!.vars).find((j) => j.job_name === 'haproxy')
  t.equal(job?.scheme, undefined)
  const plainCheck = renderTemplate('keepalived/check-haproxy.ejs', view(statsPlain, 'node1'), {
    keepalived: keepalivedView(view(statsPlain, 'node1')),
  })
  t.equal(plainCheck, check, 'the same check')
})

t.test('the exporter, the app and the switchover writer speak TLS to Redis with the CA', async (t) => {
  const inv = await load(['tls_enabled=true'])
  const node = view(inv, 'node1')
  const exporter = renderTemplate('redis_exporter/default.ejs', node, {
    redis_exporter_target: 'Redis server',
    redis_exporter_target_port: 6379,
    redis_exporter_target_password: 'x',
    redis_exporter_listen_port: 9121,
    redis_exporter_ca: `${TLS}/ca.crt`,
  })
  t.match(exporter, /^REDIS_ADDR="rediss:\/\/127\.0\.0\.1:6379"$/m)
  t.match(exporter, `--tls-ca-cert-file=${TLS}/ca.crt"`)
  t.equal(new Map(appEnvironment(node)).get('APP_REDIS_TLS_CA_FILE'), `${TLS}/ca.crt`)
  t.equal(
    new Map(appEnvironment(view(await load(['tls_enabled=false']), 'node1'))).get('APP_REDIS_TLS_CA_FILE'),
    '',
    'plaintext: empty',
  )

  const fleet = { inventory: inv, vars: (h: string) => inv.hosts.get(h)!.vars, members: inv.groupHosts } as Fleet
  t.equal(writerPlacement(fleet, 'redis').target.redisCa, `${TLS}/ca.crt`)
  t.equal(switchWatch(fleet, 'redis').redisCa, `${TLS}/ca.crt`)
})
