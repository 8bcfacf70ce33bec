/**
 * The audit (playbooks/audit/) on scripted hosts: `ss` lines parsed in every shape ss prints, a clean
 * stack passes, and each kind of finding fails it naming host and port: a stray listener, a world-readable
 * file holding a secret (the secrets reach grep on standard input only), a certificate inside the renewal
 * margin (made by the real CA code), Redis answering PING without AUTH, etcd answering without a user; with
 * TLS on, a service answering a plaintext client (Redis, Sentinel, PostgreSQL, etcd, Patroni's REST API).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { loadInventory, secretValues } from '../../lib/inventory/index.ts'
import { allRoles } from '../../roles/index.ts'
import { caFiles, ensureCa, signRequest } from '../../roles/certificates/ca.ts'
import { fleetOf } from '../../playbooks/day2/fleet.ts'
import { auditFleet } from '../../playbooks/audit/run.ts'
import { judgeListeners, parseSocket } from '../../playbooks/audit/findings.ts'
import { httpAnswered, postgresAnswered, redisAnswered } from '../../playbooks/audit/tls.ts'
import { ScriptedConnection } from '../fixtures/scripted.ts'
import { stackInventory } from '../roles/stack.ts'

const users = (name: string) => `users:(("${name}",pid=812,fd=7))`
/** What ss shows on a converged member of the role tests' stack (db1: etcd, PostgreSQL, Patroni). */
const DB1_SOCKETS = [
  `tcp LISTEN 0 4096 10.0.0.11:2379 0.0.0.0:* ${users('etcd')}`,
  `tcp LISTEN 0 4096 127.0.0.1:2379 0.0.0.0:* ${users('etcd')}`,
  `tcp LISTEN 0 4096 10.0.0.11:2380 0.0.0.0:* ${users('etcd')}`,
  `tcp LISTEN 0 244 10.0.0.11:5432 0.0.0.0:* ${users('postgres')}`,
  `tcp LISTEN 0 5 10.0.0.11:8008 0.0.0.0:* ${users('patroni')}`,
  `tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* ${users('sshd')}`,
  `tcp LISTEN 0 128 [::]:22 [::]:* ${users('sshd')}`,
  `udp UNCONN 0 0 127.0.0.1:323 0.0.0.0:* ${users('chronyd')}`,
]

t.test('ss lines of every shape are read', async (t) => {
  t.same(parseSocket(DB1_SOCKETS[0]!), { protocol: 'tcp', address: '10.0.0.11', port: 2379, process: 'etcd' })
  t.same(parseSocket(`tcp LISTEN 0 128 [::]:22 [::]:* ${users('sshd')}`), {
    protocol: 'tcp',
    address: '::',
    port: 22,
    process: 'sshd',
  })
  t.match(parseSocket(`udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* ${users('systemd-resolve')}`), {
    address: '127.0.0.53',
    port: 53,
  })
  t.match(parseSocket('tcp LISTEN 0 5 *:8000 *:*'), { address: '*', port: 8000, process: '?' })
  t.equal(parseSocket('garbage'), undefined)
})

t.test('an unexpected socket on loopback is a note, on any other address a finding', async (t) => {
  const sockets = ['tcp LISTEN 0 5 127.0.0.1:9999 0.0.0.0:*', 'tcp LISTEN 0 5 0.0.0.0:8000 0.0.0.0:*'].map((l) =>
    parseSocket(l)!,
  )
  const report = judgeListeners('db1', sockets, [])
  t.same(report.localOnly, ['db1: 127.0.0.1:9999/tcp (?) on loopback only'])
  t.match(report.unexpected, [{ host: 'db1', port: 8000, message: /^db1 port 8000: unexpected listener/ }])
})

interface World {
  dir: string
  conns: Map<string, ScriptedConnection>
  lines: string[]
  audit(): Promise<{ code: number; report: unknown }>
}

