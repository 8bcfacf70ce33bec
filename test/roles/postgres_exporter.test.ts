/**
 * The postgres_exporter role on three scripted PostgreSQL members behind a pretend
 * Patroni leader: the monitoring role is created once, on the leader only, as a member
 * of pg_monitor; every member gets the exporter with its password in a file
 * root:prometheus 0640, bound to the cluster address; a converged cluster changes
 * nothing; a drifted password file or a lost grant is put back (the file restarts the
 * exporter); check mode writes nothing and sends no SQL that changes anything.
 */
import t from 'tap'
import type { RunOptions } from '../../lib/types.ts'
import { postgresExporterRole } from '../../roles/postgres_exporter/index.ts'
import { scramMatches } from '../../roles/patroni/scram.ts'
import { lastWord, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { monitoringWorld } from './monitoring-world.ts'

const MEMBERS = ['db1', 'db2', 'db3']
const play = [{ name: 'postgres_exporter', hosts: 'postgres', roles: [postgresExporterRole] }]
const PASSWORD_FILE = '/etc/prometheus/postgres-exporter.pass'
const DEFAULTS = '/etc/default/prometheus-postgres-exporter'
const UNIT = 'prometheus-postgres-exporter'
const ROLE_TASK = 'Ensure the monitoring role is current'
const GRANT_TASK = 'Ensure hastack_monitor is a member of pg_monitor'
const PASSWORD_TASK = 'Ensure postgres_exporter has its password'
const RESTART = 'Restart postgres_exporter'

/** The leader's roles as PostgreSQL keeps them, and the SQL that changed them, by host. */
class PretendLeader {
  readonly verifiers = new Map<string, string>()
  readonly monitors = new Set<string>()
  readonly changes: string[] = []

  constructor(
    lab: ScriptedLab,
    readonly leader: string,
  ) {
    for (const name of MEMBERS) {
      const conn = lab.host(name)
      // The role asks GET /primary as a probe (httpGetCommand: `curl -sS -m 10 -w ... --url URL`).
      conn.on(/^curl -sS -m 10 .*--url \S+$/, (command) => {
        const url = lastWord(command)
        const primary = url.endsWith('/primary') && url.startsWith(`http://${conn.address}:`)
        return { stdout: `{}\n${primary && name === leader ? 200 : 503}` }
      })
      conn.on(/^\/usr\/lib\/postgresql\/\d+\/bin\/psql /, (_c, options: RunOptions, c) =>
        this.psql(c, String(options.stdin ?? '')),
      )
      conn.on(/^cd \/ && runuser -u postgres -- \/usr\/lib\/postgresql\/\d+\/bin\/psql .* -c '/, (command, _o, c) =>
        this.psql(c, lastWord(command)),
      )
    }
  }

  private psql(conn: ScriptedConnection, sql: string): { code: number; stdout?: string; stderr?: string } {
    if (conn.host !== this.leader) return { code: 1, stderr: 'ERROR: cannot execute in a read-only transaction' }
    let m: RegExpExecArray | null
    if ((m = /FROM pg_authid WHERE rolname IN \((.*)\);$/.exec(sql))) {
      const names = [...m[1]!.matchAll(/'([^']*)'/g)].map((n) => n[1]!)
      const rows = names.filter((n) => this.verifiers.has(n)).map((n) => `${n}|${this.verifiers.get(n)}\n`)
      return { code: 0, stdout: rows.join('') }
    }
    if ((m = /FROM pg_authid WHERE rolname = '([^']*)'/.exec(sql)))
      return { code: 0, stdout: `${this.verifiers.get(m[1]!) ?? ''}\n` }
    if ((m = /FROM pg_roles WHERE rolname = '([^']*)'/.exec(sql)))
      return { code: 0, stdout: this.verifiers.has(m[1]!) ? '1\n' : '' }
    if ((m = /WHERE r\.rolname = '([^']*)' AND g\.rolname = 'pg_monitor'/.exec(sql)))
      return { code: 0, stdout: this.monitors.has(m[1]!) ? '1\n' : '' }
    if ((m = /^(CREATE|ALTER) ROLE "([^"]+)"(.*) PASSWORD '([^']+)';$/.exec(sql))) {
      this.verifiers.set(m[2]!, m[4]!)
      if (m[3]!.includes('IN ROLE pg_monitor')) this.monitors.add(m[2]!)
      return this.changed(conn, `${m[1]} ROLE ${m[2]}`)
    }
    if ((m = /^GRANT pg_monitor TO "([^"]+)";$/.exec(sql))) {
      this.monitors.add(m[1]!)
      return this.changed(conn, `GRANT pg_monitor TO ${m[1]}`)
    }
    return { code: 3, stderr: `ERROR: the pretend leader does not know: ${sql}` }
  }

  private changed(conn: ScriptedConnection, what: string): { code: number } {
    this.changes.push(`${conn.host}: ${what}`)
    conn.mutated(what)
    return { code: 0 }
  }
}

