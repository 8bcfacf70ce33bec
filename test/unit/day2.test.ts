/**
 * The day-2 playbooks' decisions on a scripted stack: what status judges unhealthy, the order of a
 * rolling restart, its refusal to start on an unhealthy stack (touching nothing), its stop at the
 * first member that does not come back, the switchover's choice or refusal of a target, and the Redis
 * handover's commands to the old primary.
 */
import t from 'tap'
import { stackProblems } from '../../playbooks/day2/health.ts'
import { chosenComponents, describe, planRoll, roll, rollingRestart } from '../../playbooks/day2/rolling.ts'
import { day2 } from '../../playbooks/day2/fleet.ts'
import { componentMembers, limitsOf, readStack } from '../../playbooks/day2/stack-state.ts'
import { statusReport, statusText } from '../../playbooks/day2/status-report.ts'
import { postgresTarget, redisTarget, switchPostgres, switchRedis } from '../../playbooks/day2/switch.ts'
import { longestPause } from '../../playbooks/day2/writer.ts'
import { parseShowStat } from '../../playbooks/day2/readers.ts'
import type { ScriptedConnection } from '../fixtures/scripted.ts'
import { PING_OFF_PERIOD } from '../../playbooks/day2/redis-handover.ts'
import { ADDRESS, healthyState, worldFleet, type WorldState } from './day2-world.ts'

async function status(world: WorldState) {
  const { fleet } = await worldFleet(world)
  const state = await readStack(fleet)
  return { fleet, state, report: statusReport(state, stackProblems(state, componentMembers(fleet), limitsOf(fleet))) }
}

/** The systemctl commands every scripted host ran, in the order they ran across hosts. */
const systemctlCalls = (conns: Map<string, ScriptedConnection>) =>
  [...conns]
    .flatMap(([host, c]) => c.calls.map((call) => ({ host, ...call })))
    .filter((call) => call.kind === 'run' && call.target.includes('systemctl'))
    .sort((a, b) => a.seq - b.seq)
    .map((call) => `${call.host}: ${call.target}`)

