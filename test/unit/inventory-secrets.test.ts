/** Generated secrets: created once with mode 0600, reused, overridable, never leaked in errors. */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { tree } from '../fixtures/tree.ts'
import t from 'tap'
import { InventoryErrors, loadInventory, secretsOfRun, secretValues } from '../../lib/inventory/index.ts'
import type { Role } from '../../lib/types.ts'

const role: Role = {
  name: 'pg',
  description: 'test role',
  defaults: { pg_port: 5432 },
  schema: {
    pg_port: { type: 'integer', description: 'port' },
    pg_password: { type: 'string', secret: true, description: 'superuser password' },
    pg_replication_password: { type: 'string', secret: true, description: 'replication password' },
  },
  tasks: async () => {},
}
const inventory = 'all:\n  hosts:\n    db1: { address: 10.0.0.1 }\n    db2: { address: 10.0.0.2 }\n'

t.test('missing secrets are generated once into <inventory>.secrets.yml with mode 0600', async (t) => {
  const dir = await tree({ 'lab.yml': inventory })
  const inv = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] })
  const file = path.join(dir, 'lab.secrets.yml')
  t.equal((await stat(file)).mode & 0o777, 0o600)
  t.match(inv.secrets.pg_password, /^[A-Za-z0-9_-]{32}$/)
  t.match(inv.secrets.pg_replication_password, /^[A-Za-z0-9_-]{32}$/)
  t.not(inv.secrets.pg_password, inv.secrets.pg_replication_password)
  t.equal(inv.hosts.get('db1')!.vars.pg_password, inv.secrets.pg_password, 'hosts get the secret')
  t.equal(inv.hosts.get('db2')!.vars.pg_password, inv.secrets.pg_password, 'one value for every host')
  t.equal(inv.hosts.get('db1')!.origins.pg_password.file, file)
  t.ok((await readFile(file, 'utf8')).includes(`pg_password: ${inv.secrets.pg_password}`))
  t.same(secretValues(inv).sort(), [inv.secrets.pg_password, inv.secrets.pg_replication_password].sort())

  const before = await readFile(file, 'utf8')
  const again = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] })
  t.same(again.secrets, inv.secrets, 'a second load reuses the stored secrets')
  t.equal(await readFile(file, 'utf8'), before, 'the file is not rewritten')
})

t.test('a user-set value wins over the stored secret and is masked too', async (t) => {
  const dir = await tree({ 'lab.yml': inventory, 'host_vars/db1.yml': 'pg_password: chosen-by-user-0123\n' })
  const inv = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] })
  t.equal(inv.hosts.get('db1')!.vars.pg_password, 'chosen-by-user-0123')
  t.equal(
    inv.hosts.get('db2')!.vars.pg_password,
    inv.secrets.pg_password,
    'hosts without a value get the generated one',
  )
  t.ok(secretValues(inv).includes('chosen-by-user-0123'))
})

t.test('a secret set for every host is not generated', async (t) => {
  const dir = await tree({ 'lab.yml': inventory, 'group_vars/all.yml': 'pg_password: everywhere-0123456\n' })
  const inv = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] })
  t.equal(inv.secrets.pg_password, undefined)
  t.match(inv.secrets.pg_replication_password, /^[A-Za-z0-9_-]{32}$/)
})

t.test('an explicit secrets file is used', async (t) => {
  const dir = await tree({ 'lab.yml': inventory })
  const file = path.join(dir, 'elsewhere', 's.yml')
  await mkdir(path.dirname(file))
  await loadInventory(path.join(dir, 'lab.yml'), { roles: [role], secretsFile: file })
  t.equal((await stat(file)).mode & 0o777, 0o600)
})

t.test('a group- or world-readable secrets file is refused', async (t) => {
  const dir = await tree({ 'lab.yml': inventory, 'lab.secrets.yml': 'pg_password: sup3r-s3cret-value\n' })
  await chmod(path.join(dir, 'lab.secrets.yml'), 0o644)
  const error = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] }).catch((e) => e)
  t.type(error, InventoryErrors)
  t.match(
    error.message,
    /secrets file .*lab\.secrets\.yml is readable by group or others \(mode 0644\): run chmod 600 /,
  )
  t.notMatch(error.message, /sup3r-s3cret-value/)
})

