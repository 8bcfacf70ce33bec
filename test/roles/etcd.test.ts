/**
 * The etcd role on three scripted members: bootstrap state `new` only when a
 * member has no data and no peer answers, `existing` otherwise; authentication
 * enabled once for the cluster; a converged cluster changes nothing; a changed
 * setting restarts the members one at a time, each health-checked before the
 * next; check mode writes nothing; a host added to a running cluster is registered
 * with `member add` before its first start and restarts no running member.
 */
import t from 'tap'
import { etcdRole } from '../../roles/etcd/index.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'
import { joinProblem, parseMemberList } from '../../roles/etcd/membership.ts'

const MEMBERS = ['db1', 'db2', 'db3']
const CONFIG = '/etc/default/etcd'
const DATA = '/var/lib/etcd/hastack/member'
const AUTH_TASK = 'Ensure etcd requires authentication (root and a Patroni user on its prefix)'
const play = [{ name: 'etcd', hosts: 'etcd', roles: [etcdRole], anyErrorsFatal: true }]

/** The scripted cluster: auth, the registered members (peer URL → name once started), and a way to add hosts. */
interface Cluster {
  auth: boolean
  registered: Map<string, string>
  /** Answer etcd's commands on this host too (a host added to the inventory later). */
  attach(host: string): void
}

const peerOf = (conn: ScriptedConnection) => `http://${conn.address}:2380`

/**
 * The cluster as etcdctl sees it: healthy while any member runs; anonymous requests refused
 * once the auth script ran; the inventory's first members registered from the bootstrap, a later
 * one by `member add`. Starting a member gives it a data directory and its name in the member list.
 */
function etcdCluster(lab: ScriptedLab): Cluster {
  const members: ScriptedConnection[] = []
  const cluster: Cluster = {
    auth: false,
    registered: new Map(MEMBERS.map((m) => [peerOf(lab.host(m)), ''])),
    attach(host) {
      const conn = lab.host(host)
      members.push(conn)
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
      // And the scheme of its peer URLs (a switch between plaintext and TLS is refused).
      conn.on(/sed -n 's\/\^ETCD_LISTEN_PEER_URLS=/, (_cmd, _opts, c) => ({
        code: 0,
        stdout: /^ETCD_LISTEN_PEER_URLS="(https?):/m.exec(c.readFile(CONFIG) ?? '')?.[1] ?? '',
      }))
      // The role reads a bootstrapped member's initial-cluster line with sed.
      conn.on(/sed -n 's\/\^ETCD_INITIAL_CLUSTER=/, (_cmd, _opts, c) => ({
        code: 0,
        stdout: /^ETCD_INITIAL_CLUSTER="(.*)"$/m.exec(c.readFile(CONFIG) ?? '')?.[1] ?? '',
      }))
      conn.on(/member list/, () => ({
        code: 0,
        stdout: [...cluster.registered]
          .map(([peer, name], i) => `${i + 1}0a, ${name ? 'started' : 'unstarted'}, ${name}, ${peer}, , false`)
          .join('\n'),
      }))
      conn.on(/member add/, (cmd, _opts, c) => {
        const peer = /--peer-urls=(http:\/\/[\d.]+:\d+)/.exec(cmd)![1]!
        cluster.registered.set(peer, '')
        c.mutated(`etcdctl member add ${peer}`)
        return { code: 0, stdout: `Member 40a added to cluster` }
      })
      conn.on(/systemctl start --no-block etcd/, (_cmd, _opts, c) => {
        if (!cluster.registered.has(peerOf(c))) return { code: 1, stderr: 'etcd: member not in the cluster' }
        cluster.registered.set(peerOf(c), host)
        c.setService('etcd', { enabled: true, active: true }).mkdir(DATA, { owner: 'etcd', mode: '0700' })
        c.mutated('systemctl start etcd')
        return { code: 0 }
      })
    },
  }
  for (const m of MEMBERS) cluster.attach(m)
  return cluster
}

async function lab(): Promise<{ lab: ScriptedLab; cluster: Cluster }> {
  const l = await scriptedLab(stackInventory())
  return { lab: l, cluster: etcdCluster(l) }
}