/** The role tests' stack on scripted hosts that answer the audit's probes as a converged, closed stack. */
async function auditWorld(vars: Record<string, unknown> = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-audit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'hosts.yml')
  writeFileSync(file, stringify(stackInventory(vars)))
  const inventory = await loadInventory(file, { roles: allRoles, secretsFile: join(dir, 'secrets.yml') })
  const conns = new Map<string, ScriptedConnection>()
  for (const [name, host] of inventory.hosts) {
    const conn = new ScriptedConnection(name, { address: String(host.vars.address) })
    conn.on(/^ss -Hltnup$/, () => ({ stdout: name === 'db1' ? DB1_SOCKETS.join('\n') + '\n' : '' }))
    conn.on(/etcdctl/, () => ({ code: 1, stdout: '{"level":"warn"} Error: etcdserver: user name is empty\n' }))
    conn.on(/redis-cli/, () => ({ stdout: 'NOAUTH Authentication required.\n' }))
    conn.on(/psql/, () => ({ code: 2, stdout: 'psql: error: fe_sendauth: no password supplied\n' }))
    conn.on(/python3 -c/, () => ({ stdout: '401\n' }))
    // No file holds a secret, no certificate yet: both print nothing.
    conn.on(/grep -rlZF -f -/, () => ({ stdout: '' }))
    conn.on(/find \/etc\/hastack\/tls -name '\*\.crt'/, () => ({ stdout: '' }))
    conns.set(name, conn)
  }
  const lines: string[] = []
  const fleet = fleetOf(
    inventory,
    async (h) => conns.get(h)!,
    (l) => lines.push(l),
  )
  return { dir, conns, lines, audit: () => auditFleet(fleet) }
}

t.test('a closed, converged stack passes the audit', async (t) => {
  const world = await auditWorld()
  const outcome = await world.audit()
  t.equal(outcome.code, 0, world.lines.join('\n'))
  t.match(world.lines.at(-1), /^audit: 0 finding\(s\) on 7 host\(s\)$/)
  t.same(world.conns.get('db1')!.unmatched, [])
})

t.test('a stray listener fails the audit, naming host and port', async (t) => {
  const world = await auditWorld()
  world.conns.get('db2')!.on(/^ss -Hltnup$/, { stdout: `tcp LISTEN 0 5 0.0.0.0:8000 0.0.0.0:* ${users('python3')}\n` })
  const outcome = await world.audit()
  t.equal(outcome.code, 2)
  t.ok(
    world.lines.includes(
      'FINDING db2 port 8000: unexpected listener 0.0.0.0:8000/tcp (python3), not needed by its groups',
    ),
  )
})

t.test('a world-readable file holding a secret is found; the secrets reach grep on standard input only', async (t) => {
  const world = await auditWorld()
  const db3 = world.conns.get('db3')!
  const modes = [
    '644|root|root|/etc/patroni/config.yml',
    '640|root|postgres|/etc/ok.conf',
    '604|root|root|/etc/hastack/tls/host.key',
  ]
  db3.on(/grep -rlZF -f -/, { stdout: modes.join('\n') + '\n' })
  const outcome = await world.audit()
  t.equal(outcome.code, 2)
  t.ok(
    world.lines.includes(
      'FINDING db3: /etc/patroni/config.yml holds a secret and is mode 0644 (root:root): others may read it',
    ),
  )
  t.ok(world.lines.some((l) => l.startsWith('FINDING db3: /etc/hastack/tls/host.key') && l.includes('mode 0604')))
  t.notOk(
    world.lines.some((l) => l.includes('/etc/ok.conf')),
    'group-readable is fine',
  )
  const grep = db3.calls.find((c) => c.target.includes('grep -rlZF'))!
  const secrets = secretValues(
    await loadInventory(join(world.dir, 'hosts.yml'), {
      roles: allRoles,
      writeSecrets: false,
      secretsFile: join(world.dir, 'secrets.yml'),
    }),
  )
  t.ok(secrets.length > 5)
  for (const secret of secrets) t.notOk(grep.target.includes(secret), 'no secret on the command line')
  t.ok(
    secrets.every((s) =>
      String((grep.options as { stdin?: string }).stdin)
        .split('\n')
        .includes(s),
    ),
  )
})

t.test('a certificate inside the renewal margin is found', async (t) => {
  const world = await auditWorld()
  const ca = caFiles(join(world.dir, 'hosts.yml'), {})
  await ensureCa(ca, 'hastack CA test', 3650)
  const key = join(world.dir, 'host.key')
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key])
  const csr = execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=redis1'], { encoding: 'utf8' })
  const pem = await signRequest(ca, csr, { dns: ['redis1'], ips: ['10.0.0.31'] }, 10)
  const listing = `==> /etc/hastack/tls/host.crt\n${pem}==> /etc/hastack/tls/ca.crt\n${readFileSync(ca.cert, 'utf8')}`
  world.conns.get('redis1')!.on(/find \/etc\/hastack\/tls -name '\*\.crt'/, { stdout: listing })
  const outcome = await world.audit()
  t.equal(outcome.code, 2)
  t.equal(world.lines.filter((l) => l.startsWith('FINDING')).length, 1, 'the CA itself is not near its end')
  t.match(world.lines, [
    /FINDING redis1: \/etc\/hastack\/tls\/host\.crt expires on .* within tls_renew_margin_days \(30\)/,
  ])
})

