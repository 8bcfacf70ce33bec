/**
 * remove-node.ts's decisions on a reading of the scripted day-2 stack: the current PostgreSQL or
 * Redis primary is refused (switch over first), so are removals that would leave fewer than three
 * etcd members, no healthy majority of them, or Sentinels short of their quorum; a replica on a
 * healthy stack of four gets its steps in order. The etcd step asks the healthy member's own endpoint,
 * and a removal that answers with an error counts only when the member list no longer holds the member.
 * A stopped Patroni member's key is deleted through a healthy etcd member, never that of a host that
 * cannot be reached (its Patroni may still run).
 * Bad input is refused with exit 1 before any connection.
 */
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import t from 'tap'
import { readStack } from '../../playbooks/day2/stack-state.ts'
import { planRemoval, type RemovalPlan, type StackMembers } from '../../playbooks/nodes/removal-plan.ts'
import { removeNode } from '../../playbooks/nodes/removal.ts'
import { ADDRESS, HOSTS, healthyState, worldFleet, type WorldState } from './day2-world.ts'

const repo = resolve(import.meta.dirname, '../..')
const three = [...HOSTS] as string[]
const four = [...three, 'node4']
const everywhere = (hosts: string[]): StackMembers => ({ etcd: hosts, postgres: hosts, redis: hosts, sentinel: hosts })

/** A reading of the scripted stack, with node4 as a healthy fourth etcd member when asked. */
async function reading(world: WorldState, withNode4 = true) {
  const { fleet } = await worldFleet(world)
  const state = await readStack(fleet)
  if (withNode4) state.etcd.push({ host: 'node4', healthy: true })
  return state
}

t.test('the current PostgreSQL and Redis primaries are refused: switch over first', async (t) => {
  const plan = planRemoval(await reading(healthyState()), 'node1', everywhere(four), 2)
  t.match(plan.refusals, [
    /node1 is the PostgreSQL primary: switch over first \(playbooks\/switchover\.ts --component postgres\)/,
    /node1 is the Redis primary: switch over first \(playbooks\/switchover\.ts --component redis\)/,
  ])
})

t.test('a Redis replica a Sentinel still names as the primary is refused too', async (t) => {
  const world = healthyState()
  world.sentinelNames.node2 = 'node3'
  const plan = planRemoval(await reading(world), 'node3', everywhere(four), 2)
  t.match(plan.refusals.join('\n'), /node3 is the Redis primary: switch over first/)
})

t.test(
  'a replica of a healthy stack of four may go, in order: services, etcd, Sentinel resets, inventory',
  async (t) => {
    const plan = planRemoval(await reading(healthyState()), 'node3', everywhere(four), 2)
    t.same(plan.refusals, [])
    t.same(plan.groups, ['etcd', 'postgres', 'redis', 'sentinel'])
    t.equal(plan.etcdVia, 'node1', 'member remove goes through the first healthy member left')
    t.same(plan.sentinelsToReset, ['node1', 'node2', 'node4'])
    t.equal(plan.expectedOtherSentinels, 2)
    t.equal(plan.expectedReplicas, 2, 'four Redis servers less the removed one and the primary')
    t.match(plan.steps, [
      /^stop and disable Patroni on node3/,
      /^stop and disable Redis on node3/,
      /^stop and disable Sentinel on node3/,
      /^remove node3 from the etcd cluster \(etcdctl member remove, through node1\)/,
      /^SENTINEL RESET on node1, node2, node4, one at a time/,
      /^then delete node3 from the inventory's etcd, postgres, redis, sentinel group\(s\) and run site\.ts/,
    ])
  },
)

t.test('etcd: fewer than three members left, or no healthy majority of them, is refused', async (t) => {
  const small = planRemoval(await reading(healthyState(), false), 'node3', everywhere(three), 2)
  t.match(small.refusals, [/would leave 2 etcd member\(s\): fewer than 3 tolerate no failure; add a member first/])
  const world = healthyState()
  world.etcdHealthy.node1 = false
  world.etcdHealthy.node2 = false
  const sick = planRemoval(await reading(world), 'node3', everywhere(four), 2)
  t.match(sick.refusals, [/only 1 of the 3 etcd members left are healthy: not a majority/])
})

t.test('Sentinel: the removal is refused when the Sentinels left that answer are fewer than the quorum', async (t) => {
  const state = await reading(healthyState())
  state.sentinels.find((s) => s.host === 'node1')!.error = 'Sentinel does not answer'
  const plan = planRemoval(state, 'node3', { ...everywhere(four), sentinel: three }, 2)
  t.match(plan.refusals, [/only 1 of the 2 Sentinels left answer: their quorum 2 could not be reached/])
})

t.test('a host in none of the groups is refused', async (t) => {
  const plan = planRemoval(await reading(healthyState()), 'node9', everywhere(four), 2)
  t.match(plan.refusals, [/node9 is in none of the etcd, postgres, redis and sentinel groups/])
})

/** An etcd-only removal of node3 (unreachable) through node1, whose `member remove` answers with an error. */
async function removeEtcdMember(listedAfterError: boolean) {
  const { fleet, conns } = await worldFleet(healthyState())
  const via = conns.get('node1')!
  const id = (n: number) => String(1000000000000000000n + BigInt(n))
  const listed = (hosts: number[]) =>
    hosts.map((n) => `${id(n)}, started, node${n + 1}, http://${ADDRESS[`node${n + 1}`]}:2380, x, false`).join('\n')
  let removed = false
  via.on(/member list/, () => ({ stdout: listed(removed && !listedAfterError ? [0, 1] : [0, 1, 2]) + '\n' }))
  via.on(/member remove/, () => {
    removed = true
    return { code: 1, stderr: 'Error: etcdserver: server stopped' }
  })
  const plan: RemovalPlan = {
    host: 'node3',
    refusals: [],
    groups: ['etcd'],
    reachable: false,
    etcdVia: 'node1',
    sentinelsToReset: [],
    expectedOtherSentinels: 2,
    expectedReplicas: 1,
    steps: [],
  }
  const members = everywhere(three)
  return { done: removeNode(fleet, plan, members), commands: () => via.commands }
}

