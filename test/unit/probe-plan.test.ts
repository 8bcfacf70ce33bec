/**
 * The probe plan's file (lib/play/probe-plan.ts): what it keeps (the questions, never a probe holding a secret),
 * how a run's probes replace a host's old list while other hosts keep theirs, that a missing, damaged or
 * foreign file reads as an empty plan, and that a secret a command probe carries is kept by its name only.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Probe } from '../../lib/types.ts'
import {
  fillSecrets,
  nameSecrets,
  nextProbePlan,
  PLAN_MAX_PROBES,
  probePlanFile,
  readProbePlan,
  writeProbePlan,
  type ProbePlan,
} from '../../lib/play/probe-plan.ts'

const unit: Probe = { kind: 'unit', name: 'patroni' }
const path: Probe = { kind: 'path', path: '/etc/patroni/config.yml' }
const query: Probe = { kind: 'run', command: 'systemctl is-active -q patroni' }
const keepAll = () => true

function tempFile(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-plan-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return probePlanFile(join(dir, 'lab.yml'))
}

t.test('the plan of an inventory is kept beside it', async (t) => {
  t.equal(probePlanFile('/srv/inventory/lab.yml'), '/srv/inventory/lab.yml.probes.json')
})

t.test('writes the questions and reads them back as they were, readable by its owner only', async (t) => {
  const file = tempFile(t)
  const plan: ProbePlan = new Map([
    ['node1', [unit, path, { kind: 'packages', names: ['patroni', 'python3-etcd'] }]],
    ['node2', [query, { kind: 'read', path: '/etc/hostname' }]],
  ])
  await writeProbePlan(file, plan)
  t.same(await readProbePlan(file), plan)
  t.equal(statSync(file).mode & 0o777, 0o600)
})

t.test(
  "a run's probes replace the hosts it asked, once each in the order first asked; other hosts keep theirs",
  async (t) => {
    const old: ProbePlan = new Map([
      ['node1', [unit]],
      ['node2', [path]],
    ])
    const asked: ProbePlan = new Map([['node1', [query, path, query, unit]]])
    const next = nextProbePlan(old, asked, keepAll)
    t.same(next.get('node1'), [query, path, unit])
    t.same(next.get('node2'), [path], 'a host the run did not ask (--limit) keeps its plan')
  },
)

t.test('a probe the keep rule refuses (one holding a secret) is not written', async (t) => {
  const secret: Probe = { kind: 'run', command: "psql -c 'select 1' password=s3cret" }
  const next = nextProbePlan(
    new Map(),
    new Map([['node1', [unit, secret]]]),
    (p) => !JSON.stringify(p).includes('s3cret'),
  )
  t.same(next.get('node1'), [unit])
})

t.test('keeps at most PLAN_MAX_PROBES probes per host', async (t) => {
  const many: Probe[] = Array.from({ length: PLAN_MAX_PROBES + 5 }, (_, i) => ({ kind: 'path', path: `/tmp/f${i}` }))
  t.equal(nextProbePlan(new Map(), new Map([['node1', many]]), keepAll).get('node1')?.length, PLAN_MAX_PROBES)
})

t.test('a missing, damaged or foreign file is an empty plan; malformed probes are left out', async (t) => {
  const file = tempFile(t)
  t.same(await readProbePlan(file), new Map(), 'missing')
  writeFileSync(file, '{"version": 1, "hosts": ')
  t.same(await readProbePlan(file), new Map(), 'cut short')
  writeFileSync(file, JSON.stringify({ version: 2, hosts: { node1: [unit] } }))
  t.same(await readProbePlan(file), new Map(), 'another version')
  writeFileSync(
    file,
    JSON.stringify({ version: 1, hosts: { node1: [unit, { kind: 'run' }, { kind: 'shell', command: 'x' }, 7] } }),
  )
  t.same(await readProbePlan(file), new Map([['node1', [unit]]]), 'only the well-formed probe')
})

t.test('a port probe is kept only for a dotted IPv4 address and a TCP port number', async (t) => {
  const file = tempFile(t)
  const port: Probe = { kind: 'port', address: '10.0.0.1', port: 6379 }
  const others = [
    { kind: 'port', address: 'localhost', port: 6379 },
    { kind: 'port', address: '10.0.0.256', port: 6379 },
    { kind: 'port', address: '10.0.0.01', port: 6379 },
    { kind: 'port', address: '10.0.0.1', port: 0 },
    { kind: 'port', address: '10.0.0.1', port: 65536 },
    { kind: 'port', address: '10.0.0.1', port: '6379' },
  ]
  writeFileSync(file, JSON.stringify({ version: 1, hosts: { node1: [port, ...others] } }), { mode: 0o600 })
  t.same(await readProbePlan(file), new Map([['node1', [port]]]))
})

t.test('the typed probes answered in the evaluator are kept only when well-formed', async (t) => {
  const file = tempFile(t)
  const kept: Probe[] = [
    { kind: 'group', name: 'hastack-tls-etcd' },
    { kind: 'user', name: 'etcd' },
    { kind: 'test', test: 'exists', path: '/etc/hastack/tls/host.key' },
    { kind: 'test', test: 'directory', path: '/var/lib/etcd/member' },
    { kind: 'digest', paths: ['/etc/hastack/tls/host.crt', '/etc/hastack/tls/host.key'] },
    { kind: 'line', line: 'include /etc/redis/hastack.conf', path: '/etc/redis/redis.conf' },
    { kind: 'content', path: '/usr/sbin/policy-rc.d' },
    { kind: 'entry', dir: '/var/backups/hastack', pattern: 'redis-*.rdb.sha256' },
    { kind: 'listing', dir: '/etc/prometheus/rules/hastack' },
    { kind: 'hostname', name: 'node1' },
    { kind: 'sysctl', key: 'net.ipv4.ip_nonlocal_bind', value: '1' },
    { kind: 'served', address: '10.0.0.1', port: 8008, certFile: '/etc/hastack/tls/host.crt' },
    { kind: 'served', address: '10.0.0.1', port: 5432, starttls: 'postgres', certFile: '/etc/hastack/tls/host.crt' },
    { kind: 'get', url: 'https://10.0.0.1:8008/cluster', caFile: '/etc/hastack/tls/ca.crt' },
    { kind: 'get', url: 'http://10.0.0.1:8008/cluster' },
    { kind: 'url', url: 'https://10.0.0.1:8008/health', caFile: '/etc/hastack/tls/ca.crt' },
    { kind: 'url', url: 'http://10.0.0.1:9090/-/ready' },
    { kind: 'health', urls: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'] },
    {
      kind: 'health',
      urls: ['https://10.0.0.1:2379'],
      caFile: '/etc/hastack/tls/ca.crt',
      certFile: '/etc/hastack/tls/host.crt',
      keyFile: '/etc/hastack/tls/host.key',
    },
  ]
  const malformed = [
    { kind: 'group', name: 7 },
    { kind: 'user' },
    { kind: 'test', test: 'readable', path: '/etc' },
    { kind: 'test', test: 'exists' },
    { kind: 'digest', paths: [] },
    { kind: 'digest', paths: ['/a', 1] },
    { kind: 'line', line: 'x' },
    { kind: 'content' },
    { kind: 'entry', dir: '/var/backups' },
    { kind: 'listing', path: '/etc' },
    { kind: 'hostname', name: null },
    { kind: 'sysctl', key: 'net.ipv4.ip_nonlocal_bind', value: 1 },
    { kind: 'served', address: '10.0.0.1', port: 0, certFile: '/etc/hastack/tls/host.crt' },
    { kind: 'served', address: '10.0.0.1', port: 6379, starttls: 'smtp', certFile: '/etc/hastack/tls/host.crt' },
    { kind: 'served', address: '10.0.0.1', port: 6379 },
    { kind: 'get', url: 'https://10.0.0.1:8008/cluster' },
    { kind: 'get', url: 'https://10.0.0.1:8008/cluster', caFile: 1 },
    { kind: 'url', caFile: '/etc/hastack/tls/ca.crt' },
    { kind: 'health', urls: [] },
    { kind: 'health', urls: ['https://10.0.0.1:2379'], caFile: '/etc/hastack/tls/ca.crt' },
  ]
  writeFileSync(file, JSON.stringify({ version: 1, hosts: { node1: [...kept, ...malformed] } }), { mode: 0o600 })
  t.same(await readProbePlan(file), new Map([['node1', kept]]))
})

t.test('a plan file that others may write is not read (its run probes are commands run as root)', async (t) => {
  const file = tempFile(t)
  await writeProbePlan(file, new Map([['node1', [query]]]))
  t.same(await readProbePlan(file), new Map([['node1', [query]]]), 'the private plan is read')
  chmodSync(file, 0o620)
  t.same(await readProbePlan(file), new Map(), 'group-writable: ignored')
  chmodSync(file, 0o602)
  t.same(await readProbePlan(file), new Map(), 'world-writable: ignored')
})

t.test("a command probe's secrets are kept by name and put back from the host's secrets", async (t) => {
  const secrets = new Map([
    ['redis_password', 'Lr8_-BqkQeXPM6CPqwgSNI6lSx1OYFY5'],
    ['short_one', 'Lr8_-Bqk'],
  ])
  const probe: Probe = {
    kind: 'run',
    command: 'timeout 15 sh -s',
    stdin: "REDISCLI_AUTH='Lr8_-BqkQeXPM6CPqwgSNI6lSx1OYFY5'\nredis-cli PING # Lr8_-Bqk\n",
  }
  const named = nameSecrets(probe, secrets)!
  t.notMatch(JSON.stringify(named), /Lr8_/, 'no value is left, the longer secret named whole before the shorter')
  t.match((named as { stdin: string }).stdin, /\u0000hastack-secret:redis_password\u0000/)
  t.same(fillSecrets(named, secrets), probe, 'filled from the same secrets: the probe as asked')
  t.equal(fillSecrets(named, new Map([['short_one', 'Lr8_-Bqk']])), undefined, 'a secret the host lacks: dropped')
  t.same(nameSecrets({ kind: 'path', path: '/etc/x' }, secrets), { kind: 'path', path: '/etc/x' })
  t.equal(nameSecrets({ kind: 'run', command: 'printf a\u0000b' }, secrets), undefined, 'a NUL byte: never kept')
  const dir = mkdtempSync(join(tmpdir(), 'hastack-plan-secret-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'plan.json')
  await writeProbePlan(file, new Map([['h1', [named]]]))
  t.notMatch(readFileSync(file, 'utf8'), /Lr8_/, 'the file holds no value')
  t.same(
    [...(await readProbePlan(file))].map(([host, probes]) => [host, probes.map((p) => fillSecrets(p, secrets))]),
    [['h1', [probe]]],
  )
})