t.test('Redis answering PING without AUTH and etcd answering without a user are found', async (t) => {
  const world = await auditWorld()
  world.conns.get('redis2')!.on(/redis-cli .* -p 6379 PING/, { stdout: 'PONG\n' })
  world.conns.get('db1')!.on(/etcdctl/, { code: 0, stdout: '/service/hastack/leader\n' })
  const outcome = await world.audit()
  t.equal(outcome.code, 2)
  t.ok(world.lines.includes('FINDING redis2 port 6379: Redis answers without authentication'))
  t.ok(world.lines.includes('FINDING db1 port 2379: etcd answers without authentication'))
})

t.test('the TLS probe judges a plaintext client turned away from one that got a reply', async (t) => {
  t.notOk(redisAnswered('Error: Connection reset by peer'), 'a TLS port cuts a plaintext redis-cli')
  t.notOk(redisAnswered('I/O error\n'))
  t.ok(redisAnswered('NOAUTH Authentication required.'), 'an error reply is Redis answering')
  t.ok(redisAnswered('PONG'))
  const noEncryption = 'psql: error: FATAL:  no pg_hba.conf entry for host "10.0.0.11", user "postgres", no encryption'
  t.notOk(postgresAnswered(2, noEncryption), 'hostssl only: refused before authentication')
  t.ok(postgresAnswered(2, 'psql: error: fe_sendauth: no password supplied'), 'reached authentication in plaintext')
  t.ok(postgresAnswered(0, '1'))
  t.notOk(httpAnswered('000'), 'no HTTP reply')
  t.notOk(httpAnswered('400'), "Go's answer to HTTP on a TLS port")
  t.ok(httpAnswered('200'))
  t.ok(httpAnswered('503'), "Patroni's /health of a replica still answers")
})

t.test('with TLS on, a service answering a plaintext client fails the audit, naming host and port', async (t) => {
  const world = await auditWorld({ tls_enabled: true })
  for (const conn of world.conns.values()) {
    conn.on(/redis-cli (?!--tls)/, () => ({ stdout: 'Error: Connection reset by peer\n' }))
    conn.on(/psql .*sslmode=disable/, () => ({
      code: 2,
      stdout: 'psql: error: FATAL: no pg_hba.conf entry, no encryption\n',
    }))
    conn.on(/^curl /, () => ({ stdout: '000' }))
  }
  const clean = await world.audit()
  t.equal(clean.code, 0, world.lines.join('\n'))
  t.same(world.conns.get('db1')!.unmatched, [])
  t.ok(
    world.conns.get('redis1')!.commands.some((c) => c.includes('redis-cli --tls --cacert /etc/hastack/tls/ca.crt')),
    'the credentials probe itself speaks TLS',
  )

  world.lines.length = 0
  world.conns.get('redis2')!.on(/redis-cli (?!--tls)/, () => ({ stdout: 'NOAUTH Authentication required.\n' }))
  world.conns
    .get('db1')!
    .on(/psql .*sslmode=disable/, () => ({ code: 2, stdout: 'fe_sendauth: no password supplied\n' }))
  world.conns.get('db2')!.on(/^curl .*:2379\/version/, () => ({ stdout: '200' }))
  world.conns.get('db3')!.on(/^curl .*:8008\/health/, () => ({ stdout: '503' }))
  const found = await world.audit()
  t.equal(found.code, 2)
  for (const line of [
    'FINDING redis2 port 6379: Redis answers without TLS',
    'FINDING redis2 port 26379: Sentinel answers without TLS',
    'FINDING db1 port 5432: PostgreSQL (sslmode=disable) answers without TLS',
    'FINDING db2 port 2379: etcd (plain http) answers without TLS',
    "FINDING db3 port 8008: Patroni's REST API (plain http) answers without TLS",
  ])
    t.ok(world.lines.includes(line), line)
})
