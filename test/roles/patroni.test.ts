/**
 * The patroni role on three scripted members with a pretend Patroni cluster:
 * a fresh cluster bootstraps with the inventory's dynamic settings (no PATCH)
 * and the application user and database are created on the leader only; a
 * converged cluster changes nothing; a drifted config.yml reloads only its
 * member; changed cluster settings go out as one authenticated PATCH, followed
 * by restarts one at a time, replicas first and the leader after a switchover;
 * passwords reach PostgreSQL only as SCRAM verifiers; check mode writes nothing.
 */
import t from 'tap'
import { patroniRole } from '../../roles/patroni/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { PatroniCluster } from './patroni-world.ts'
import { stackInventory } from './stack.ts'

const MEMBERS = ['db1', 'db2', 'db3']
const play = [{ name: 'patroni', hosts: 'postgres', roles: [patroniRole] }]
const CONFIG = 'Ensure the Patroni configuration is current'
const DYNAMIC = 'Ensure the Patroni dynamic configuration matches the inventory'
const ROLLING = 'Ensure members with pending PostgreSQL settings are restarted one at a time'
const APP_USER = 'Ensure the application user is current'
const APP_DB = 'Ensure the application database exists'

async function world(vars: Record<string, unknown> = {}): Promise<{ lab: ScriptedLab; cluster: PatroniCluster }> {
  const lab = await scriptedLab(stackInventory(vars))
  return { lab, cluster: new PatroniCluster(lab) }
}

/**
 * Run with the role's pauses for Patroni's HA loop (a second or more) cut to nothing: the
 * pretend cluster acts at once, so waiting for its loop only slows the test down.
 */
async function withoutLoopPauses<T>(fn: () => Promise<T>): Promise<T> {
  const real = globalThis.setTimeout
  const fast = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
    real(callback, (ms ?? 0) >= 1000 ? 0 : ms, ...args)
  globalThis.setTimeout = fast as typeof setTimeout
  try {
    return await fn()
  } finally {
    globalThis.setTimeout = real
  }
}

/** Every host's outcome of one task name, in member order (hosts without it left out). */
const statuses = (run: Awaited<ReturnType<ScriptedLab['run']>>, task: string) =>
  MEMBERS.flatMap((m) =>
    run
      .tasks(m)
      .filter((x) => x.name === task)
      .map((x) => `${m}:${x.status}`),
  )

t.test(
  'a fresh cluster bootstraps with the inventory settings and gets its application user on the leader',
  async (t) => {
    const { lab, cluster } = await world()
    t.teardown(() => lab.cleanup())
    const run = await lab.run(play)
    t.ok(run.success)
    t.equal(cluster.leader, 'db1')
    t.same(cluster.patches, [], 'bootstrap.dcs already holds what the inventory wants: no PATCH')
    t.same(
      statuses(run, DYNAMIC).map((s) => s.split(':')[1]),
      ['ok'],
      'the dynamic configuration is checked once for the cluster',
    )
    t.same(statuses(run, APP_USER), ['db1:changed'], 'the application user is created on the leader only')
    t.same(statuses(run, APP_DB), ['db1:changed'])
    t.same(
      statuses(run, 'Ensure the superuser password is current'),
      ['db1:ok'],
      'Patroni created the superuser with its password',
    )
    t.equal(cluster.databases.get('app'), 'app')
    for (const m of MEMBERS) {
      t.ok(run.named(m, 'changed').includes(CONFIG), `${m}: config.yml written`)
      t.notOk(
        run.tasks(m).some((x) => x.name === 'Reload Patroni'),
        `${m}: a member started with its file is not reloaded`,
      )
      t.same(lab.host(m).unmatched, [], `${m}: only expected commands`)
    }
  },
)

t.test('a converged cluster changes nothing', async (t) => {
  const { lab, cluster } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  for (const m of MEMBERS) lab.host(m).resetCalls()
  const run = await lab.run(play)
  for (const m of MEMBERS) {
    t.equal(run.stats.get(m)?.changed, 0, `${m}: changed=0`)
    t.same(lab.host(m).mutations, [], `${m}: nothing sent that changes it`)
  }
  t.same(cluster.restarts, [])
})

t.test('a drifted config.yml is rewritten and reloads only its member', async (t) => {
  const { lab } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('db2').writeFile('/etc/patroni/config.yml', 'scope: other\n', { owner: 'postgres', mode: '0600' })
  const run = await lab.run(play)
  t.same(run.named('db2', 'changed'), [CONFIG, 'Reload Patroni'])
  t.equal(lab.host('db2').service('patroni').reloads, 1)
  t.equal(run.stats.get('db1')?.changed, 0)
  t.equal(run.stats.get('db3')?.changed, 0)
})

