/**
 * drill.ts's parts that need no lab: its options, the refusal of an inventory the lab does not run
 * (before anything connects), the choice of the victim from a reading of the stack, the write gap and
 * the median/worst over repetitions, the exit code, and the picture (a Vega-Lite spec rendered to SVG).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { StackState } from '../../playbooks/day2/stack-state.ts'
import { drillChartSpec } from '../../playbooks/drill/chart.ts'
import { drillOptions } from '../../playbooks/drill/options.ts'
import { drillExitCode, summarize, type DrillReport, type RepetitionReport } from '../../playbooks/drill/report.ts'
import { findVictim } from '../../playbooks/drill/targets.ts'
import { spread, widestGap, writeGap, type Sample } from '../../playbooks/drill/timeline.ts'
import { renderSvg } from '../../scripts/pictures/vega-svg.ts'

const repo = resolve(import.meta.dirname, '../..')

t.test('options: defaults, and every bad value refused by name', async (t) => {
  const o = drillOptions({ fault: 'kill', target: 'postgres-primary' })
  t.match(o, { durationS: 45, faultAtS: 5, repeat: 1, rate: 30, out: 'reports' })
  t.equal(drillOptions({ fault: 'freeze', target: 'etcd-member' }).durationS, 25)
  t.throws(() => drillOptions({ fault: 'nuke', target: 'lb' }), /--fault must be one of kill, stop, freeze, partition/)
  t.throws(() => drillOptions({ fault: 'kill' }), /--target is required/)
  t.throws(() => drillOptions({ fault: 'kill', target: 'lb', duration: 8 }), /--duration must be between 15 and 600/)
  t.throws(() => drillOptions({ fault: 'kill', target: 'lb', repeat: 2.5 }), /--repeat must be a whole number/)
  t.throws(() => drillOptions({ fault: 'kill', target: 'lb', repeat: 50 }), /--repeat must be between 1 and 20/)
  t.throws(() => drillOptions({ fault: 'kill', target: 'lb', on: 'node3' }), /--on moves a primary/)
  t.throws(() => drillOptions({ fault: 'kill', target: 'redis-primary', on: '-x' }), /--on must be a host name/)
})

t.test('refuses an inventory the lab does not run with exit 1, before any connection', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-drill-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const inventory = join(dir, 'prod-drill-test.yml')
  // 192.0.2.0/24 is TEST-NET-1: nothing answers there, and nothing may be tried.
  writeFileSync(inventory, 'all:\n  vars: { ssh_user: root }\n  hosts:\n    db1: { address: 192.0.2.10 }\n')
  const args = ['--import=tsx', 'playbooks/drill.ts', '-i', inventory, '--fault', 'kill', '--target', 'lb']
  const started = Date.now()
  const r = spawnSync('node', args, { cwd: repo, encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 1, r.stderr)
  t.match(r.stderr, /runs only against a lab inventory: no lab "prod-drill-test" is up/)
  t.ok(Date.now() - started < 30_000, 'refused at once (no connection attempted)')
  const bad = spawnSync('node', [...args.slice(0, 4), '--fault', 'kill', '--target', 'moon'], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /--target must be one of/)
})

/** A reading of three colocated hosts: the Patroni leader, the Redis primary and the VIP holder given. */
function reading(pgLeader: string, redisPrimary: string, vipHolder: string): StackState {
  const hosts = ['node1', 'node2', 'node3']
  const members = hosts.map((name) => ({ name, role: name === pgLeader ? 'leader' : 'replica', state: 'running' }))
  return {
    readAt: '',
    addresses: { node1: '10.0.0.11', node2: '10.0.0.12', node3: '10.0.0.13' },
    unreachable: {},
    patroni: hosts.map((host) => ({ host, members, replication: [] })),
    etcd: [],
    redis: hosts.map((host) => ({ host, role: host === redisPrimary ? 'master' : 'slave' })),
    sentinels: [],
    haproxy: [],
    vip: { address: '10.0.0.9', holders: [vipHolder] },
    redisMasterName: 'hastack',
    sentinelQuorum: 2,
  } as unknown as StackState
}

const GROUPS: Record<string, string[]> = {
  etcd: ['node1', 'node2', 'node3'],
  haproxy: ['node1', 'node2'],
  app: ['node1', 'node2'],
}
const members = (group: string) => GROUPS[group] ?? []