t.test('status judges a healthy stack healthy and names every primary', async (t) => {
  const { report } = await status(healthyState())
  t.same(Object.values(report.problems).flat(), [])
  t.equal(report.healthy, true)
  t.equal(report.postgres.leader, 'node1')
  t.equal(report.redis.primary, 'node1')
  t.same(
    report.etcd.map((e) => e.leader),
    [false, true, false],
    'etcd leader read from uint64 ids',
  )
  t.match(statusText(report, false), /HEALTHY/)
  t.notMatch(statusText(report, false), /\x1b\[/, 'plain text when not coloured')
})

t.test('status names each kind of trouble', async (t) => {
  const world = healthyState()
  world.pg.node3!.patroni = false
  world.pg.node2!.lag = 5_000_000
  world.sentinelNames.node3 = 'node2'
  world.etcdHealthy.node2 = false
  const { report } = await status(world)
  t.equal(report.healthy, false)
  t.match(report.problems.postgres.join('\n'), /node3 is stopped/)
  t.match(report.problems.postgres.join('\n'), /node3 does not stream/)
  t.match(report.problems.postgres.join('\n'), /node2 lags 5000000 bytes/)
  t.match(report.problems.sentinel.join('\n'), /Sentinels disagree: .*node3 names node2/)
  t.match(report.problems.etcd.join('\n'), /etcd on node2 is not healthy/)
})

t.test('a rolling restart goes member by member: followers and replicas first, primaries after a switch', async (t) => {
  const world = healthyState()
  const { fleet } = await worldFleet(world, [], { app: ['node1', 'node2'], balancers: ['node1', 'node2'], vip: true })
  const state = await readStack(fleet)
  const steps = planRoll(state, componentMembers(fleet), chosenComponents(undefined), () => true)
  t.same(steps.map(describe), [
    'etcd: restart etcd on node1 (follower)',
    'etcd: restart etcd on node3 (follower)',
    'etcd: restart etcd on node2 (leader)',
    'postgres: restart patroni on node3 (replica)',
    'postgres: restart patroni on node2 (replica)',
    'postgres: switch the primary away from node1',
    'postgres: restart patroni on node1 (old primary)',
    'redis: restart redis-server on node2 (replica)',
    'redis: restart redis-server on node3 (replica)',
    'redis: switch the primary away from node1',
    'redis: restart redis-server on node1 (old primary)',
    'sentinel: restart redis-sentinel on node1 (sentinel)',
    'sentinel: restart redis-sentinel on node2 (sentinel)',
    'sentinel: restart redis-sentinel on node3 (sentinel)',
    'app: drain node1 at HAProxy, restart hastack-vote, hastack-worker, hastack-result, make it ready',
    'app: drain node2 at HAProxy, restart hastack-vote, hastack-worker, hastack-result, make it ready',
    'haproxy: check and reload haproxy on node2',
    'haproxy: move the VIP away from node1, check and reload haproxy on node1',
  ])
  const limited = planRoll(state, componentMembers(fleet), ['postgres'], (h) => h !== 'node1')
  t.same(limited.map(describe), [
    'postgres: restart patroni on node3 (replica)',
    'postgres: restart patroni on node2 (replica)',
  ])
  t.throws(() => chosenComponents(['postgres,mysql']), /unknown component mysql/)
})

t.test('the whole roll runs on a healthy stack and leaves new primaries', async (t) => {
  const world = healthyState()
  const { fleet, conns } = await worldFleet(world)
  const state = await readStack(fleet)
  const steps = planRoll(state, componentMembers(fleet), ['postgres', 'redis'], () => true)
  const result = await roll(fleet, state, steps, limitsOf(fleet), 5_000)
  t.equal(result.stopped, undefined)
  t.equal(result.done.length, steps.length)
  t.equal(world.pgLeader, 'node3', 'switched over to the replica with the least lag')
  t.not(world.redisPrimary, 'node1')
  t.same(
    systemctlCalls(conns).filter((c) => c.includes('patroni')),
    ['node3: systemctl restart patroni', 'node2: systemctl restart patroni', 'node1: systemctl restart patroni'],
  )
})

t.test('with one replica unhealthy the rolling restart refuses to start, says why and touches nothing', async (t) => {
  const world = healthyState()
  world.pg.node3!.patroni = false
  const { fleet, conns } = await worldFleet(world)
  const state = await readStack(fleet)
  const steps = planRoll(state, componentMembers(fleet), chosenComponents(undefined), () => true)
  await t.rejects(roll(fleet, state, steps, limitsOf(fleet), 5_000), {
    name: 'Refused',
    message: /not healthy, nothing was touched: .*node3/,
  })
  t.same(systemctlCalls(conns), [], 'no unit restarted')
  const report = await rollingRestart(fleet, ['postgres'], () => true, 5_000, false)
  t.match(report.refused, /node3: Patroni's REST API at http:\/\/10.0.0.13:8008 does not answer/)
  t.same(report.done, [])
})

t.test('a day-2 playbook refuses bad input with exit 1 before any connection', async (t) => {
  const { file } = await worldFleet(healthyState())
  let connected = false
  const spec = {
    name: 'status',
    script: import.meta.url,
    changes: false,
    options: {},
    run: async () => ((connected = true), { code: 0, report: {} }),
  }
  t.equal(await day2({ ...spec, argv: ['-i', file, '--jsn', 'x'] }), 1, 'an unknown option')
  t.equal(await day2({ ...spec, argv: [] }), 1, 'no inventory')
  t.equal(await day2({ ...spec, argv: ['-i', file, '-e', 'redis_port=seventy'] }), 1, 'a bad variable')
  t.equal(connected, false)
})

t.test('the roll stops at the first member that does not come back healthy and touches nothing further', async (t) => {
  const world = healthyState()
  world.onRestart = (host, unit, w) => {
    if (host === 'node3' && unit === 'patroni') w.pg.node3!.state = 'start failed'
  }
  const { fleet, conns } = await worldFleet(world)
  const state = await readStack(fleet)
  const steps = planRoll(state, componentMembers(fleet), ['postgres', 'redis'], () => true)
  const result = await roll(fleet, state, steps, limitsOf(fleet), 2_500)
  t.equal(result.done.length, 0)
  t.match(result.stopped?.reason ?? '', /node3 is start failed/)
  t.same(systemctlCalls(conns), ['node3: systemctl restart patroni'])
  t.equal(world.pgLeader, 'node1', 'no switchover')
})

t.test('a switchover target must be a healthy replica within the lag limit', async (t) => {
  const world = healthyState()
  world.pg.node2!.lag = 2_000_000
  world.redisLinkUp.node3 = false
  const { fleet, state } = await status(world)
  const limits = limitsOf(fleet)
  t.same(postgresTarget(state, limits), { from: 'node1', to: 'node3' })
  t.throws(() => postgresTarget(state, limits, 'node2'), { name: 'Refused' }, 'a lagging replica is refused')
  t.throws(() => postgresTarget(state, limits, 'node2'), /node2 is not a healthy replica within 1048576 bytes/)
  t.throws(() => postgresTarget(state, limits, 'node1'), /node1 is already the leader/)
  t.throws(() => redisTarget(state, limits, 'node3'), /node3 is not linked/)
  t.same(redisTarget(state, limits, 'node2'), { from: 'node1', to: 'node2' })
})

t.test('switchovers move the primary and wait until HAProxy routes to it', async (t) => {
  const world = healthyState()
  const { fleet, conns } = await worldFleet(world)
  const limits = limitsOf(fleet)
  const state = await switchPostgres(fleet, limits, { from: 'node1', to: 'node2' }, 5_000)
  t.equal(world.pgLeader, 'node2')
  t.same(world.drainedAtSwitchover, [['node1']], 'the old primary took no new connection during the switchover')
  t.same(world.pgWriteDrained, [], 'and is ready again afterwards')
  t.same(state.haproxy[0]?.backends?.postgres_rw?.up, ['node2'])
  await switchRedis(fleet, limits, state, { from: 'node1', to: 'node3' }, 5_000)
  t.equal(world.redisPrimary, 'node3', 'the chosen replica won')
  t.same(world.priority, { node1: 100, node2: 100, node3: 100 }, 'priorities restored')
  const secrets = [fleet.vars('node1').patroni_restapi_password, fleet.vars('node1').redis_password].map(String)
  const commands = [...conns.values()].flatMap((c) => c.commands)
  t.ok(
    commands.some((c) => c === 'curl -K -'),
    'the switchover went through curl',
  )
  t.same(
    commands.filter((c) => secrets.some((s) => c.includes(s))),
    [],
    'credentials never on a command line',
  )
})

/** The old primary's handover commands: what node1 ran apart from the readers' INFO and priority reads. */
const handoverCommands = (world: WorldState) =>
  world.redisRan
    .filter((l) => l.startsWith('node1: ') && !/^node1: INFO|replica-priority$/.test(l))
    .map((l) => l.slice('node1: '.length))

t.test(
  "a Redis switchover holds the old primary's PINGs back while writes wait, then makes it a replica",
  async (t) => {
    const world = healthyState()
    const { fleet, state } = await status(world)
    await switchRedis(fleet, limitsOf(fleet), state, { from: 'node1' }, 5_000)
    t.equal(world.redisPrimary, 'node2', "the Sentinels' choice won")
    t.same(handoverCommands(world), [
      'CONFIG GET repl-ping-replica-period',
      `CONFIG SET repl-ping-replica-period ${PING_OFF_PERIOD}`,
      'CLIENT PAUSE 10000 WRITE',
      `REPLICAOF ${ADDRESS.node2} 6379`,
      'CONFIG SET repl-ping-replica-period 10',
      'CONFIG REWRITE',
      'CLIENT KILL TYPE normal',
      'CLIENT UNPAUSE',
    ])
    t.same(world.pingPeriod, { node1: 10, node2: 10, node3: 10 }, 'every PING period as it was')
  },
)

t.test('a Redis switchover the Sentinels do not agree on leaves the old primary the primary, unpaused', async (t) => {
  for (const [named, reason] of [
    ['node1', /timed out .* waiting for the Sentinel on node3 to name the new primary/],
    ['node3', /the Sentinels name different primaries/],
  ] as const) {
    const world = healthyState()
    world.sentinelNames.node3 = named
    const { fleet, state } = await status(world)
    await t.rejects(switchRedis(fleet, limitsOf(fleet), state, { from: 'node1' }, 600), reason)
    t.same(
      handoverCommands(world).slice(3),
      ['CONFIG SET repl-ping-replica-period 10', 'CLIENT UNPAUSE'],
      `Sentinel on node3 naming ${named}: no REPLICAOF, no client cut, PINGs back, writes go on`,
    )
  }
})

t.test('a refused PostgreSQL switchover leaves the old primary ready in HAProxy', async (t) => {
  const world = healthyState()
  const { fleet } = await worldFleet(world)
  await t.rejects(
    switchPostgres(fleet, limitsOf(fleet), { from: 'node2', to: 'node3' }, 5_000),
    /Patroni refused the switchover \(412\)/,
  )
  t.same(world.drainedAtSwitchover, [['node2']])
  t.same(world.pgWriteDrained, [], 'ready again')
  t.equal(world.pgLeader, 'node1', 'nothing switched')
})

t.test('the write pause is the longest time without an acknowledged write', async (t) => {
  t.equal(longestPause({ attempts: 5, acks: [100, 200, 1700, 1800], failures: 1, endedMs: 1900 }), 1500)
  t.equal(longestPause({ attempts: 3, acks: [], failures: 3, endedMs: 3000 }), 3000)
})

t.test('HAProxy statistics: servers up and down per backend, frontends and backends left out', async (t) => {
  const csv = '# pxname,svname,status\npostgres_rw,FRONTEND,OPEN\npostgres_rw,db1,UP\npostgres_rw,db2,DOWN\n'
  t.same(parseShowStat('lb1', csv).backends, { postgres_rw: { up: ['db1'], down: ['db2'] } })
  t.match(parseShowStat('lb1', 'Permission denied').error, /no statistics/)
})
