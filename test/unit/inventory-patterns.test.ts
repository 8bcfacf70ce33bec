/** Host patterns as Ansible reads them: names, groups, globs, union, intersection, exclusion. */
import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { loadInventory, selectHosts } from '../../lib/inventory/index.ts'

const dir = await mkdtemp(path.join(os.tmpdir(), 'hastack-inv-'))
await writeFile(
  path.join(dir, 'inv.yml'),
  `all:
  hosts:
    mon1: { address: 10.0.0.9 }
  children:
    pg:
      children:
        db:
          hosts:
            db1: { address: 10.0.0.1 }
            db2: { address: 10.0.0.2 }
        replica:
          hosts:
            db2:
            db3: { address: 10.0.0.3 }
    cache:
      hosts:
        redis1: { address: 10.0.0.4 }
        db3:
    empty: {}
`,
)
const inv = await loadInventory(path.join(dir, 'inv.yml'))

t.test('a host, a group (recursively), all and *', async (t) => {
  t.same(inv.select('db1'), ['db1'])
  t.same(inv.select('pg'), ['db1', 'db2', 'db3'])
  t.same(inv.select('all'), ['mon1', 'db1', 'db2', 'db3', 'redis1'])
  t.same(inv.select('*'), ['mon1', 'db1', 'db2', 'db3', 'redis1'])
  t.same(inv.select('empty'), [], 'an existing empty group matches nothing without error')
})

t.test('globs match host and group names', async (t) => {
  t.same(inv.select('db*'), ['db1', 'db2', 'db3'])
  t.same(inv.select('re*'), ['db2', 'db3', 'redis1'], 'group replica and host redis1')
  t.same(inv.select('db[13]'), ['db1', 'db3'])
  t.same(inv.select('mon?'), ['mon1'])
})

t.test('union with : or , keeps inventory order', async (t) => {
  t.same(inv.select('redis1:db1'), ['db1', 'redis1'])
  t.same(inv.select('cache,mon1'), ['mon1', 'db3', 'redis1'])
})

t.test('intersection and exclusion apply after unions', async (t) => {
  t.same(inv.select('pg:&cache'), ['db3'])
  t.same(inv.select('pg:!replica'), ['db1'])
  t.same(inv.select('pg:!replica:cache'), ['db1', 'redis1'], 'the later union still joins before the exclusion')
  t.same(inv.select('db:replica:&cache'), ['db3'])
  t.same(inv.select('!pg'), ['mon1', 'redis1'], 'an exclusion alone starts from all')
  t.same(selectHosts(inv, 'all:!db*'), ['mon1', 'redis1'])
})

t.test('an unknown name is an InputError', async (t) => {
  t.throws(() => inv.select('dbx'), { name: 'InputError', message: 'pattern "dbx" matches no host or group' })
  t.throws(() => inv.select('pg:!nope'), { message: 'pattern "nope" matches no host or group (in pattern "pg:!nope")' })
  t.throws(() => inv.select('zz*'), { message: 'pattern "zz*" matches no host or group' })
  t.throws(() => inv.select(''), { name: 'InputError' })
})
