/**
 * The rolling restart's client-facing steps and whole-host modes on a scripted stack shaped like
 * lab-small (app and HAProxy on node1 and node2, the VIP): an app host drained at every HAProxy
 * before its programs restart; the VIP moved away (its clients' kept connections closed first)
 * before its holder's HAProxy is checked and reloaded; `--reboot` and `--upgrade` host by host,
 * each host emptied first; the Redis switch pausing writes around SENTINEL FAILOVER; and the pure
 * parts (apt's list, the pause's timeline).
 */
import t from 'tap'
import { describe, planHosts, planRoll, roll, rollingRestart } from '../../playbooks/day2/rolling.ts'
import { componentMembers, limitsOf, readStack } from '../../playbooks/day2/stack-state.ts'
import { switchRedis } from '../../playbooks/day2/switch.ts'
import { majorVersion, parsePending, splitByMajor, unitsToRestart } from '../../playbooks/day2/upgrades.ts'
import { timelineLines } from '../../playbooks/day2/writer.ts'
import type { ScriptedConnection } from '../fixtures/scripted.ts'
import { WRITER_SUMMARY, healthyState, worldFleet, type WorldState } from './day2-world.ts'

const LAB_SMALL = { app: ['node1', 'node2'], balancers: ['node1', 'node2'], vip: true }

/** The commands the scripted hosts ran that match `pattern`, in the order they ran across hosts. */
function ran(conns: Map<string, ScriptedConnection>, pattern: RegExp): string[] {
  return [...conns]
    .flatMap(([host, c]) => c.calls.map((call) => ({ host, ...call })))
    .filter((call) => call.kind === 'run' && pattern.test(call.target))
    .sort((a, b) => a.seq - b.seq)
    .map((call) => `${call.host}: ${call.target.replace(/^python3 -c .* ('[^']*')$/s, 'admin $1')}`)
}

async function labSmall(world: WorldState = healthyState()) {
  const lines: string[] = []
  const { fleet, conns } = await worldFleet(world, lines, LAB_SMALL)
  return { world, fleet, conns, lines, state: await readStack(fleet) }
}

t.test('an app host is drained at every HAProxy before its programs restart and made ready after', async (t) => {
  const { world, fleet, conns, state } = await labSmall()
  const steps = planRoll(state, componentMembers(fleet), ['app'], (h) => h === 'node2')
  const result = await roll(fleet, state, steps, limitsOf(fleet), 5_000)
  t.equal(result.stopped, undefined, 'the roll ends healthy')
  t.same(ran(conns, /set server|systemctl/), [
    "node1: admin 'set server app_vote/node2 state drain'",
    "node1: admin 'set server app_result/node2 state drain'",
    "node2: admin 'set server app_vote/node2 state drain'",
    "node2: admin 'set server app_result/node2 state drain'",
    'node2: systemctl restart hastack-vote hastack-worker hastack-result',
    "node1: admin 'set server app_vote/node2 state ready'",
    "node1: admin 'set server app_result/node2 state ready'",
    "node2: admin 'set server app_vote/node2 state ready'",
    "node2: admin 'set server app_result/node2 state ready'",
  ])
  t.equal(world.app.node2?.state, 'UP')
})

t.test('the VIP holder is reloaded last, the VIP moved to its peer first, each config checked first', async (t) => {
  const { world, fleet, conns, state } = await labSmall()
  const steps = planRoll(state, componentMembers(fleet), ['haproxy'], () => true)
  const result = await roll(fleet, state, steps, limitsOf(fleet), 5_000, 10)
  t.equal(result.stopped, undefined)
  t.same(ran(conns, /haproxy -c|systemctl|acl/), [
    'node2: haproxy -c -f /etc/haproxy/haproxy.cfg',
    'node2: systemctl reload haproxy',
    "node1: admin 'add acl #9101 0.0.0.0/0'",
    "node1: admin 'add acl #9102 0.0.0.0/0'",
    'node1: systemctl stop keepalived',
    'node1: haproxy -c -f /etc/haproxy/haproxy.cfg',
    'node1: systemctl reload haproxy',
    'node1: systemctl start keepalived',
    "node1: admin 'del acl #9101 0.0.0.0/0'",
    "node1: admin 'del acl #9102 0.0.0.0/0'",
  ])
  t.equal(world.vipHolder, 'node2', 'the VIP stays with the peer (no preemption)')
})

