/**
 * Every template rendered with awkward but valid values (passwords with `&`, `"`,
 * `'`, `$`, `#`, spaces): the output reads back, in its own format, as exactly the
 * values given (YAML for Patroni, HAProxy's quoting rules, sh for etcdctl.env),
 * nothing is HTML-escaped, and a value with a line break is never printed.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { tree } from '../fixtures/tree.ts'
import { loadInventory } from '../../lib/inventory/index.ts'
import { renderTemplate } from '../../lib/template.ts'
import { haproxyWord, yamlString } from '../../lib/config-quote.ts'
import type { HostView, Inventory } from '../../lib/types.ts'
import { allRoles } from '../../roles/index.ts'
import { hostsEntries, sysctlLines } from '../../roles/common/render.ts'
import { etcdctlEnvView, etcdDefaultView } from '../../roles/etcd/render.ts'
import { haproxyView } from '../../roles/haproxy/render.ts'
import { patroniConfigView } from '../../roles/patroni/render.ts'
import { redisConfView, redisTlsView } from '../../roles/redis/render.ts'

const AWKWARD = {
  haproxy_stats_password: `p&ss"word$ x #1 it's`,
  patroni_superuser_password: `p&ss"word$ x: #{y} it's`,
  patroni_restapi_password: 'p&ss"word$ x rest api',
  postgresql_app_password: "- [not, a, list] & 'quoted'",
  redis_password: 'r&dis$pass#word0123',
  sentinel_password: 's&ntinel$pass#0123',
  etcd_root_password: '~root=pass+/word-0123',
}

// Plaintext (TLS is on by default): the lines checked here are the plaintext ones; tls-render.test.ts has TLS's.
const INVENTORY = `all:
  vars: ${JSON.stringify({ ...AWKWARD, tls_enabled: false })}
  children:
    etcd: { hosts: { node1: { address: 10.0.0.1 }, node2: { address: 10.0.0.2 }, node3: { address: 10.0.0.3 } } }
    postgres: { hosts: { node1: , node2: , node3: } }
    redis: { hosts: { node1: , node2: , node3: } }
    sentinel: { hosts: { node1: , node2: , node3: } }
    haproxy: { hosts: { lb1: { address: 10.0.0.9, redis_haproxy_port: 6380 } } }
`

let inventory: Inventory
t.before(async () => {
  const dir = await tree({ 'inv.yml': INVENTORY })
  inventory = await loadInventory(path.join(dir, 'inv.yml'), { roles: allRoles, secretsFile: path.join(dir, 's.yml') })
})

function view(name: string): HostView {
  const host = inventory.hosts.get(name)!
  const hostvars = (n: string) => inventory.hosts.get(n)!.vars
  return { name, vars: host.vars, facts: {} as HostView['facts'], groups: host.groups, inventory, hostvars }
}

/**
 * Split one HAProxy config line into its words as HAProxy 2.x reads them (configuration
 * manual, 2.2 Quoting and escaping): '…' literal, "…" with `\` escapes, `\` escapes outside
 * quotes, `#` comment outside quotes. A `$` inside "…" would be an environment variable: refused.
 */
function haproxyWords(line: string): string[] {
  const words: string[] = []
  let word: string | undefined
  let quote: '' | "'" | '"' = ''
  const escapes: Record<string, string> = { r: '\r', n: '\n', t: '\t' }
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote === "'") {
      if (c === "'") quote = ''
      else word += c
    } else if (c === '\\') {
      const next = line[++i]!
      word = (word ?? '') + (escapes[next] ?? next)
    } else if (quote === '"') {
      if (c === '"') quote = ''
      else if (c === '$') throw new Error(`environment variable expansion in ${line}`)
      else word += c
    } else if (c === "'" || c === '"') {
      quote = c
      word ??= ''
    } else if (c === ' ') {
      if (word !== undefined) {
        words.push(word)
        word = undefined
      }
    } else if (c === '#') break
    else word = (word ?? '') + c
  }
  if (quote) throw new Error(`unterminated quote in ${line}`)
  if (word !== undefined) words.push(word)
  return words
}