t.test('the victim is read from the live stack', async (t) => {
  const state = reading('node2', 'node3', 'node1')
  t.same(findVictim('postgres-primary', state, members), { host: 'node2', why: 'the Patroni leader' })
  t.equal(findVictim('redis-primary', state, members).host, 'node3')
  t.same(findVictim('lb', state, members), { host: 'node1', why: 'holds the VIP 10.0.0.9' })
  t.equal(findVictim('app', state, members).host, 'node2', 'an app host other than the VIP holder')
  t.equal(findVictim('etcd-member', reading('node1', 'node1', 'node1'), members).host, 'node2', 'one with no primary')
  const noLeader = reading('nobody', 'node3', 'node1')
  t.throws(() => findVictim('postgres-primary', noLeader, members), /no Patroni leader in the live stack/)
  const twoHolders = { ...state, vip: { address: '10.0.0.9', holders: ['node1', 'node2'] } }
  t.throws(() => findVictim('lb', twoHolders, members), /no single VIP holder/)
})

/** Writes every 100 ms from 0 to 10 s, none acknowledged between `from` and `to` (ms). */
function stream(kind: Sample['stream'], from: number, to: number): Sample[] {
  const out: Sample[] = []
  for (let ms = 0; ms < 10_000; ms += 100) {
    const ok = ms < from || ms >= to
    out.push({ stream: kind, startMs: ms, endMs: ms + 5, ok, ...(ok ? {} : { reason: '503' }) })
  }
  return out
}

t.test('the write gap runs from the last acknowledgement before the fault to the next one', async (t) => {
  const gap = writeGap(stream('vote', 3000, 6500), 'vote', 3050, 10_000)
  t.same(gap, { stream: 'vote', gapMs: 3600, fromMs: 2905, toMs: 6505, recovered: true })
  t.equal(writeGap(stream('pg', 0, 0), 'pg', 3050, 10_000).gapMs, 100, 'no outage: one period')
  const never = writeGap(stream('pg', 3000, 99_999), 'pg', 3050, 10_000)
  t.match(never, { recovered: false, fromMs: 2905, toMs: 10_000 }, 'not back by the end: open to the end')
  const both = [...stream('vote', 3000, 4000), ...stream('pg', 3000, 8000)]
  const widest = widestGap([writeGap(both, 'vote', 3050, 10_000), writeGap(both, 'pg', 3050, 10_000)])
  t.equal(widest.stream, 'pg', 'the wider of the two streams')
})

t.test('median and worst over repetitions, leaving out what was not measured', async (t) => {
  t.same(spread([3, 1, 2]), { median: 2, worst: 3 })
  t.same(spread([4, 1, undefined, 2, 3]), { median: 2.5, worst: 4 })
  t.equal(spread([undefined]), undefined)
})

function repetition(fields: Partial<RepetitionReport>): RepetitionReport {
  return { recovered: true, lost: 0, duplicated: 0, failed: 0, recoverS: 1, ...fields } as RepetitionReport
}

t.test('exit 0 only when every repetition recovered with nothing lost or applied twice', async (t) => {
  const report = (reps: RepetitionReport[]) => ({ repetitions: reps, summary: summarize(reps) }) as DrillReport
  t.equal(drillExitCode(report([repetition({}), repetition({ failed: 40 })])), 0, 'failed requests alone are fine')
  t.equal(drillExitCode(report([repetition({}), repetition({ lost: 1 })])), 2)
  t.equal(drillExitCode(report([repetition({ duplicated: 1 })])), 2)
  t.equal(drillExitCode(report([repetition({ recovered: false })])), 2)
  t.equal(drillExitCode(report([])), 2, 'no repetition ran')
})

t.test('the picture: outcomes and latency over time, with the fault, detection and recovery marked', async (t) => {
  const samples = [...stream('vote', 3000, 6500), ...stream('pg', 0, 0)]
  const gap = writeGap(samples, 'vote', 3050, 10_000)
  const spec = drillChartSpec(samples, { title: 'kill redis-primary (node3)', faultMs: 3050, detectedMs: 5200, gap })
  const svg = await renderSvg(spec)
  t.match(svg, /^<svg/)
  for (const label of ['fault', 'detected', 'writes again', 'kill redis-primary (node3)', 'vote failed'])
    t.ok(svg.includes(label), `shows "${label}"`)
})