t.test('a configuration haproxy -c refuses stops the roll before any reload', async (t) => {
  const { fleet, conns, state } = await labSmall()
  conns.get('node2')!.on(/^haproxy -c/, { code: 1, stderr: "[ALERT] parsing: unknown keyword 'bind2'" })
  const steps = planRoll(state, componentMembers(fleet), ['haproxy'], () => true)
  const result = await roll(fleet, state, steps, limitsOf(fleet), 5_000)
  t.match(result.stopped?.reason, /haproxy -c refuses .* on node2, not reloaded: .*bind2/)
  t.same(ran(conns, /systemctl/), [], 'nothing reloaded, the VIP not moved')
})

t.test('--reboot goes host by host, the host holding the primaries and the VIP last, emptied first', async (t) => {
  const { world, fleet, conns, state } = await labSmall()
  const steps = planHosts(state, componentMembers(fleet), ['etcd', 'postgres', 'app', 'haproxy'], () => true, 'reboot')
  t.same(steps.map(describe), [
    'node2: reboot (first moving away: app traffic)',
    'node3: reboot',
    'node1: reboot (first moving away: the PostgreSQL leader, the Redis primary, the VIP, app traffic)',
  ])
  const result = await roll(fleet, state, steps, limitsOf(fleet), 5_000, 10)
  t.equal(result.stopped, undefined)
  t.same(world.boots, { node1: 2, node2: 2, node3: 2 }, 'each host rebooted once')
  t.not(world.pgLeader, 'node1', 'the leader moved before node1 went down')
  t.not(world.redisPrimary, 'node1', 'the Redis primary too')
  t.equal(world.vipHolder, 'node2', 'and the VIP')
  t.same(
    result.pauses.map((p) => [p.component, p.from, p.pauseMs]),
    [
      ['postgres', 'node1', 1200],
      ['redis', 'node1', 1200],
    ],
    'each switchover measured by the writer',
  )
  t.same(ran(conns, /systemctl (reboot|stop|start)/), [
    'node2: systemctl reboot',
    'node3: systemctl reboot',
    'node1: systemctl stop keepalived',
    'node1: systemctl reboot',
    'node1: systemctl start keepalived',
  ])
})

t.test('--upgrade applies minor updates only, restarts what changed and says "0 pending"', async (t) => {
  const world = healthyState()
  world.pending.node2 = [
    'Inst redis-server [5:7.0.15-1~deb12u1] (5:7.0.15-1~deb12u3 Debian-Security:12/stable-security [amd64])',
    'Inst postgresql-15 [15.8-0+deb12u1] (15.10-0+deb12u1 Debian:12.8/stable [amd64]) []',
    'Inst haproxy [2.6.12-1+deb12u1] (3.0.5-1 bookworm-backports [amd64])',
  ]
  const { fleet, conns, lines, state } = await labSmall(world)
  const steps = planHosts(state, componentMembers(fleet), ['postgres', 'redis'], () => true, 'upgrade')
  const report = await rollingRestart(fleet, ['postgres', 'redis'], () => true, 5_000, false, 'upgrade')
  t.equal(report.stopped, undefined)
  t.equal(report.done.length, steps.length)
  t.ok(lines.includes('  node1: 0 pending'), 'a host without updates says so')
  t.ok(lines.some((l) => /node2: haproxy 2\.6\.12-1\+deb12u1 → 3\.0\.5-1 changes the major version/.test(l)))
  const installs = ran(conns, /only-upgrade/)
  t.equal(installs.length, 1, 'one install, on node2')
  t.match(installs[0], /^node2: .*install --only-upgrade redis-server postgresql-15 2>&1/s)
  t.match(installs[0], /policy-rc\.d/, 'with service starts denied')
  t.same(ran(conns, /systemctl/), ['node2: systemctl restart patroni redis-server'], 'then the changed units')
  t.equal(world.pgLeader, 'node1', 'no switchover for a host with nothing pending')
})