function lineStarting(text: string, start: string): string {
  const line = text.split('\n').find((l) => l.trimStart().startsWith(start))
  if (!line) throw new Error(`no line starting with ${start}`)
  return line.trim()
}

t.test('haproxyWord and yamlString quote every awkward character and refuse line breaks', async (t) => {
  t.equal(haproxyWord("it's"), `'it'\\''s'`)
  t.same(haproxyWords(`user ${haproxyWord(AWKWARD.haproxy_stats_password)}`), ['user', AWKWARD.haproxy_stats_password])
  t.equal(parseYaml(`k: ${yamlString(AWKWARD.patroni_superuser_password)}`).k, AWKWARD.patroni_superuser_password)
  t.throws(() => haproxyWord('a\nb'), /control character/)
  t.throws(() => yamlString('a\rb'), /control character/)
})

t.test('patroni config.yml reads back as YAML with every password and pg_hba line intact', async (t) => {
  const node = view('node2')
  const text = renderTemplate('patroni/config.yml.ejs', node, { patroni: patroniConfigView(node) })
  t.notMatch(text, /&amp;|&#34;|&#39;/, 'no HTML escaping')
  const config = parseYaml(text)
  t.equal(config.postgresql.authentication.superuser.password, AWKWARD.patroni_superuser_password)
  t.equal(config.restapi.authentication.password, AWKWARD.patroni_restapi_password)
  t.equal(config.restapi.listen, '10.0.0.2:8008')
  t.same(config.etcd3.hosts, ['10.0.0.1:2379', '10.0.0.2:2379', '10.0.0.3:2379'])
  t.equal(config.bootstrap.dcs.postgresql.parameters.max_connections, 200)
  t.equal(config.bootstrap.dcs.postgresql.parameters.log_line_prefix, '%m [%p] %q%u@%d ')
  t.ok(config.postgresql.pg_hba.includes('host replication replicator 10.0.0.3/32 scram-sha-256'))
  const localReplication = 'host replication replicator 127.0.0.1/32 scram-sha-256'
  t.ok(config.postgresql.pg_hba.includes(localReplication), "Patroni may read a replica's timeline over loopback")
  const haproxyLogin = 'host app app 10.0.0.9/32 scram-sha-256'
  t.ok(config.postgresql.pg_hba.includes(haproxyLogin), 'the HAProxy host may log in as the app user')
})

t.test('haproxy.cfg: the stats password is one HAProxy word, servers follow the Patroni group', async (t) => {
  const lb = view('lb1')
  const text = renderTemplate('haproxy/haproxy.cfg.ejs', lb, { haproxy: haproxyView(lb) })
  const userLine = haproxyWords(lineStarting(text, "user 'admin'"))
  t.same(userLine, ['user', 'admin', 'insecure-password', AWKWARD.haproxy_stats_password])
  const lines = text.split('\n').map((l) => l.trim())
  const linesOf = (start: string) => lines.filter((l) => l.startsWith(start)).map(haproxyWords)
  const servers = linesOf('server node').map((words) => words.slice(0, 3))
  t.same(servers.slice(0, 3), [
    ['server', 'node1', '10.0.0.1:5432'],
    ['server', 'node2', '10.0.0.2:5432'],
    ['server', 'node3', '10.0.0.3:5432'],
  ])
  t.match(text, /http-check send meth OPTIONS uri \/replica\?lag=1MB/)
  const sends = linesOf('tcp-check send').map((words) => words[2])
  t.ok(sends.includes(`AUTH ${AWKWARD.sentinel_password}\r\n`), 'the Sentinel AUTH command reads back exactly')
  t.ok(sends.includes(`AUTH ${AWKWARD.redis_password}\r\n`), 'the Redis AUTH command reads back exactly')
  t.match(text, /bind 10\.0\.0\.9:6380/)
})

t.test('etcdctl.env sourced by sh gives back the root password and endpoints', async (t) => {
  const node = view('node1')
  const text = renderTemplate('etcd/etcdctl.env.ejs', node, { etcdctl: etcdctlEnvView(node) })
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'hastack-env-')), 'etcdctl.env')
  await writeFile(file, text)
  const script = 'set -a; . "$1"; printf "%s|%s" "$ETCDCTL_PASSWORD" "$ETCDCTL_ENDPOINTS"'
  const out = execFileSync('sh', ['-c', script, 'sh', file], { encoding: 'utf8' })
  t.equal(out, `${AWKWARD.etcd_root_password}|http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379`)
})