t.test(
  'changed cluster settings: one PATCH, then replicas restarted one at a time and the leader after a switchover',
  async (t) => {
    const { lab, cluster } = await world()
    t.teardown(() => lab.cleanup())
    await lab.run(play)
    await lab.reconfigure(
      stackInventory({
        patroni_ttl: 25,
        postgresql_parameters: {
          ...(lab.inventory.hosts.get('db1')!.vars.postgresql_parameters as object),
          max_connections: 300,
        },
      }),
    )
    const run = await withoutLoopPauses(() => lab.run(play))
    t.ok(run.success)
    t.same(
      cluster.patches,
      [{ ttl: 25, postgresql: { parameters: { max_connections: 300 } } }],
      'one PATCH with exactly the differences',
    )
    t.equal(cluster.refused, 0, 'every unsafe call carried the API credentials')
    t.same(
      statuses(run, DYNAMIC).map((s) => s.split(':')[1]),
      ['changed'],
    )
    t.same(
      statuses(run, ROLLING).map((s) => s.split(':')[1]),
      ['changed'],
    )
    t.same(cluster.restarts, ['db2', 'db3'], 'the replicas, one after the other')
    t.same(cluster.switchovers, ['db1'], 'the leader hands over instead of restarting under its clients')
    t.same(cluster.pending, new Set(), 'nothing left pending')
    for (const m of MEMBERS) {
      const changed = run.named(m, 'changed')
      t.ok(
        changed.includes(CONFIG) && changed.includes('Reload Patroni'),
        `${m}: config.yml (its bootstrap section) follows, with a reload`,
      )
      t.equal(lab.host(m).service('patroni').restarts, 0, `${m}: never restarted through systemd`)
    }
  },
)

t.test('a password changed in the database is set back as a SCRAM verifier, never in plain text', async (t) => {
  const { lab, cluster } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  cluster.roles.set('app', 'md5deadbeef')
  const run = await lab.run(play)
  t.same(statuses(run, APP_USER), ['db1:changed'])
  t.match(cluster.roles.get('app'), /^SCRAM-SHA-256\$4096:/)
  const password = String(lab.inventory.hosts.get('db1')!.vars.postgresql_app_password)
  const sent = lab
    .host('db1')
    .calls.map((c) => `${c.target}\n${String((c.options as { stdin?: unknown })?.stdin ?? '')}`)
  t.notOk(
    sent.some((s) => s.includes(password)),
    'the plain password is on no command line and in no SQL',
  )
})

t.test("the leader's roles are read and written by its PostgreSQL version's own psql on postgresql_port", async (t) => {
  const { lab, cluster } = await world({ postgresql_port: 5433 })
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  cluster.roles.set('app', 'md5deadbeef')
  const run = await lab.run(play)
  t.same(statuses(run, APP_USER), ['db1:changed'])
  const psqlCalls = lab
    .host('db1')
    .calls.map((c) => c.target)
    .filter((target) => /psql/.test(target))
  t.ok(psqlCalls.length >= 2, 'a read and a write went through psql')
  for (const target of psqlCalls) {
    // Debian's /usr/bin/psql (pg_wrapper) would pick port 5432 for a cluster it does not know.
    t.match(target, /(^|runuser -u postgres -- )\/usr\/lib\/postgresql\/15\/bin\/psql -p 5433 -d postgres /)
  }
})

t.test('check mode on fresh members reports the plan and writes nothing', async (t) => {
  const { lab, cluster } = await world()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  for (const m of MEMBERS) {
    t.ok(run.named(m, 'changed').includes(CONFIG), `${m}: config.yml would be written`)
    t.same(lab.host(m).writes, [], `${m}: no put`)
    t.same(lab.host(m).mutations, [], `${m}: no apply command`)
    t.same(lab.host(m).unmatched, [], `${m}: every command sent was a known read`)
  }
  t.equal(cluster.leader, undefined, 'nothing started')
  t.same(
    statuses(run, DYNAMIC).map((s) => s.split(':')[1]),
    ['skipped'],
    'no cluster to compare with yet',
  )
})

t.test(
  'with tls_enabled the API is served over HTTPS, every call verifies it with the CA, postgres reads the keys',
  async (t) => {
    const { lab, cluster } = await world({ tls_enabled: true })
    t.teardown(() => lab.cleanup())
    const run = await lab.run(play)
    t.ok(run.success)
    t.equal(cluster.leader, 'db1')
    t.ok(cluster.calls.length > 0)
    t.same(
      [...new Set(cluster.calls)],
      ['https /etc/hastack/tls/ca.crt'],
      'every call (waits and REST) over https with the CA',
    )
    for (const m of MEMBERS)
      t.ok(
        lab
          .host(m)
          .calls.some((c) =>
            /usermod --append --groups hastack-tls-postgres,hastack-tls-patroni postgres/.test(c.target),
          ),
        `${m}: postgres joins the groups of its keys before Patroni starts`,
      )
  },
)

t.test(
  'a running member serving its API over HTTP is refused the switch to HTTPS before anything changes',
  async (t) => {
    const { lab } = await world()
    t.teardown(() => lab.cleanup())
    t.ok((await lab.run(play)).success)
    const before = lab.host('db2').readFile('/etc/patroni/config.yml')
    await lab.reconfigure(stackInventory({ tls_enabled: true }))
    const run = await lab.run(play)
    t.notOk(run.success)
    t.match(
      run.tasks('db2').find((x) => x.status === 'failed')?.reason ?? '',
      /Patroni on db2 serves its REST API over HTTP and patroni_api_tls asks for HTTPS/,
    )
    t.equal(lab.host('db2').readFile('/etc/patroni/config.yml'), before, 'its configuration is left as it was')
  },
)
