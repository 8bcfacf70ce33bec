/**
 * The candidate's link to the pgBackRest archive, opened before a PostgreSQL switchover so that the
 * promotion's archive lookups share an open SSH connection: who opens it, with which command, when,
 * and that a repository that does not answer only warns.
 */
import t from 'tap'
import { NO_SUCH_HISTORY, archiveLinkCommand } from '../../playbooks/day2/archive-link.ts'
import type { Fleet } from '../../playbooks/day2/fleet.ts'
import { limitsOf } from '../../playbooks/day2/stack-state.ts'
import { switchPostgres } from '../../playbooks/day2/switch.ts'
import type { RunOptions } from '../../lib/types.ts'
import type { Call, ScriptedConnection } from '../fixtures/scripted.ts'
import { healthyState, worldFleet } from './day2-world.ts'

/** Every call on every scripted host, in the order they ran. */
const allCalls = (conns: Map<string, ScriptedConnection>) =>
  [...conns].flatMap(([host, c]) => c.calls.map((call) => ({ host, ...call }))).sort((a, b) => a.seq - b.seq)

const isArchiveGet = (command: string) => command.includes('archive-get')
const isSwitchoverPost = (call: Call) =>
  call.target === 'curl -K -' && String((call.options as RunOptions | undefined)?.stdin ?? '').includes('/switchover')

t.test('the candidate asks the archive for a history file no timeline has, as postgres', async (t) => {
  const { fleet } = await worldFleet(healthyState(), [], { backupRepo: 'node1' })
  t.same(archiveLinkCommand(fleet, 'node2'), [
    'pgbackrest',
    '--stanza=hastack',
    'archive-get',
    NO_SUCH_HISTORY,
    '/dev/null',
  ])
  t.equal(archiveLinkCommand(fleet, 'node1'), undefined, 'the repository host reads its archive locally')
})

t.test("with pgBackRest's TLS server there is no shared connection to open", async (t) => {
  const { fleet } = await worldFleet(healthyState(), [], { backupRepo: 'node1' })
  const overTls: Fleet = { ...fleet, vars: (host) => ({ ...fleet.vars(host), tls_enabled: true }) }
  t.equal(archiveLinkCommand(overTls, 'node2'), undefined)
  const overSsh: Fleet = { ...fleet, vars: (host) => ({ ...overTls.vars(host), pgbackrest_tls: false }) }
  t.ok(archiveLinkCommand(overSsh, 'node2'), 'pgbackrest_tls false: the SSH link is opened as before')
})

t.test('without a repository host there is no link to open', async (t) => {
  const { fleet } = await worldFleet(healthyState())
  t.equal(archiveLinkCommand(fleet, 'node2'), undefined)
})

t.test('a switchover opens the candidate link before the old primary is drained and Patroni is asked', async (t) => {
  const world = healthyState()
  const { fleet, conns, lines } = await worldFleet(world, [], { backupRepo: 'node1' })
  conns.get('node2')!.on(/archive-get/, { code: 1, stderr: '' })
  await switchPostgres(fleet, limitsOf(fleet), { from: 'node1', to: 'node2' }, 5_000)
  const calls = allCalls(conns)
  const lookups = calls.filter((c) => c.kind === 'run' && isArchiveGet(c.target))
  t.same(
    lookups.map((c) => [c.host, (c.options as RunOptions).user]),
    [['node2', 'postgres']],
    'one lookup, on the candidate, as postgres',
  )
  const drain = calls.findIndex((c) => /set server postgres_rw\/node1 state drain/.test(c.target))
  const post = calls.findIndex(isSwitchoverPost)
  t.ok(calls.indexOf(lookups[0]!) < drain && drain < post, 'link opened, then drained, then switched')
  t.match(lines.join('\n'), /node2's link to the archive is open/)
  t.equal(world.pgLeader, 'node2')
})

t.test('no lookup when the repository host itself takes over', async (t) => {
  const world = healthyState()
  world.pgLeader = 'node2'
  const { fleet, conns } = await worldFleet(world, [], { backupRepo: 'node1' })
  await switchPostgres(fleet, limitsOf(fleet), { from: 'node2', to: 'node1' }, 5_000)
  t.same(
    allCalls(conns).filter((c) => isArchiveGet(c.target)),
    [],
    'its archive is local',
  )
  t.equal(world.pgLeader, 'node1')
})

t.test('a repository that does not answer is a warning, and the switchover goes on', async (t) => {
  const world = healthyState()
  const { fleet, conns, lines } = await worldFleet(world, [], { backupRepo: 'node1' })
  conns.get('node3')!.on(/archive-get/, { code: 82, stderr: 'ERROR: [082]: unable to connect to the repository\n' })
  await switchPostgres(fleet, limitsOf(fleet), { from: 'node1', to: 'node3' }, 5_000)
  t.match(lines.join('\n'), /WARNING: node3 could not reach the archive before the switchover: ERROR: \[082\]/)
  t.equal(world.pgLeader, 'node3')
})