t.test(
  'etcd: a removal that answers with an error counts once the member list no longer holds the member',
  async (t) => {
    const { done, commands } = await removeEtcdMember(false)
    t.match(await done, [/^etcd: node3 removed member 1000000000000000002 through node1 \(/])
    const etcd = commands().filter((c) => c.includes('hastack-etcdctl'))
    t.ok(etcd.length >= 3, 'list, remove, list again')
    for (const c of etcd) t.match(c, /--endpoints='?http:\/\/10\.0\.0\.11:2379'? /, 'asked of node1 only')
  },
)

t.test('etcd: a removal that answers with an error while the member stays listed fails the step', async (t) => {
  const { done } = await removeEtcdMember(true)
  await t.rejects(done, /node1: .*member remove .*failed: Error: etcdserver: server stopped/)
})

t.test(
  "Patroni: the stopped member's key is deleted through a healthy etcd member, so the others forget it at once",
  async (t) => {
    const world = healthyState()
    const { fleet, conns } = await worldFleet(world)
    const plan = planRemoval(await readStack(fleet), 'node3', { ...everywhere(three), etcd: [] }, 2)
    t.equal(plan.dcsVia, 'node1')
    t.match(plan.steps[0], /^stop and disable Patroni on node3, then delete its member key through node1's etcd/)
    let stoppedFirst: boolean | undefined
    conns.get('node1')!.on(/hastack-etcdctl.* del /, () => {
      stoppedFirst = !world.pg.node3!.patroni
      world.pgKeyDeleted.push('node3')
      return { stdout: '1\n' }
    })
    const done = await removeNode(fleet, { ...plan, groups: ['postgres'], sentinelsToReset: [] }, everywhere(three))
    t.match(done, [
      /^Patroni stopped on node3, its member key \/service\/hastack\/members\/node3 deleted through node1; node1 no longer lists it \(/,
    ])
    t.equal(stoppedFirst, true, 'the key is deleted only once Patroni is stopped (a running member writes it again)')
    const del = conns.get('node1')!.commands.find((c) => / del /.test(c))!
    t.match(del, /--endpoints='?http:\/\/10\.0\.0\.11:2379'? /, "asked of node1's own endpoint")
    t.match(del, / del '?\/service\/hastack\/members\/node3'?$/, 'the one key, no prefix')
  },
)

t.test('Patroni: a member key etcd would not delete is left to its TTL; the removal goes on', async (t) => {
  const world = healthyState()
  const { fleet, conns } = await worldFleet(world)
  const plan = planRemoval(await readStack(fleet), 'node3', { ...everywhere(three), etcd: [] }, 2)
  conns.get('node1')!.on(/hastack-etcdctl.* del /, () => {
    setTimeout(() => world.pgKeyDeleted.push('node3'), 100)
    return { code: 1, stderr: 'Error: context deadline exceeded' }
  })
  const done = await removeNode(fleet, { ...plan, groups: ['postgres'], sentinelsToReset: [] }, everywhere(three))
  t.match(done, [
    /^Patroni stopped on node3, its member key not deleted \(.*context deadline exceeded\): waiting for its TTL; node1 no longer lists it/,
  ])
})

t.test("Patroni: an unreachable host's member key is left to its TTL (its Patroni may still run)", async (t) => {
  const world = healthyState()
  const { fleet, conns } = await worldFleet(world)
  const state = await readStack(fleet)
  state.unreachable.node3 = 'connection refused'
  const plan = planRemoval(state, 'node3', { ...everywhere(three), etcd: [] }, 2)
  t.equal(plan.dcsVia, undefined, 'no etcd member is chosen to delete it')
  t.match(plan.steps[0], /^stop and disable Patroni on node3 \(/)
  // The key's TTL runs out a moment later: the witness stops listing node3.
  setTimeout(() => {
    world.pg.node3!.patroni = false
    world.pgKeyDeleted.push('node3')
  }, 100)
  const done = await removeNode(
    fleet,
    { ...plan, groups: ['postgres'], sentinelsToReset: [], dcsVia: 'node1' },
    everywhere(three),
  )
  t.match(done, [/^Patroni stopped on node3; node1 no longer lists it \(/])
  const etcd = [...conns.values()].flatMap((c) => c.commands).filter((c) => / del /.test(c))
  t.same(etcd, [], 'no key deleted, even with an etcd member named')
  t.notOk(
    conns.get('node3')!.commands.some((c) => /systemctl/.test(c)),
    'nothing run on the unreachable host',
  )
})

t.test('remove-node.ts refuses a missing or unknown --host with exit 1 before any connection', async (t) => {
  const { file } = await worldFleet(healthyState())
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['--import=tsx', 'playbooks/remove-node.ts', '-i', file, ...args], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 60_000,
    })
  const missing = run()
  t.equal(missing.status, 1)
  t.match(missing.stderr, /--host HOST is required/)
  const unknown = run('--host', 'node9', '--confirm')
  t.equal(unknown.status, 1)
  t.match(unknown.stderr, /--host node9: no such host in the inventory/)
})
