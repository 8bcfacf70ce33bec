/** The Patroni data directory: system paths refused before any connection, and a parent never taken over. */
import t from 'tap'
import path from 'node:path'
import { tree } from '../fixtures/tree.ts'
import { InventoryErrors, loadInventory } from '../../lib/inventory/index.ts'
import { allRoles } from '../../roles/index.ts'
import { dataDirProblem, dataDirTask, parentOf } from '../../roles/patroni/datadir.ts'
import type { Connection, RunOptions, TaskContext } from '../../lib/types.ts'

t.test('the root, system directories and volatile file systems are refused as data directory', async (t) => {
  const system = ['/', '/etc', '/usr', '/var', '/var/lib', '/var/lib/', '/home', '/root', '/boot', '/bin', '/sbin']
  for (const dir of [...system, '/lib', '/srv']) t.ok(dataDirProblem(dir), `${dir} is refused`)
  t.match(dataDirProblem('/var/lib')!, /system directory/)
  t.match(dataDirProblem('/proc/1/pg')!, /lies in \/proc/)
  t.match(dataDirProblem('/tmp/pg')!, /lies in \/tmp/)
  t.match(dataDirProblem('/var/lib/../etc')!, /plain path/)
  t.match(dataDirProblem('/srv//pg')!, /plain path/)
  for (const dir of ['/var/lib/postgresql/15/patroni', '/srv/pgdata', '/data/pg', '/home/postgres/data'])
    t.equal(dataDirProblem(dir), undefined, `${dir} is accepted`)
  t.equal(parentOf('/srv/pgdata/'), '/srv')
  t.equal(parentOf('/pgdata'), '/')
})

t.test('a system data directory is bad input with its file, line and key, before any connection', async (t) => {
  const inventory = [
    'all:',
    '  children:',
    '    etcd: { hosts: { db1: { address: 10.0.0.1 }, db2: { address: 10.0.0.2 }, db3: { address: 10.0.0.3 } } }',
    '    postgres:',
    '      hosts: { db1: , db2: , db3: }',
    '      vars:',
    '        postgresql_data_dir: /var/lib',
    '',
  ].join('\n')
  const dir = await tree({ 'lab.yml': inventory })
  const err = await loadInventory(path.join(dir, 'lab.yml'), { roles: allRoles }).catch((e) => e)
  t.type(err, InventoryErrors)
  t.match(err.message, /lab\.yml:7 \(postgresql_data_dir\): \/var\/lib is a system directory/)
})

/** A scripted host: paths have a state (the stat line pathState reads); applied commands are recorded. */
function scriptedHost(states: Record<string, string>) {
  const ran: string[] = []
  const conn = {
    host: 'db1',
    commandCount: 0,
    async run(command: string | string[], _options?: RunOptions) {
      const text = String(command)
      const probe = /^p='?([^';]*)'?;/.exec(text)
      if (probe) return { code: 0, stdout: `${states[probe[1]!] ?? 'absent'}\n`, stderr: '', durationMs: 0 }
      ran.push(text)
      return { code: 0, stdout: '', stderr: '', durationMs: 0 }
    },
    async put() {},
    async get() {
      return Buffer.from('')
    },
    async close() {},
    async hold() {
      return { firstLine: 'locked', release: async () => undefined }
    },
  } as Connection
  const ctx = { conn, check: false, diff: false, host: {} } as unknown as TaskContext
  return { ctx, ran }
}

t.test('an existing parent keeps its owner and mode: only the data directory is created for postgres', async (t) => {
  const { ctx, ran } = scriptedHost({ '/srv': 'directory|755|root|root|4096' })
  const plan = await dataDirTask('/srv/pgdata').check(ctx)
  t.equal(plan.change, true)
  if (plan.change) await plan.apply()
  t.same(ran, ['install -d -o postgres -g postgres -m 0700 -- /srv/pgdata'])
  t.notMatch(ran.join('\n'), /\/srv(?!\/pgdata)/, 'nothing is run on /srv itself')
})

t.test('a missing parent is created for postgres, then the data directory', async (t) => {
  const { ctx, ran } = scriptedHost({})
  const plan = await dataDirTask('/data/pg/15').check(ctx)
  t.equal(plan.change, true)
  if (plan.change) await plan.apply()
  t.equal(ran.length, 1)
  t.equal(
    ran[0],
    'mkdir -p -- /data/pg && chown postgres:postgres -- /data/pg && chmod 0755 -- /data/pg && ' +
      'install -d -o postgres -g postgres -m 0700 -- /data/pg/15',
  )
})

t.test('an initialised data directory changes nothing', async (t) => {
  const { ctx } = scriptedHost({
    '/srv': 'directory|755|root|root|4096',
    '/srv/pgdata': 'directory|700|postgres|postgres|4096',
  })
  t.same(await dataDirTask('/srv/pgdata').check(ctx), { change: false, reason: undefined })
})
