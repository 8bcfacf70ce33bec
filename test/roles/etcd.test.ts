/**
 * The etcd role on three scripted members: bootstrap state `new` only when a
 * member has no data and no peer answers, `existing` otherwise; authentication
 * enabled once for the cluster; a converged cluster changes nothing; a changed
 * setting restarts the members one at a time, each health-checked before the
 * next; check mode writes nothing.
 */
import t from 'tap'
import { etcdRole } from '../../roles/etcd/index.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const MEMBERS = ['db1', 'db2', 'db3']
const CONFIG = '/etc/default/etcd'
const DATA = '/var/lib/etcd/hastack/member'
const AUTH_TASK = 'Ensure etcd requires authentication (root and a Patroni user on its prefix)'
const play = [{ name: 'etcd', hosts: 'etcd', roles: [etcdRole], anyErrorsFatal: true }]

/**
 * The cluster as etcdctl sees it: healthy while any member runs; anonymous requests refused
 * once the auth script ran. Starting a member gives it a data directory.
 */
function etcdCluster(lab: ScriptedLab): { auth: boolean } {
  const cluster = { auth: false }
  const members = MEMBERS.map((m) => lab.host(m))
  for (const conn of members) {
    conn.on(/endpoint health/, () => ({ code: members.some((m) => m.service('etcd').active) ? 0 : 1 }))
    conn.on(/user list/, () => ({
      code: cluster.auth ? 0 : 1,
      stdout: cluster.auth ? 'Error: etcdserver: user name is empty' : '',
    }))
    conn.on(/auth enable/, (_cmd, _opts, c) => {
      cluster.auth = true
      c.mutated('etcdctl auth enable')
      return { code: 0 }
    })
    conn.on(/systemctl start --no-block etcd/, (_cmd, _opts, c) => {
      c.setService('etcd', { enabled: true, active: true }).mkdir(DATA, { owner: 'etcd', mode: '0700' })
      c.mutated('systemctl start etcd')
      return { code: 0 }
    })
  }
  return cluster
}

async function lab(): Promise<{ lab: ScriptedLab; cluster: { auth: boolean } }> {
  const l = await scriptedLab(stackInventory())
  return { lab: l, cluster: etcdCluster(l) }
}

const initialState = (conn: ScriptedConnection) =>
  conn.written(CONFIG).map((c) => /ETCD_INITIAL_CLUSTER_STATE="(\w+)"/.exec(c)?.[1])

t.test('fresh members bootstrap a new cluster, then record it as existing, and enable auth once', async (t) => {
  const { lab: l, cluster } = await lab()
  t.teardown(() => l.cleanup())
  const run = await l.run(play)
  t.ok(run.success)
  for (const m of MEMBERS) {
    t.same(initialState(l.host(m)), ['new', 'existing'], `${m} starts with new, then records existing`)
    t.ok(run.named(m, 'changed').includes('Ensure etcd is enabled and started'), `${m} started`)
    t.notOk(
      run.named(m, 'changed').includes('Restart etcd'),
      `${m} is not restarted: it started with its configuration`,
    )
    t.same(l.host(m).unmatched, [], `${m} sent only expected commands`)
  }
  t.ok(cluster.auth)
  t.same(
    MEMBERS.map((m) => run.tasks(m).find((x) => x.name === AUTH_TASK)?.status).filter(Boolean),
    ['changed'],
    'auth enabled by one member (run through h.once: the others do not record it)',
  )
})

t.test('a converged cluster changes nothing', async (t) => {
  const { lab: l } = await lab()
  t.teardown(() => l.cleanup())
  await l.run(play)
  for (const m of MEMBERS) l.host(m).resetCalls()
  const again = await l.run(play)
  for (const m of MEMBERS) {
    t.equal(again.stats.get(m)?.changed, 0, `${m}: changed=0`)
    t.same(l.host(m).mutations, [], `${m}: no command changed it`)
  }
})

t.test('a member writes initial-cluster-state existing when it has data or a peer answers', async (t) => {
  const cases = [
    {
      state: 'peers run, this member has no data',
      setup: (l: ScriptedLab) =>
        ['db1', 'db2'].forEach((m) => l.host(m).setService('etcd', { enabled: true, active: true })),
    },
    {
      state: 'no peer answers, this member has data',
      setup: (l: ScriptedLab) => void l.host('db3').mkdir(DATA, { owner: 'etcd', mode: '0700' }),
    },
  ]
  for (const c of cases) {
    const { lab: l } = await lab()
    c.setup(l)
    const run = await l.run(play, { limit: 'db3' })
    t.ok(run.success, c.state)
    t.same(initialState(l.host('db3')), ['existing'], `${c.state}: existing, and no second bootstrap`)
    t.notOk(
      run.tasks('db3').some((x) => x.name === 'Record that the etcd cluster is bootstrapped'),
      `${c.state}: nothing to record`,
    )
    await l.cleanup()
  }
})

t.test('a changed setting restarts the members one at a time, each healthy before the next', async (t) => {
  const { lab: l } = await lab()
  t.teardown(() => l.cleanup())
  await l.run(play)
  for (const m of MEMBERS) l.host(m).writeFile(CONFIG, 'ETCD_HEARTBEAT_INTERVAL="50"\n')
  const run = await l.run(play)
  t.ok(run.success)
  for (const m of MEMBERS) {
    t.same(
      run.named(m, 'changed'),
      ['Ensure the etcd configuration is current', 'Restart etcd'],
      `${m}: config and its restart only`,
    )
    t.equal(l.host(m).service('etcd').restarts, 1)
  }
  // Every call of the three members in order: a restart follows a health check by the member restarted before it.
  const calls = MEMBERS.flatMap((m) => l.host(m).calls.map((c) => ({ ...c, host: m }))).sort((a, b) => a.seq - b.seq)
  const restarts = calls.filter((c) => c.kind === 'run' && /systemctl restart etcd/.test(c.target))
  t.equal(new Set(restarts.map((r) => r.host)).size, 3, 'each member restarted once')
  for (let i = 1; i < restarts.length; i++) {
    const before = restarts[i - 1]!
    const checked = calls.some(
      (c) =>
        c.host === before.host && c.seq > before.seq && c.seq < restarts[i]!.seq && /endpoint health/.test(c.target),
    )
    t.ok(checked, `${restarts[i]!.host} restarts only after ${before.host} was checked healthy`)
  }
})

t.test('check mode on fresh members reports the plan and writes nothing', async (t) => {
  const { lab: l, cluster } = await lab()
  t.teardown(() => l.cleanup())
  const run = await l.run(play, { check: true })
  t.ok(run.success)
  for (const m of MEMBERS) {
    const conn = l.host(m)
    t.ok(run.named(m, 'changed').includes('Ensure the etcd configuration is current'), `${m}: config would change`)
    t.ok(run.named(m, 'skipped').includes('Wait for every etcd member to be healthy'), `${m}: no waiting in check mode`)
    t.same(conn.writes, [], `${m}: no put`)
    t.same(conn.mutations, [], `${m}: no apply command`)
    t.same(conn.unmatched, [], `${m}: every command sent was a known read`)
  }
  t.notOk(cluster.auth)
})
