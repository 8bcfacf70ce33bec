/**
 * The load generator's pure parts: its schedule, the statistics of its outcomes (percentiles,
 * failure windows), the reconciliation against the votes table, the report and exit code, where
 * the votes go (inventory, --target) and the bounds of its options.
 */
import t from 'tap'
import { InputError, type Inventory, type InventoryHost } from '../../lib/types.ts'
import { dueAtMs, dueBy, plannedRequests } from '../../playbooks/load/pacing.ts'
import { reconcile, type VoteRow } from '../../playbooks/load/reconcile.ts'
import { exitCodeOf, reportText, type LoadReport } from '../../playbooks/load/report.ts'
import { checkLoadOptions, runPrefix, type LoadOptions } from '../../playbooks/load/run.ts'
import { failureWindows, latencyOf, percentile, successRate, type RequestRecord } from '../../playbooks/load/stats.ts'
import { loadEndpoints, parseTarget } from '../../playbooks/load/target.ts'

const ok = (voter: string, startMs: number, latencyMs = 10): RequestRecord => ({
  voter,
  startMs,
  latencyMs,
  outcome: 'acknowledged',
  status: 201,
  id: `id-${voter}`,
})
const failed = (voter: string, startMs: number, reason = '503', latencyMs = 5): RequestRecord => ({
  voter,
  startMs,
  latencyMs,
  outcome: reason === 'timeout' ? 'timeout' : 'rejected',
  reason,
})

t.test('pacing: rate × duration requests, each due at i / rate seconds, never more than planned', async (t) => {
  t.equal(plannedRequests(50, 30), 1500)
  t.equal(plannedRequests(0.1, 1), 1, 'at least one request')
  t.equal(dueAtMs(0, 50), 0)
  t.equal(dueAtMs(25, 50), 500)
  t.equal(dueBy(0, 50, 1500), 1, 'the first is due at once')
  t.equal(dueBy(999, 50, 1500), 50)
  t.equal(dueBy(1000, 50, 1500), 51)
  t.equal(dueBy(120_000, 50, 1500), 1500, 'a late timer catches up to the plan, not past it')
  t.equal(dueBy(-5, 50, 1500), 0)
})

t.test('percentiles are nearest-rank over the acknowledged votes only', async (t) => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(percentile(values, 50), 50)
  t.equal(percentile(values, 95), 95)
  t.equal(percentile(values, 99), 99)
  t.equal(percentile([7], 99), 7)
  t.equal(percentile([], 50), 0)
  const records = [ok('v-0', 0, 10), ok('v-1', 20, 30), failed('v-2', 40, 'timeout', 5000)]
  t.same(latencyOf(records), { p50: 10, p95: 30, p99: 30, max: 30 }, 'the timeout is not a latency')
  t.equal(successRate(records), 2 / 3)
  t.equal(successRate([]), 1)
})

t.test('failures closer than the gap form one window; a later burst opens another', async (t) => {
  const records = [
    ok('v-0', 0),
    failed('v-1', 10_000),
    failed('v-2', 10_500, 'timeout', 5000),
    failed('v-3', 11_400),
    ok('v-4', 12_000),
    failed('v-5', 30_000, 'ECONNREFUSED', 2),
  ]
  t.same(failureWindows(records, 1000), [
    { startS: 10, endS: 15.5, count: 3, reasons: { '503': 2, timeout: 1 } },
    { startS: 30, endS: 30, count: 1, reasons: { ECONNREFUSED: 1 } },
  ])
  t.same(failureWindows([ok('v-0', 0)]), [], 'no failure, no window')
})

t.test('reconcile: lost are acknowledged votes without a row, duplicated rows applied twice', async (t) => {
  const records = [ok('r-0', 0), ok('r-1', 20), ok('r-2', 40), failed('r-3', 60, 'timeout'), failed('r-4', 80)]
  const rows: VoteRow[] = [
    { voter: 'r-0', vote_id: 'id-r-0', applied: 1 },
    { voter: 'r-2', vote_id: 'id-r-2', applied: 2 },
    { voter: 'r-3', vote_id: 'x', applied: 1 },
  ]
  t.same(reconcile(records, rows), {
    acknowledged: 3,
    stored: 2,
    lost: 1,
    duplicated: 1,
    failed: 2,
    storedUnacknowledged: 1,
    lostVoters: ['r-1'],
    duplicatedVoters: ['r-2'],
  })
})

function reportOf(records: RequestRecord[], rows: VoteRow[], reconciled = true): LoadReport {
  return {
    startedAt: '2026-11-30T05:00:00.000Z',
    target: '10.0.0.10:80',
    rate: 50,
    durationS: 30,
    prefix: 'load-x',
    requests: records.length,
    successRate: successRate(records),
    latencyMs: latencyOf(records),
    failureWindows: failureWindows(records),
    resent: records.filter((r) => r.retried !== undefined).length,
    ...reconcile(records, rows),
    drain: reconciled ? { seconds: 1.2, drained: true } : { seconds: 60, drained: false, error: 'ECONNREFUSED' },
    reconciled,
  }
}

t.test('exit code: 0 when every acknowledged vote is stored once, 2 lost or duplicated, 3 unreconciled', async (t) => {
  const records = [ok('a-0', 0), failed('a-1', 20)]
  t.equal(exitCodeOf(reportOf(records, [{ voter: 'a-0', vote_id: 'id-a-0', applied: 1 }])), 0, 'a failure alone is 0')
  t.equal(exitCodeOf(reportOf(records, [])), 2, 'lost')
  t.equal(exitCodeOf(reportOf(records, [{ voter: 'a-0', vote_id: 'id-a-0', applied: 2 }])), 2, 'duplicated')
  t.equal(exitCodeOf(reportOf(records, [], false)), 3)
})