t.test('a Redis switchover pauses writes, lets the replicas catch up, then frees the old clients', async (t) => {
  const { fleet, conns, state } = await labSmall()
  await switchRedis(fleet, limitsOf(fleet), state, { from: 'node1' }, 5_000)
  const sent = [...conns.values()]
    .flatMap((c) => c.calls)
    .filter((c) => c.kind === 'run' && /^'?sh'? '?-s'?$/.test(c.target))
    .sort((a, b) => a.seq - b.seq)
    .flatMap((c) => [
      ...String(c.options && 'stdin' in c.options ? c.options.stdin : '').matchAll(/^"(CLIENT|SENTINEL)" "(\w+)"/gm),
    ])
    .map((m) => `${m[1]} ${m[2]}`)
    .filter((c) => c !== 'SENTINEL GET-MASTER-ADDR-BY-NAME' && c !== 'SENTINEL MASTER')
  t.same(sent, ['CLIENT PAUSE', 'SENTINEL FAILOVER', 'CLIENT KILL', 'CLIENT UNPAUSE'])
})

t.test("a roll's switchover reading carries where its pause went when the writer watched", async (t) => {
  const { fleet, conns, state } = await labSmall()
  const events = [
    { ms: 250, what: 'sentinel node1 names', value: 'node2' },
    { ms: 1450, what: 'haproxy redis_node2 up', value: 'node2_via_node1,node2_via_node2,node2_via_node3' },
  ]
  conns.get('node1')!.on(/^python3 -c .*max_seconds/s, { stdout: JSON.stringify({ ...WRITER_SUMMARY, events }) + '\n' })
  const steps = planRoll(state, componentMembers(fleet), ['redis'], () => true)
  const result = await roll(fleet, state, steps, limitsOf(fleet), 5_000)
  t.equal(result.stopped, undefined)
  t.same(result.pauses[0]?.timeline, [
    '-0.05 s sentinel node1 names: node2',
    '+0.00 s the last write acknowledged before the pause',
    '+1.15 s haproxy redis_node2 up: node2_via_node1,node2_via_node2,node2_via_node3',
    '+1.20 s the first write acknowledged after it',
  ])
})

t.test("apt's pending list, the major version and the units an update restarts", async (t) => {
  const pending = parsePending(
    [
      'Reading package lists...',
      'Inst libssl3 [3.0.14-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])',
      'Inst etcd-server [3.4.23-4+b5] (3.4.23-4+b6 Debian:12.8/stable [amd64])',
      'Conf libssl3 (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])',
    ].join('\n'),
  )
  t.same(pending, [
    { name: 'libssl3', from: '3.0.14-1~deb12u1', to: '3.0.15-1~deb12u1' },
    { name: 'etcd-server', from: '3.4.23-4+b5', to: '3.4.23-4+b6' },
  ])
  t.equal(majorVersion('5:7.0.15-1~deb12u1'), '7')
  t.equal(majorVersion('15.10-0+deb12u1'), '15')
  t.same(splitByMajor([{ name: 'x', from: '1.9', to: '2.0' }]).major.length, 1)
  const dated = [
    { name: 'tzdata', from: '2026b-0+deb12u1', to: '2026f-0+deb12u1' },
    { name: 'ca-certificates', from: '20230311+deb12u1', to: '20250419~deb12u2' },
  ]
  t.same(splitByMajor(dated).minor, dated, 'date-based versions have no major version')
  const units = ['etcd', 'patroni', 'redis-server', 'haproxy']
  t.same(unitsToRestart(['etcd-server'], units), ['etcd'])
  t.same(unitsToRestart(['libssl3'], units), units, 'a shared library restarts every unit')
  t.same(unitsToRestart(['vim'], units), [], 'an unrelated package restarts nothing')
  t.same(unitsToRestart(['redis-tools', 'redis-sentinel'], ['redis-server', 'redis-sentinel']), [
    'redis-server',
    'redis-sentinel',
  ])
})

t.test("the pause's timeline: the watcher's changes around the pause, on the writer's clock", async (t) => {
  const lines = timelineLines({
    attempts: 40,
    acks: [100, 1000, 3200, 3300],
    failures: 5,
    endedMs: 3400,
    events: [
      { ms: 50, what: 'redis node2', value: 'slave of node1 link up' },
      { ms: 1400, what: 'redis node2', value: 'master good-replicas=0' },
      { ms: 2100, what: 'sentinel node1 names', value: 'node2' },
    ],
  })
  t.same(lines, [
    '-0.95 s redis node2: slave of node1 link up',
    '+0.00 s the last write acknowledged before the pause',
    '+0.40 s redis node2: master good-replicas=0',
    '+1.10 s sentinel node1 names: node2',
    '+2.20 s the first write acknowledged after it',
  ])
})