t.test('etcd.default names every member once in the initial cluster', async (t) => {
  const node = view('node3')
  const text = renderTemplate('etcd/etcd.default.ejs', node, { etcd: etcdDefaultView(node, 'new') })
  const cluster = 'node1=http://10.0.0.1:2380,node2=http://10.0.0.2:2380,node3=http://10.0.0.3:2380'
  t.ok(text.split('\n').includes(`ETCD_INITIAL_CLUSTER="${cluster}"`))
  t.match(text, /^ETCD_LISTEN_CLIENT_URLS="http:\/\/10\.0\.0\.3:2379,http:\/\/127\.0\.0\.1:2379"$/m)
  t.match(text, /^ETCD_INITIAL_CLUSTER_STATE="new"$/m)
})

t.test('Redis and Sentinel files print the password as one config word', async (t) => {
  const node = view('node1')
  const redis = renderTemplate('redis/hastack.conf.ejs', node, redisTlsView(node.vars))
  t.equal(lineStarting(redis, 'requirepass').split(' ').length, 2)
  t.equal(lineStarting(redis, 'requirepass'), `requirepass ${AWKWARD.redis_password}`)
  const sentinel = renderTemplate('sentinel/sentinel.conf.ejs', node, {
    sentinel_primary: '10.0.0.1',
    ...redisTlsView(node.vars),
  })
  t.equal(lineStarting(sentinel, 'sentinel auth-pass'), `sentinel auth-pass hastack-redis ${AWKWARD.redis_password}`)
  t.equal(lineStarting(sentinel, 'requirepass'), `requirepass ${AWKWARD.sentinel_password}`)
  const bootstrap = renderTemplate('redis/redis.conf.ejs', node, redisConfView(node, ''))
  // One line per rule, before the include: Redis 7.0 adds up only the save lines read before an include.
  t.match(bootstrap, /^save 3600 1\nsave 300 100\nsave 60 10000\ninclude \/etc\/redis\/hastack\.conf$/m)
  t.equal(bootstrap.split('\n').filter((l) => l.startsWith('save')).length, 3)
  t.notMatch(bootstrap, /replicaof/)
})

t.test('/etc/hosts, sysctl and limits print the prepared lines', async (t) => {
  const lb = view('lb1')
  const hosts = renderTemplate('common/hosts.ejs', lb, { hosts_entries: hostsEntries(lb) })
  t.match(hosts, /^10\.0\.0\.9\tlb1$/m)
  t.match(hosts, /^10\.0\.0\.1\tnode1$/m)
  const sysctl = renderTemplate('common/sysctl.conf.ejs', lb, { sysctl_lines: sysctlLines(lb) })
  t.match(sysctl, /^net\.core\.somaxconn = 1024$/m)
  t.match(renderTemplate('common/limits.conf.ejs', lb), /^\*\tsoft\tnofile\t65536$/m)
  t.match(renderTemplate('patroni/patroni.service.ejs', lb), /^LimitNOFILE=65536$/m)
})

t.test('a printed value with a line break stops the render instead of writing it', async (t) => {
  const lb = view('lb1')
  t.throws(
    () => renderTemplate('common/hosts.ejs', lb, { hosts_entries: [{ address: '10.0.0.1\n0.0.0.0', name: 'x' }] }),
    /template common\/hosts\.ejs: a printed value holds a line break/,
  )
})
