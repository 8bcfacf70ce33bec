/**
 * playbooks/restore.ts's plays on scripted hosts (three members, the repository on db1, db2 leading):
 * the plan alone touches nothing, nor does check mode; a refused target stops nothing; a restore stops
 * every member before restoring db1 and lets the others empty their data only once db1 leads; a
 * recovery that stops before its target brings the cluster back (the others start on their data, db1
 * re-clones) and says so; a member that cannot be stopped means nothing is restored and the others
 * start again.
 */
import t from 'tap'
import type { RunOptions } from '../../lib/types.ts'
import { targetFromOptions, type RestoreTarget } from '../../roles/pgbackrest/pitr-target.ts'
import { restorePlays } from '../../playbooks/restore/plays.ts'
import { scriptedLab, type ScriptedConnection } from '../fixtures/scripted.ts'
import { stackInventory } from '../roles/stack.ts'

const MEMBERS = ['db1', 'db2', 'db3']
const NOW = Math.floor(Date.now() / 1000)
const MARKER_XID = 900

interface WorldOptions {
  /** What pg_control says when the recovery ends: promoted, or stopped short of the target. */
  recovery?: 'promotes' | 'stops'
  /** A member whose Patroni does not stop. */
  stuck?: string
}

/** A command as the shell reads it, without the quotes around its words (rules and assertions match this). */
const unquoted = (cmd: string) => cmd.replaceAll("'", '')
const matching = (pattern: RegExp) => (cmd: string) => pattern.test(unquoted(cmd))

/** The lab: every member's Patroni running, db2 the leader until db1's restored data is the cluster's. */
async function world(options: WorldOptions = {}) {
  const doc = stackInventory() as { all: { children: Record<string, unknown> } }
  doc.all.children.backup_repo = { hosts: { db1: null } }
  const lab = await scriptedLab(doc)
  const state = { keysRemoved: false }
  const conns = Object.fromEntries(MEMBERS.map((m) => [m, lab.host(m)])) as Record<string, ScriptedConnection>
  const active = (m: string) => conns[m]!.service('patroni').active
  const leader = () => (state.keysRemoved ? (active('db1') ? 'db1' : undefined) : active('db2') ? 'db2' : undefined)
  const addressOf = (m: string) => String(lab.inventory.hosts.get(m)!.vars.address)
  for (const m of MEMBERS) {
    const c = conns[m]!
    c.setService('patroni', { enabled: true, active: true })
    const rest = (url: string) => {
      if (url.endsWith('/primary')) return { stdout: `\n${leader() === m ? 200 : 503}` }
      const members = MEMBERS.map((name) => ({
        name,
        host: addressOf(name),
        role: leader() === name ? 'leader' : 'replica',
        state: active(name) ? 'running' : 'stopped',
        timeline: 2,
      }))
      return { stdout: `${JSON.stringify({ members })}\n200` }
    }
    c.on(
      (cmd) => cmd === 'curl -K -',
      (_c, o: RunOptions) => rest(/url = "([^"]+)"/.exec(String(o.stdin))![1]!),
    )
    c.on(matching(/^curl -s -o \/dev\/null -w %\{http_code\} .*\/replica$/), { stdout: '200' })
    c.on(
      (cmd, o) => cmd.startsWith('/usr/lib/postgresql/15/bin/psql') && String(o.stdin ?? '').includes('pg_switch_wal'),
      {
        stdout: `${MARKER_XID} ${NOW}\n000000020000000000000007\n`,
      },
    )
    c.on(matching(/^\/usr\/lib\/postgresql\/15\/bin\/psql .*last_archived_wal/), { stdout: 't\n' })
    c.on(matching(/^test ! -e .*postmaster\.pid$/), { stdout: '' })
    if (m === options.stuck) c.on(matching(/stop patroni/), { code: 1, stderr: 'Job for patroni.service failed' })
    c.on(matching(/pg_controldata/), {
      stdout: options.recovery === 'stops' ? 'stopped\nshut down in recovery\n' : 'running\nin production\n',
    })
    c.on(matching(/^tail -n 12 /), { stdout: 'FATAL:  recovery ended before configured recovery target was reached\n' })
    c.on(matching(/pg_isready/), {})
    c.on(
      (cmd, o) =>
        cmd.startsWith('/usr/lib/postgresql/15/bin/psql') && String(o.stdin ?? '').includes('alter system reset'),
      {
        stdout: '\n3\n',
      },
    )
    c.on(matching(/^grep -oE /), { stdout: 'recovery stopping before commit of transaction 850, time T\n' })
    c.on(matching(/^patronictl .* remove hastack$/), () => ((state.keysRemoved = true), {}))
    c.on(matching(/pg_stat_replication/), { stdout: '2\n' })
  }
  conns.db1!.on(matching(/^pgbackrest --stanza=hastack info --output=json$/), {
    stdout: JSON.stringify([{ backup: [{ label: 'F1', timestamp: { start: NOW - 3700, stop: NOW - 3600 } }] }]),
  })
  conns.db1!.on(matching(/^find .*archive\/hastack/), { stdout: `${NOW}\n` })
  return { lab, conns, state, cleanup: () => lab.cleanup() }
}

