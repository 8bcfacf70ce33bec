/** Debian's main cluster is dropped only when it holds no user data; otherwise the run stops and says why. */
import t from 'tap'
import type { Connection, RunOptions, TaskContext } from '../../lib/types.ts'
import {
  clusterConfFile,
  dropDefaultClusterTask,
  parseClusterRow,
  userDataFromFiles,
} from '../../roles/postgresql/default-cluster.ts'
import { pathStateCommand } from '../../lib/facts/files.ts'

const LOG = '/var/log/postgresql/postgresql-15-main.log'
const ONLINE = `15  main    5432 online postgres /var/lib/postgresql/15/main ${LOG}\n`
const DOWN = `15  main    5432 down   postgres /var/lib/postgresql/15/main ${LOG}\n`

/**
 * A scripted host: answers the cluster file's state (there when pg_lsclusters lists the cluster, unless
 * `conf` says otherwise), pg_lsclusters, psql and the listing; records every other command.
 */
function scriptedHost(answers: { lsclusters?: string; psql?: string; listing?: string; conf?: string }) {
  const ran: string[] = []
  const missing = 'Error: specified cluster does not exist'
  const reply = (stdout: string, code = 0) => ({ code, stdout, stderr: code ? missing : '', durationMs: 0 })
  const conn = {
    async run(command: string | string[], _options?: RunOptions) {
      const text = Array.isArray(command) ? command.join(' ') : command
      if (text === pathStateCommand(clusterConfFile(15)))
        return reply(answers.conf ?? (answers.lsclusters ? 'regular file|644|postgres|postgres|29\n\n' : 'absent\n'))
      if (text.startsWith('pg_lsclusters')) return answers.lsclusters ? reply(answers.lsclusters) : reply('', 1)
      if (text.startsWith('psql')) return reply(answers.psql ?? '')
      if (text.startsWith('if [ -d')) return reply(answers.listing ?? '')
      ran.push(text)
      return reply('')
    },
  } as unknown as Connection
  return { ctx: { conn, check: false, diff: false, host: {} } as unknown as TaskContext, ran }
}

t.test('pg_lsclusters lines are read for port, state and data directory', async (t) => {
  t.same(parseClusterRow(ONLINE), { port: 5432, online: true, dataDir: '/var/lib/postgresql/15/main' })
  t.equal(parseClusterRow(DOWN)!.online, false)
  t.equal(parseClusterRow(''), undefined)
})

t.test('no main cluster: nothing to do', async (t) => {
  const { ctx } = scriptedHost({})
  t.equal((await dropDefaultClusterTask(15).check(ctx)).change, false)
})

t.test('without the cluster file pg_lsclusters is not run; a dead symlink still counts as a cluster', async (t) => {
  const asked: string[] = []
  const { ctx } = scriptedHost({ lsclusters: ONLINE, psql: '', conf: 'absent\n' })
  const run = ctx.conn.run.bind(ctx.conn)
  ctx.conn.run = async (command, options) => {
    asked.push(Array.isArray(command) ? command.join(' ') : command)
    return run(command, options)
  }
  t.equal((await dropDefaultClusterTask(15).check(ctx)).change, false)
  t.notOk(
    asked.some((c) => c.startsWith('pg_lsclusters')),
    'pg_lsclusters not run',
  )
  const linked = scriptedHost({ lsclusters: ONLINE, psql: '', conf: 'link\n/nowhere/postgresql.conf\n' })
  t.equal((await dropDefaultClusterTask(15).check(linked.ctx)).change, true, 'a dead symlink: listed and dropped')
  t.equal(clusterConfFile(15), '/etc/postgresql/15/main/postgresql.conf')
})

t.test('an empty running cluster is stopped and dropped', async (t) => {
  const { ctx, ran } = scriptedHost({ lsclusters: ONLINE, psql: '' })
  const plan = await dropDefaultClusterTask(15).check(ctx)
  t.equal(plan.change, true)
  if (plan.change) await plan.apply()
  t.same(ran, ['pg_dropcluster --stop 15 main'])
})

t.test('a running cluster with a database or a table of users is refused, naming them, and kept', async (t) => {
  const { ctx, ran } = scriptedHost({ lsclusters: ONLINE, psql: 'database shop\nrelation public.orders\n' })
  await t.rejects(
    dropDefaultClusterTask(15).check(ctx),
    new RegExp(
      String.raw`15/main cluster \(/var/lib/postgresql/15/main\) holds user data: ` +
        String.raw`database shop, relation public\.orders\..*pg_dumpall` +
        '.*postgresql_drop_default_cluster: false',
    ),
  )
  t.same(ran, [], 'nothing was dropped')
})

t.test('a stopped cluster is judged from its files: user OIDs start at 16384', async (t) => {
  t.same(userDataFromFiles(['1', '4', '5', 'pgsql_tmp'], ['1247', '1247_fsm', '2619', 'PG_VERSION']), [])
  t.same(userDataFromFiles(['1', '4', '5', '16390'], ['1247', '16385', '16385_fsm', '16388']), [
    'database with OID 16390',
    '2 relation file(s) of users in postgres',
  ])
  const { ctx, ran } = scriptedHost({ lsclusters: DOWN, listing: '1\n4\n5\n---\n1247\n16385\n' })
  await t.rejects(dropDefaultClusterTask(15).check(ctx), /holds user data: 1 relation file\(s\) of users in postgres/)
  t.same(ran, [])
  const empty = scriptedHost({ lsclusters: DOWN, listing: '1\n4\n5\n---\n1247\n2619\n' })
  t.equal((await dropDefaultClusterTask(15).check(empty.ctx)).change, true)
})
