/**
 * The Redis switchover's last step on a scripted stack shaped like lab-small (HAProxy on node1 and
 * node2): once every Sentinel names the new primary, every HAProxy is told at once over its admin
 * socket to take the old primary's entries down and then the new one's up, instead of waiting for its
 * checks' `rise`; a HAProxy that does not answer, or a new primary not yet master, only warns.
 */
import t from 'tap'
import { forceServerHealth } from '../../playbooks/day2/balancers.ts'
import { limitsOf, readStack } from '../../playbooks/day2/stack-state.ts'
import { switchRedis } from '../../playbooks/day2/switch.ts'
import { routeWritesTo } from '../../playbooks/day2/redis-handover.ts'
import { HOSTS, healthyState, worldFleet } from './day2-world.ts'

const LAB_SMALL = { balancers: ['node1', 'node2'] }

/** The one admin line a HAProxy host gets: `host: ` then each entry of `from` down, then each of `to` up. */
const switchLine = (balancer: string, from: string, to?: string) => {
  const entries = (host: string, health: string) => HOSTS.map((s) => `redis_${host}/${host}_via_${s} ${health}`)
  return `${balancer}: ${[...entries(from, 'down'), ...(to ? entries(to, 'up') : [])].join('; ')}`
}

t.test("every HAProxy is told in one line: the old primary's entries down first, then the new one's up", async (t) => {
  const world = healthyState()
  const { fleet } = await worldFleet(world, [], LAB_SMALL)
  await switchRedis(fleet, limitsOf(fleet), await readStack(fleet), { from: 'node1', to: 'node3' }, 5_000)
  t.equal(world.redisPrimary, 'node3')
  t.same([...world.healthForced].sort(), [switchLine('node1', 'node1', 'node3'), switchLine('node2', 'node1', 'node3')])
})

t.test('HAProxy is told only once every Sentinel names the new primary and it answers role:master', async (t) => {
  const world = healthyState()
  const { fleet, conns } = await worldFleet(world, [], LAB_SMALL)
  const named: string[] = []
  for (const balancer of LAB_SMALL.balancers)
    conns.get(balancer)!.on(/'set server redis_/, () => {
      named.push([...new Set(HOSTS.map((s) => world.sentinelNames[s] ?? world.redisPrimary))].join(', '))
      return { stdout: '\n' }
    })
  await switchRedis(fleet, limitsOf(fleet), await readStack(fleet), { from: 'node1' }, 5_000)
  t.same(named, ['node2', 'node2'], 'every Sentinel named node2 when each HAProxy was told')
  const calls = [...conns.values()].flatMap((c) => c.calls.map((call) => ({ host: c.host, ...call })))
  const stdin = (call: (typeof calls)[number]) =>
    String(call.options && 'stdin' in call.options ? call.options.stdin : '')
  const failover = calls.find((c) => stdin(c).includes('"SENTINEL" "FAILOVER"'))!.seq
  const told = Math.min(...calls.filter((c) => c.target.includes('set server redis_')).map((c) => c.seq))
  const roleAsked = calls.filter((c) => c.host === 'node2' && c.seq > failover && stdin(c).includes('"INFO"'))
  t.ok(
    roleAsked.some((c) => c.seq < told),
    'node2 was asked its role after the failover, before HAProxy was told',
  )
})

t.test('a HAProxy whose admin socket does not answer only warns: the switchover still ends routed', async (t) => {
  const world = healthyState()
  const lines: string[] = []
  const { fleet, conns } = await worldFleet(world, lines, LAB_SMALL)
  conns.get('node2')!.on(/'set server redis_/, { code: 1, stderr: 'ConnectionRefusedError: [Errno 111]' })
  const after = await switchRedis(fleet, limitsOf(fleet), await readStack(fleet), { from: 'node1' }, 5_000)
  t.equal(world.redisPrimary, 'node2', 'the switch is done')
  t.same(
    after.haproxy.map((h) => h.backends?.redis_node2?.up.length),
    [3, 3],
    'both HAProxy hosts route to node2',
  )
  t.same(world.healthForced, [switchLine('node1', 'node1', 'node2')], 'the answering HAProxy was told')
  t.match(lines.join('\n'), /WARNING: HAProxy's admin socket on node2: ConnectionRefusedError.*on their own/)
})

t.test("a new primary not answering role:master gets no forced up; the old one's entries still go down", async (t) => {
  const world = healthyState()
  const lines: string[] = []
  const { fleet } = await worldFleet(world, lines, LAB_SMALL)
  // node1 is still the primary here: node2 answers role:slave.
  await routeWritesTo(fleet, 'node1', 'node2')
  t.same([...world.healthForced].sort(), [switchLine('node1', 'node1'), switchLine('node2', 'node1')])
  t.match(lines.join('\n'), /WARNING: node2 does not answer role:master yet/)
})

t.test('forcing health refuses a name the admin socket would split, before any HAProxy is asked', async (t) => {
  const world = healthyState()
  const { fleet, conns } = await worldFleet(world, [], LAB_SMALL)
  for (const server of ['node1 via', 'node1;shutdown sessions', ''])
    await t.rejects(
      forceServerHealth(fleet, [{ backend: 'redis_node1', server, health: 'down' }]),
      /not a backend\/server name HAProxy's admin socket can take/,
    )
  t.same(
    [...conns.values()].flatMap((c) => c.commands).filter((c) => c.includes('set server')),
    [],
    'nothing was sent',
  )
})
