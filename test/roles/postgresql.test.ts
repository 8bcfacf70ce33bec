/**
 * The postgresql role on a scripted host: Debian's automatic cluster is
 * switched off before the server package installs, a `main` cluster left by an
 * earlier install is dropped when it holds no user data and kept (the run
 * stops) when it does, the packaged umbrella service is disabled, a converged
 * host changes nothing and check mode writes nothing.
 */
import t from 'tap'
import { postgresqlRole } from '../../roles/postgresql/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'postgresql', hosts: 'db1', roles: [postgresqlRole] }]
const CREATECLUSTER = '/etc/postgresql-common/createcluster.conf'
const MAIN = '/etc/postgresql/15/main'
const MAIN_DATA = '/var/lib/postgresql/15/main'
const DROP = 'Ensure no Debian main cluster runs beside Patroni'
const DISABLE = 'Ensure the packaged postgresql.service is disabled'

/** A host where installing postgresql-15 enables the packaged umbrella service, as Debian's package does. */
async function freshLab(): Promise<ScriptedLab> {
  const lab = await scriptedLab(stackInventory())
  const db1 = lab.host('db1')
  db1.onInstall('postgresql-15', (c) => void c.setService('postgresql', { enabled: true, active: false }))
  // pg_lsclusters (postgresql-common) lists the main cluster while its postgresql.conf exists, stopped.
  db1.on(/^pg_lsclusters --no-header 15 main$/, (_cmd, _opts, c) => {
    if (!c.packages.has('postgresql-15')) return { code: 127, stderr: 'pg_lsclusters: not found\n' }
    if (!c.fs.has(`${MAIN}/postgresql.conf`))
      return { code: 1, stderr: "Error: specified cluster '15 main' does not exist\n" }
    return { stdout: `15  main    5432 down   postgres ${MAIN_DATA} /var/log/postgresql/postgresql-15-main.log\n` }
  })
  // The stopped cluster's files: the entries of base/ and of base/5 (the postgres database).
  db1.on(/^if \[ -d \/var\/lib\/postgresql\/15\/main\/base \]; then ls -1 -- /, (_cmd, _opts, c) => {
    const entries = (dir: string) =>
      [...c.fs.keys()].filter((p) => p.startsWith(`${dir}/`)).map((p) => p.slice(dir.length + 1).split('/')[0]!)
    const base = `${MAIN_DATA}/base`
    const databases = [...new Set(entries(base))]
    if (!databases.length) return { code: 0 }
    return { stdout: `${databases.join('\n')}\n---\n${entries(`${base}/5`).join('\n')}\n` }
  })
  db1.on(/pg_dropcluster/, (_cmd, _opts, c) => {
    for (const path of [...c.fs.keys()]) if (path.startsWith(MAIN) || path.startsWith(MAIN_DATA)) c.fs.delete(path)
    c.mutated('pg_dropcluster 15 main')
    return { code: 0 }
  })
  return lab
}

/** A stopped main cluster as an earlier install left it: the system databases, and `extra` data files. */
function leaveMainCluster(lab: ScriptedLab, extra: string[] = []): void {
  const db1 = lab.host('db1')
  db1.mkdir(MAIN, { owner: 'postgres' })
  db1.writeFile(`${MAIN}/postgresql.conf`, "data_directory = '/var/lib/postgresql/15/main'\n", { owner: 'postgres' })
  for (const file of ['base/1/1259', 'base/4/1259', 'base/5/1259', 'base/5/2619', 'PG_VERSION', ...extra])
    db1.writeFile(`${MAIN_DATA}/${file}`, '', { owner: 'postgres', mode: '0600' })
}

t.test('a fresh host gets create_main_cluster = false before the server package installs', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const db1 = lab.host('db1')
  t.match(db1.readFile(CREATECLUSTER), /^create_main_cluster = false$/m)
  const written = db1.calls.find((c) => c.kind === 'put' && c.target === CREATECLUSTER)
  const install = db1.calls.find(
    (c) => c.kind === 'run' && /apt-get install/.test(c.target) && /postgresql-15/.test(c.target),
  )
  t.ok(
    written && install && written.seq < install.seq,
    'createcluster.conf is written before apt-get installs postgresql-15',
  )
  t.ok(db1.packages.has('postgresql-15') && db1.packages.has('postgresql-client-15'))
  t.same(run.tasks('db1').find((x) => x.name === DROP)?.status, 'ok', 'no main cluster to drop')
  t.same(run.named('db1', 'changed').includes(DISABLE), true)
  t.equal(db1.service('postgresql').enabled, false)
  t.equal(db1.readFile('/usr/sbin/policy-rc.d'), undefined, 'no deny-all start policy left behind')
  t.same(db1.unmatched, [])
})

t.test('a converged host changes nothing', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('db1').resetCalls()
  const run = await lab.run(play)
  t.equal(run.stats.get('db1')?.changed, 0)
  t.same(lab.host('db1').mutations, [])
})

t.test('an empty main cluster left by an earlier install is dropped, and nothing else changes', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  leaveMainCluster(lab)
  const run = await lab.run(play)
  t.same(run.named('db1', 'changed'), [DROP])
  t.notOk(lab.host('db1').fs.has(MAIN))
  t.notOk(lab.host('db1').fs.has(`${MAIN_DATA}/PG_VERSION`))
  t.same(lab.host('db1').unmatched, [])
})

t.test('a main cluster holding a user database is kept and the run stops, saying what it found', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  leaveMainCluster(lab, ['base/16384/1259'])
  const run = await lab.run(play)
  t.notOk(run.success)
  t.match(
    run.tasks('db1').find((x) => x.name === DROP),
    { status: 'failed', reason: /database with OID 16384/ },
  )
  t.ok(lab.host('db1').fs.has(MAIN))
  t.notOk(lab.host('db1').mutations.some((m) => /pg_dropcluster/.test(m)))
})

t.test('a createcluster.conf edited back to create clusters is rewritten, and nothing else changes', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('db1').writeFile(CREATECLUSTER, 'create_main_cluster = true\n')
  const run = await lab.run(play)
  t.same(run.named('db1', 'changed'), ['Ensure Debian creates no cluster on install'])
  t.match(lab.host('db1').readFile(CREATECLUSTER), /^create_main_cluster = false$/m)
})

t.test('no main cluster is dropped when postgresql_drop_default_cluster is false', async (t) => {
  const lab = await scriptedLab(stackInventory({ postgresql_drop_default_cluster: false }))
  t.teardown(() => lab.cleanup())
  leaveMainCluster(lab)
  const run = await lab.run(play)
  t.ok(run.success)
  t.notOk(run.tasks('db1').some((x) => x.name === DROP))
  t.ok(lab.host('db1').fs.has(MAIN))
})

t.test('check mode on a fresh host reports the plan and writes nothing', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('db1', 'changed').includes('Ensure Debian creates no cluster on install'))
  t.ok(run.named('db1', 'changed').includes('Ensure PostgreSQL is installed'))
  t.same(lab.host('db1').writes, [])
  t.same(lab.host('db1').mutations, [])
  t.same(lab.host('db1').unmatched, [], 'every command sent was a known read')
})