async function cluster(): Promise<{ lab: ScriptedLab; pg: PretendLeader }> {
  const { lab } = await monitoringWorld()
  return { lab, pg: new PretendLeader(lab, 'db2') }
}

const password = (lab: ScriptedLab) => String(lab.inventory.hosts.get('db1')!.vars.postgres_exporter_password)

t.test('the monitoring role is created once, on the leader; every member gets the exporter', async (t) => {
  const { lab, pg } = await cluster()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  t.same(pg.changes, ['db2: CREATE ROLE hastack_monitor'], 'one CREATE ROLE, on the leader, already in pg_monitor')
  t.ok(scramMatches(pg.verifiers.get('hastack_monitor')!, password(lab)), 'the stored verifier is of the password')
  t.ok(pg.monitors.has('hastack_monitor'))
  t.same(run.named('db2', 'changed').slice(0, 1), [ROLE_TASK])
  t.equal(run.tasks('db2').find((x) => x.name === GRANT_TASK)?.status, 'ok', 'the new role is already a member')
  for (const name of MEMBERS) {
    const conn = lab.host(name)
    if (name !== pg.leader)
      t.notOk(
        run.tasks(name).some((x) => x.name === ROLE_TASK || x.name === GRANT_TASK),
        `${name}: a replica does not touch roles`,
      )
    t.ok(run.named(name, 'changed').includes(RESTART), `${name}: the exporter starts with its settings`)
    t.match(conn.fs.get(PASSWORD_FILE), { type: 'file', owner: 'root', group: 'prometheus', mode: '0640' })
    t.equal(conn.readFile(PASSWORD_FILE), password(lab), `${name}: the file holds the generated password`)
    const defaults = conn.readFile(DEFAULTS) ?? ''
    t.match(defaults, `--web.listen-address=${conn.address}:9187"`, `${name}: bound to its cluster address`)
    t.match(defaults, `DATA_SOURCE_PASS_FILE="${PASSWORD_FILE}"`)
    t.notOk(defaults.includes(password(lab)), `${name}: the password is not in the unit's environment`)
    t.same(conn.service(UNIT), { enabled: true, active: true, restarts: 1, reloads: 0 })
    t.same(conn.unmatched, [], `${name}: only expected commands`)
  }
})

t.test('a converged cluster changes nothing', async (t) => {
  const { lab, pg } = await cluster()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  for (const name of MEMBERS) lab.host(name).resetCalls()
  pg.changes.length = 0
  const run = await lab.run(play)
  t.ok(run.success)
  for (const name of MEMBERS) {
    t.equal(run.stats.get(name)?.changed, 0, `${name}: changed=0`)
    t.same(lab.host(name).mutations, [], `${name}: nothing sent that changes it`)
  }
  t.same(pg.changes, [])
})

t.test('a drifted password file is put back and restarts only that exporter', async (t) => {
  const { lab } = await cluster()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const db3 = lab.host('db3')
  db3.writeFile(PASSWORD_FILE, 'stale', { mode: '0644' })
  for (const name of MEMBERS) lab.host(name).resetCalls()
  const run = await lab.run(play)
  t.same(run.named('db3', 'changed'), [PASSWORD_TASK, RESTART])
  t.match(db3.fs.get(PASSWORD_FILE), { owner: 'root', group: 'prometheus', mode: '0640' })
  t.equal(db3.readFile(PASSWORD_FILE), password(lab))
  t.equal(db3.service(UNIT).restarts, 2)
  for (const name of ['db1', 'db2']) t.equal(run.stats.get(name)?.changed, 0, `${name}: untouched`)
})

t.test('a role that lost pg_monitor is granted it again on the leader, without a restart', async (t) => {
  const { lab, pg } = await cluster()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  pg.monitors.delete('hastack_monitor')
  pg.changes.length = 0
  const run = await lab.run(play)
  t.same(run.named('db2', 'changed'), [GRANT_TASK])
  t.same(pg.changes, ['db2: GRANT pg_monitor TO hastack_monitor'])
  t.equal(lab.host('db2').service(UNIT).restarts, 1)
})

t.test('check mode on a fresh cluster reports the plan and writes nothing', async (t) => {
  const { lab, pg } = await cluster()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('db2', 'changed').includes(ROLE_TASK))
  t.same(pg.changes, [])
  for (const name of MEMBERS) {
    t.ok(run.named(name, 'changed').includes(PASSWORD_TASK), `${name}: the password file would be written`)
    t.same(lab.host(name).writes, [], `${name}: nothing written`)
    t.same(lab.host(name).mutations, [], `${name}: nothing changed`)
    t.same(lab.host(name).unmatched, [], `${name}: only known reads`)
  }
})