/** The commands of a host, and where one first appears among every host's calls. */
const position = (c: ScriptedConnection, pattern: RegExp) =>
  c.calls.find((call) => call.kind === 'run' && pattern.test(unquoted(call.target)))?.seq ?? -1
const ran = (c: ScriptedConnection, pattern: RegExp) => c.commands.some((cmd) => pattern.test(unquoted(cmd)))
const EMPTYING = /rm -rf -- "\$1" && install -d/
const time = (offsetS: number): RestoreTarget =>
  targetFromOptions({ time: new Date((NOW + offsetS) * 1000).toISOString().replace(/\.\d+Z$/, 'Z') })

t.test('without --confirm the plan is printed and nothing is touched', async (t) => {
  const { lab, conns, cleanup } = await world()
  t.teardown(cleanup)
  const run = await lab.run(restorePlays(lab.inventory, time(-60), false))
  t.ok(run.success, run.lines.join('\n'))
  t.ok(run.lines.some((l) => /plan: restore the cluster to the time/.test(l)))
  t.ok(run.lines.some((l) => /nothing was changed: run again with --confirm/.test(l)))
  for (const m of MEMBERS) {
    t.notOk(ran(conns[m]!, /stop patroni|pg_switch_wal|restore$/), `${m}: nothing stopped, archived or restored`)
    t.same(conns[m]!.writes, [], `${m}: nothing written`)
  }
})

t.test('with --confirm in check mode every step is listed and nothing runs', async (t) => {
  const { lab, conns, cleanup } = await world()
  t.teardown(cleanup)
  const run = await lab.run(restorePlays(lab.inventory, time(-60), true), { check: true })
  t.ok(run.success, run.lines.join('\n'))
  t.ok(
    run.named('db1', 'changed').some((n) => /Restore the data directory/.test(n)),
    'the restore is listed',
  )
  for (const m of MEMBERS) {
    t.notOk(ran(conns[m]!, /stop patroni|pg_switch_wal|--delta|remove hastack|rm -rf/), `${m}: nothing ran`)
    t.equal(conns[m]!.service('patroni').active, true, `${m}: Patroni still running`)
  }
})

t.test('a target after the newest archived transaction is refused before anything is stopped', async (t) => {
  const { lab, conns, cleanup } = await world()
  t.teardown(cleanup)
  const run = await lab.run(restorePlays(lab.inventory, time(+30), true))
  t.notOk(run.success)
  t.match(run.tasks('db1').find((x) => x.status === 'failed')?.reason, /refused: .*after the newest archived WAL/)
  for (const m of MEMBERS) t.notOk(ran(conns[m]!, /stop patroni/), `${m}: Patroni left running`)
  t.notOk(ran(conns.db1!, /--delta/), 'nothing restored')
})