/** The shared inventory with more etcd members (db4 at 10.0.0.14, db5 at .15, ...). */
function grownInventory(added: string[]): Record<string, unknown> {
  const doc = stackInventory() as { all: { children: { etcd: { hosts: Record<string, unknown> } } } }
  added.forEach((name, i) => (doc.all.children.etcd.hosts[name] = { address: `10.0.0.${14 + i}` }))
  return doc
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

t.test('a host added to a running cluster is registered with member add before its first start', async (t) => {
  const { lab: l, cluster } = await lab()
  t.teardown(() => l.cleanup())
  t.ok((await l.run(play)).success, 'the first three members converge')
  await l.reconfigure(grownInventory(['db4']))
  cluster.attach('db4')
  for (const m of MEMBERS) l.host(m).resetCalls()
  const run = await l.run(play)
  t.ok(run.success)
  const db4 = l.host('db4')
  t.ok(run.named('db4', 'changed').includes('Ensure this member is registered with the running etcd cluster'))
  const seqOf = (pattern: RegExp) => db4.calls.find((c) => c.kind === 'run' && pattern.test(c.target))?.seq ?? -1
  t.ok(
    seqOf(/member add/) >= 0 && seqOf(/member add/) < seqOf(/systemctl start --no-block etcd/),
    'added, then started',
  )
  t.equal(cluster.registered.get('http://10.0.0.14:2380'), 'db4', 'db4 is a started member')
  const config = db4.written(CONFIG).at(-1) ?? ''
  t.match(config, /ETCD_INITIAL_CLUSTER_STATE="existing"/)
  t.match(config, /ETCD_INITIAL_CLUSTER="db1=[^"]*,db4=http:\/\/10\.0\.0\.14:2380"/, 'db4 starts with all four')
  for (const m of MEMBERS) {
    t.notOk(run.named(m, 'changed').includes('Ensure the etcd configuration is current'), `${m}: its file is kept`)
    t.equal(l.host(m).service('etcd').restarts, 0, `${m} is not restarted`)
    t.notOk(
      run.named(m, 'changed').includes('Ensure this member is registered with the running etcd cluster'),
      `${m} registers nothing`,
    )
  }
  const again = await l.run(play)
  for (const m of [...MEMBERS, 'db4']) t.equal(again.stats.get(m)?.changed, 0, `second run: ${m} changed=0`)
})

t.test('two hosts added in one run are refused before either is added or started', async (t) => {
  const { lab: l, cluster } = await lab()
  t.teardown(() => l.cleanup())
  await l.run(play)
  await l.reconfigure(grownInventory(['db4', 'db5']))
  cluster.attach('db4')
  cluster.attach('db5')
  const run = await l.run(play)
  t.notOk(run.success)
  for (const m of ['db4', 'db5']) {
    const task = run.tasks(m).find((x) => x.name === 'Ensure this member is registered with the running etcd cluster')
    t.match(task?.reason, /add one etcd member per run/, `${m} says why`)
    t.notOk(l.host(m).service('etcd').active, `${m} is not started`)
  }
  t.equal(cluster.registered.size, 3, 'the cluster still has its three members')
})

t.test('the member list decides who may join', async (t) => {
  const list = [
    '8e9e05c52164694d, started, db1, http://10.0.0.11:2380, http://10.0.0.11:2379, false',
    '91bc3c398fb3c146, unstarted, , http://10.0.0.14:2380, , false',
  ].join('\n')
  const parsed = parseMemberList(list)
  t.same(
    parsed.map((m) => [m.name, m.started, m.peerUrls]),
    [
      ['db1', true, ['http://10.0.0.11:2380']],
      ['', false, ['http://10.0.0.14:2380']],
    ],
  )
  t.equal(joinProblem(parsed.slice(0, 1), ['http://10.0.0.11:2380'], 'http://10.0.0.14:2380'), undefined)
  t.match(
    joinProblem(parsed.slice(0, 1), ['http://10.0.0.11:2380', 'http://10.0.0.12:2380'], 'http://10.0.0.14:2380'),
    /10\.0\.0\.12:2380 are not members/,
  )
  t.match(joinProblem(parsed, [], 'http://10.0.0.15:2380'), /members the inventory lacks \(db1, 91bc3c398fb3c146\)/)
})

t.test(
  'a running plaintext cluster is refused the switch to TLS before anything changes, naming the member',
  async (t) => {
    const { lab: l } = await lab()
    t.teardown(() => l.cleanup())
    t.ok((await l.run(play)).success)
    const before = l.host('db1').readFile(CONFIG)
    await l.reconfigure(stackInventory({ tls_enabled: true }))
    for (const m of MEMBERS) l.host(m).resetCalls()
    const run = await l.run(play)
    t.notOk(run.success)
    for (const m of MEMBERS) {
      t.match(
        run.tasks(m).find((x) => x.status === 'failed')?.reason ?? '',
        new RegExp(`etcd member ${m} runs with http peer URLs and etcd_tls asks for https`),
      )
      t.same(l.host(m).mutations, [], `${m}: nothing changed`)
    }
    t.equal(l.host('db1').readFile(CONFIG), before)
  },
)