t.test('no error message ever shows a secret value', async (t) => {
  const dir = await tree({
    'lab.yml': inventory,
    'lab.secrets.yml': 'pg_password: stored-secret-value\n',
    'host_vars/db1.yml': 'pg_replication_password: [user-secret-in-a-list]\n',
  })
  await chmod(path.join(dir, 'lab.secrets.yml'), 0o600)
  const leaky: Role = { ...role, name: 'leaky', validate: (inv) => [`password is ${inv.secrets.pg_password}`] }
  const error = await loadInventory(path.join(dir, 'lab.yml'), { roles: [leaky] }).catch((e) => e)
  t.type(error, InventoryErrors)
  t.notMatch(error.message, /stored-secret-value/)
  t.notMatch(error.message, /user-secret-in-a-list/)
  t.match(error.message, /must be string, got \*\*\*/)
  t.match(error.message, /role leaky: password is \*\*\*/)
  t.equal((await stat(path.join(dir, 'lab.secrets.yml'))).mode & 0o777, 0o600)
  t.equal(
    await readFile(path.join(dir, 'lab.secrets.yml'), 'utf8'),
    'pg_password: stored-secret-value\n',
    'nothing written when invalid',
  )
})

t.test('a user-supplied secret shorter than 16 characters is refused with its file, line and key', async (t) => {
  const dir = await tree({ 'lab.yml': inventory, 'host_vars/db1.yml': 'pg_port: 5432\npg_password: short-pw\n' })
  const extraVars = ['pg_replication_password=tiny']
  const err = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role], extraVars }).catch((e) => e)
  t.type(err, InventoryErrors)
  const messages = (err as InventoryErrors).errors.map((e) => e.message)
  const said = (pattern: RegExp) => messages.some((m) => pattern.test(m))
  t.ok(said(/host_vars\/db1\.yml:2 \(pg_password\): secret pg_password is too short \(8 characters\)/))
  t.ok(said(/<command line>:1 \(pg_replication_password\): secret pg_replication_password is too short/))
  t.notMatch(err.message, /short-pw|tiny/, 'the values are not shown')
  await t.rejects(stat(path.join(dir, 'lab.secrets.yml')), 'nothing is written')
})

t.test('a user-supplied secret of exactly 16 characters is accepted', async (t) => {
  const dir = await tree({ 'lab.yml': inventory, 'group_vars/all.yml': 'pg_password: sixteen-chars-ok\n' })
  const inv = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] })
  t.equal(inv.hosts.get('db1')!.vars.pg_password, 'sixteen-chars-ok')
})

t.test('a secret whose schema caps its length is generated that long and may be set that short', async (t) => {
  const capped: Role = {
    ...role,
    schema: {
      ...role.schema,
      pin: { type: 'string', maxLength: 8, secret: true, description: 'an 8-character secret' },
    },
  }
  const dir = await tree({ 'lab.yml': inventory })
  const inv = await loadInventory(path.join(dir, 'lab.yml'), { roles: [capped] })
  t.match(inv.secrets.pin, /^[A-Za-z0-9_-]{8}$/, 'generated with the 8 characters its schema allows')
  t.match(inv.secrets.pg_password, /^[A-Za-z0-9_-]{32}$/, 'an uncapped secret keeps 32')
  const set = await tree({ 'lab.yml': inventory, 'group_vars/all.yml': 'pin: eight-ch\n' })
  t.equal((await loadInventory(path.join(set, 'lab.yml'), { roles: [capped] })).hosts.get('db1')!.vars.pin, 'eight-ch')
  const short = await tree({ 'lab.yml': inventory, 'group_vars/all.yml': 'pin: seven-c\n' })
  const err = await loadInventory(path.join(short, 'lab.yml'), { roles: [capped] }).catch((e) => e)
  t.match(err.message, /secret pin is too short \(7 characters\): use at least 8/)
})

t.test('a refused run can put the secrets file back as it was before it generated secrets', async (t) => {
  const dir = await tree({ 'lab.yml': inventory, 'lab.secrets.yml': 'pg_password: kept-from-before-0123\n' })
  const file = path.join(dir, 'lab.secrets.yml')
  await chmod(file, 0o600)
  const inv = await loadInventory(path.join(dir, 'lab.yml'), { roles: [role] })
  t.same([...secretsOfRun(inv).generated], ['pg_replication_password'])
  t.match(await readFile(file, 'utf8'), /pg_replication_password: /)
  await secretsOfRun(inv).restore()
  t.equal(await readFile(file, 'utf8'), 'pg_password: kept-from-before-0123\n')
  t.equal((await stat(file)).mode & 0o777, 0o600)

  const fresh = await tree({ 'lab.yml': inventory })
  const first = await loadInventory(path.join(fresh, 'lab.yml'), { roles: [role] })
  await secretsOfRun(first).restore()
  await t.rejects(stat(path.join(fresh, 'lab.secrets.yml')), 'a file this run created is removed')
})