t.test('the printed report names the counts, the percentiles and each failure window', async (t) => {
  const records = [ok('b-0', 0, 12), failed('b-1', 2000, '503'), failed('b-2', 2100, 'timeout', 5000)]
  const text = reportText(reportOf(records, [{ voter: 'b-0', vote_id: 'id-b-0', applied: 1 }]))
  t.match(text, /3 votes to 10\.0\.0\.10:80 at 50\/s for 30 s/)
  t.match(text, /acknowledged 1 of 3 \(33\.3 %\); latency p50 12 ms, p95 12 ms, p99 12 ms, max 12 ms/)
  t.match(text, /t\+2\.0 s \.\. t\+7\.1 s: 2 failed \((503: 1, timeout: 1|timeout: 1, 503: 1)\)/)
  t.match(text, /acknowledged 1, stored 1, lost 0, duplicated 0, failed 2/)
  t.match(reportText(reportOf(records, [], false)), /NOT reconciled: PostgreSQL could not be read \(ECONNREFUSED\)/)
  t.match(reportText(reportOf(records, [])), /lost voters \(first 1\): b-0/)
})

t.test('--target is HOST:PORT; anything else is refused as bad input', async (t) => {
  t.same(parseTarget('10.213.5.10:8080'), { host: '10.213.5.10', port: 8080 })
  t.same(parseTarget('lb1:80'), { host: 'lb1', port: 80 })
  for (const bad of ['lb1', ':80', 'lb1:0', 'lb1:70000', 'lb1:8o', 'l b1:80', '-x:80', 'lb1:'])
    t.throws(() => parseTarget(bad), InputError, `refuses ${JSON.stringify(bad)}`)
})

function inventoryOf(vars: Record<string, unknown>): Inventory {
  const host: InventoryHost = { name: 'node1', groups: ['haproxy'], vars, origins: {}, connection: {} as never }
  return {
    file: '/x/lab.yml',
    hosts: new Map([['node1', host]]),
    groups: new Map(),
    secrets: {},
    groupHosts: (g) => (g === 'haproxy' ? ['node1'] : []),
    select: () => ['node1'],
  }
}

const balancerVars = {
  address: '10.213.5.10',
  app_http_port: 80,
  app_result_http_port: 8088,
  haproxy_pg_rw_port: 5000,
  postgresql_app_user: 'app',
  postgresql_app_database: 'app',
  postgresql_app_password: 'a-long-generated-secret',
}

t.test('votes go to the first haproxy host, or the VIP when set; PostgreSQL through its write port', async (t) => {
  const endpoints = loadEndpoints(inventoryOf(balancerVars))
  t.same(endpoints.vote, { host: '10.213.5.10', port: 80 })
  t.same(endpoints.results, { host: '10.213.5.10', port: 8088 })
  t.same(endpoints.database, {
    host: '10.213.5.10',
    port: 5000,
    user: 'app',
    database: 'app',
    password: 'a-long-generated-secret',
  })
  const vip = loadEndpoints(inventoryOf({ ...balancerVars, vip_address: '10.213.5.100' }))
  t.equal(vip.vote.host, '10.213.5.100')
  t.equal(vip.database.host, '10.213.5.100')
  t.same(loadEndpoints(inventoryOf(balancerVars), '127.0.0.1:8081').vote, { host: '127.0.0.1', port: 8081 })
  t.throws(() => loadEndpoints(inventoryOf({ ...balancerVars, app_http_port: undefined })), /app_http_port is not set/)
  t.throws(() => loadEndpoints(inventoryOf({ ...balancerVars, vip_address: '10.0.0.1;x' })), /vip_address/)
  const none = { ...inventoryOf(balancerVars), groupHosts: () => [] }
  t.throws(() => loadEndpoints(none), /no haproxy host/)
})

t.test('options out of their bounds are refused, naming the option', async (t) => {
  const good: LoadOptions = {
    inventory: 'x',
    rate: 50,
    durationS: 30,
    timeoutMs: 5000,
    maxInFlight: 200,
    drainTimeoutS: 60,
  }
  t.doesNotThrow(() => checkLoadOptions(good))
  const cases: [Partial<LoadOptions>, RegExp][] = [
    [{ rate: 0 }, /--rate must be between 0.1 and 1000/],
    [{ rate: 5000 }, /--rate/],
    [{ durationS: 7200 }, /--duration/],
    [{ timeoutMs: 10 }, /--timeout/],
    [{ maxInFlight: 0 }, /--max-in-flight/],
    [{ maxInFlight: 2.5 }, /--max-in-flight must be a whole number/],
    [{ drainTimeoutS: -1 }, /--drain/],
    [{ rate: Number.NaN }, /--rate/],
  ]
  for (const [change, message] of cases) t.throws(() => checkLoadOptions({ ...good, ...change }), message)
})

t.test('a run prefix is time-stamped, unique and safe in a prefix match', async (t) => {
  const a = runPrefix(new Date('2026-11-30T05:29:00.123Z'))
  t.match(a, /^load-20261130t052900-[0-9a-f]{4}$/)
  t.not(runPrefix(), runPrefix())
})