t.test('a restore stops every member, restores db1, and empties the others only once db1 leads', async (t) => {
  const { lab, conns, cleanup } = await world()
  t.teardown(cleanup)
  const run = await lab.run(restorePlays(lab.inventory, time(-60), true))
  t.ok(run.success, run.lines.filter((l) => /failed|ERROR/i.test(l)).join('\n'))
  const restore = position(conns.db1!, /--delta --type=time --target=.* --target-action=promote restore$/)
  t.ok(restore > 0, 'db1 restored to the time, promoting there')
  for (const m of MEMBERS) t.ok(position(conns[m]!, /stop patroni/) < restore, `${m} stopped before the restore`)
  const removed = position(conns.db1!, /remove hastack$/)
  t.ok(removed > restore, "the cluster's keys removed after the recovery")
  for (const m of ['db2', 'db3']) {
    t.ok(position(conns[m]!, EMPTYING) > removed, `${m} emptied only after db1 took the cluster over`)
    t.equal(conns[m]!.service('patroni').active, true, `${m}: Patroni running`)
  }
  t.notOk(ran(conns.db1!, EMPTYING), "db1's restored data is kept")
  t.ok(run.lines.some((l) => /restored cluster in [\d.]+ s/.test(l)))
  t.ok(run.lines.some((l) => /db1 leads on timeline 3; recovery stopping before commit of transaction 850/.test(l)))
})

t.test('a recovery that stops short of its target brings the cluster back on its data, and says so', async (t) => {
  const { lab, conns, state, cleanup } = await world({ recovery: 'stops' })
  t.teardown(cleanup)
  const run = await lab.run(restorePlays(lab.inventory, targetFromOptions({ name: 'no-such-point' }), true))
  t.notOk(run.success, 'the run fails')
  const failure = run.tasks('db1').find((x) => x.status === 'failed')?.reason ?? ''
  t.match(failure, /PostgreSQL stopped during recovery \(pg_control: shut down in recovery\)/)
  t.match(failure, /recovery ended before configured recovery target was reached/, "PostgreSQL's own words")
  t.ok(run.lines.some((l) => /restore failed: [^]*nothing was committed: the cluster comes back/.test(l)))
  t.equal(state.keysRemoved, false, "the cluster's keys stay in etcd")
  for (const m of ['db2', 'db3']) {
    t.notOk(ran(conns[m]!, EMPTYING), `${m} keeps its data`)
    t.equal(conns[m]!.service('patroni').active, true, `${m}: Patroni started again`)
  }
  t.ok(ran(conns.db1!, EMPTYING), 'db1 discards what the restore left')
  t.equal(conns.db1!.service('patroni').active, true, 'db1: Patroni started, to clone the leader')
  t.ok(run.lines.some((l) => /the restore was not done; the cluster is back: .*db2 leader/.test(l)))
})

t.test('a member whose Patroni does not stop means nothing is restored, and the others start again', async (t) => {
  const { lab, conns, cleanup } = await world({ stuck: 'db3' })
  t.teardown(cleanup)
  const run = await lab.run(restorePlays(lab.inventory, time(-60), true))
  t.notOk(run.success)
  t.match(run.tasks('db3').find((x) => x.status === 'failed')?.reason, /Job for patroni.service failed/)
  t.match(run.lines.join('\n'), /nothing is restored; the other members start Patroni again[^]*systemctl start patroni/)
  t.notOk(ran(conns.db1!, /--delta/), 'nothing restored')
  for (const m of ['db1', 'db2']) {
    t.notOk(ran(conns[m]!, EMPTYING), `${m} keeps its data`)
    t.equal(conns[m]!.service('patroni').active, true, `${m}: Patroni started again`)
  }
})
