/** The secrets file encrypted at rest (age): generated, reused, refused with a wrong or missing key; the command. */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { Decrypter, armor, generateIdentity } from 'age-encryption'
import { tree } from '../fixtures/tree.ts'
import { InventoryErrors, loadInventory } from '../../lib/inventory/index.ts'
import type { Role } from '../../lib/types.ts'
import { secretsCommand } from '../../scripts/secrets.ts'

const role: Role = {
  name: 'pg',
  description: 'test role',
  defaults: {},
  schema: { pg_password: { type: 'string', secret: true, description: 'superuser password' } },
  tasks: async () => {},
}
const hosts = '  hosts:\n    db1: { address: 10.0.0.1 }\n'

/** An inventory directory whose `all.vars` name a fresh age identity in `prod.key` (mode 0600). */
async function keyedInventory(extra = '') {
  const identity = await generateIdentity()
  const dir = await tree({ 'prod.yml': `all:\n  vars:\n    secrets_key_file: prod.key\n${hosts}${extra}` })
  await writeFile(path.join(dir, 'prod.key'), `# created: by the test\n${identity}\n`, { mode: 0o600 })
  return { dir, inventory: path.join(dir, 'prod.yml'), secrets: path.join(dir, 'prod.secrets.yml'), identity }
}

async function decryptWith(identity: string, file: string): Promise<string> {
  const d = new Decrypter()
  d.addIdentity(identity)
  return d.decrypt(armor.decode((await readFile(file, 'utf8')).trim()), 'text')
}

/** Capture what the secrets command writes. */
function streams() {
  const out = { text: '', write: (s: string) => (out.text += s) }
  const err = { text: '', write: (s: string) => (err.text += s) }
  return { out, err }
}

t.test('with a key named, generated secrets are written encrypted (age, 0600) and reused', async (t) => {
  const { inventory, secrets, identity } = await keyedInventory()
  const inv = await loadInventory(inventory, { roles: [role] })
  const text = await readFile(secrets, 'utf8')
  t.equal((await stat(secrets)).mode & 0o777, 0o600)
  t.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----/)
  t.notOk(text.includes(inv.secrets.pg_password!), 'the secret is not readable in the file')
  t.match(await decryptWith(identity, secrets), `pg_password: ${inv.secrets.pg_password}`, 'the age tools can read it')
  const again = await loadInventory(inventory, { roles: [role] })
  t.equal(again.secrets.pg_password, inv.secrets.pg_password, 'secrets are generated once and reused')
  t.equal(await readFile(secrets, 'utf8'), text, 'the file is not rewritten')
})

t.test('a wrong key is bad input naming the file and where the key came from; the file is kept', async (t) => {
  const { dir, inventory, secrets } = await keyedInventory()
  await loadInventory(inventory, { roles: [role] })
  const before = await readFile(secrets, 'utf8')
  await writeFile(path.join(dir, 'prod.key'), `${await generateIdentity()}\n`, { mode: 0o600 })
  const err = await loadInventory(inventory, { roles: [role] }).catch((e) => e)
  t.type(err, InventoryErrors)
  t.match(err.message, /cannot decrypt the secrets file .*prod\.secrets\.yml with the key file .*prod\.key: wrong key/)
  t.equal(await readFile(secrets, 'utf8'), before)
})

t.test('an encrypted file without a key named is refused, not regenerated', async (t) => {
  const { inventory, secrets } = await keyedInventory()
  await loadInventory(inventory, { roles: [role] })
  const before = await readFile(secrets, 'utf8')
  await writeFile(inventory, `all:\n${hosts}`)
  const err = await loadInventory(inventory, { roles: [role] }).catch((e) => e)
  t.match(err.message, /prod\.secrets\.yml is encrypted: name its key with secrets_key_file or secrets_key_env/)
  t.equal(await readFile(secrets, 'utf8'), before)
})

t.test('the key may be named only where every host sees it, and its file must be private', async (t) => {
  const { dir, inventory } = await keyedInventory()
  await mkdir(path.join(dir, 'host_vars'))
  await writeFile(path.join(dir, 'host_vars', 'db1.yml'), 'secrets_key_env: HASTACK_KEY\n')
  const misplaced = await loadInventory(inventory, { roles: [role] }).catch((e) => e)
  t.match(misplaced.message, /db1\.yml:1 \(secrets_key_env\): secrets_key_env must be set for the whole inventory/)
  const open = await keyedInventory()
  await chmod(path.join(open.dir, 'prod.key'), 0o644)
  const readable = await loadInventory(open.inventory, { roles: [role] }).catch((e) => e)
  t.match(readable.message, /prod\.yml:3 \(all\.vars\.secrets_key_file\): secrets key file .*prod\.key/)
  t.match(readable.message, /prod\.key is readable by group or others \(mode 0644\)/)
})

t.test('a key in an environment variable: unset is refused; a passphrase works', async (t) => {
  const dir = await tree({ 'prod.yml': `all:\n  vars:\n    secrets_key_env: HASTACK_TEST_SECRETS_KEY\n${hosts}` })
  delete process.env.HASTACK_TEST_SECRETS_KEY
  const unset = await loadInventory(path.join(dir, 'prod.yml'), { roles: [role] }).catch((e) => e)
  t.match(unset.message, /names the environment variable HASTACK_TEST_SECRETS_KEY, which is not set/)
  process.env.HASTACK_TEST_SECRETS_KEY = 'correct-horse-battery-staple-42'
  t.teardown(() => void delete process.env.HASTACK_TEST_SECRETS_KEY)
  const inv = await loadInventory(path.join(dir, 'prod.yml'), { roles: [role] })
  const text = await readFile(path.join(dir, 'prod.secrets.yml'), 'utf8')
  t.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----/)
  t.notOk(text.includes(inv.secrets.pg_password!))
})

t.test('the secrets command encrypts, decrypts and rekeys an existing file, keeping every value', async (t) => {
  const dir = await tree({ 'prod.yml': `all:\n${hosts}` })
  const inventory = path.join(dir, 'prod.yml')
  const secrets = path.join(dir, 'prod.secrets.yml')
  const plain = await loadInventory(inventory, { roles: [role] })
  const value = plain.secrets.pg_password!

  let io = streams()
  t.equal(await secretsCommand(['encrypt', '-i', inventory], io.out, io.err), 1, 'no key named: bad input')
  t.match(io.err.text, /name the key of .*prod\.secrets\.yml first/)

  const identity = await generateIdentity()
  await writeFile(path.join(dir, 'prod.key'), `${identity}\n`, { mode: 0o600 })
  await writeFile(inventory, `all:\n  vars:\n    secrets_key_file: prod.key\n${hosts}`)
  io = streams()
  t.equal(await secretsCommand(['encrypt', '-i', inventory], io.out, io.err), 0)
  t.match(io.out.text, /prod\.secrets\.yml is now encrypted with the key file/)
  t.match(await decryptWith(identity, secrets), `pg_password: ${value}`)
  t.equal((await loadInventory(inventory, { roles: [role] })).secrets.pg_password, value)

  const next = await generateIdentity()
  await writeFile(path.join(dir, 'next.key'), `${next}\n`, { mode: 0o600 })
  io = streams()
  const rekey = ['rekey', '-i', inventory, '--new-key-file', path.join(dir, 'next.key')]
  t.equal(await secretsCommand(rekey, io.out, io.err), 0)
  t.match(await decryptWith(next, secrets), `pg_password: ${value}`)
  const stale = await loadInventory(inventory, { roles: [role] }).catch((e) => e)
  t.match(stale.message, /wrong key/, 'the old key no longer opens it')
  await writeFile(inventory, `all:\n  vars:\n    secrets_key_file: next.key\n${hosts}`)

  io = streams()
  t.equal(await secretsCommand(['decrypt', '-i', inventory], io.out, io.err), 0)
  t.match(await readFile(secrets, 'utf8'), `pg_password: ${value}`)
  t.equal((await stat(secrets)).mode & 0o777, 0o600)
  t.notOk(io.out.text.includes(value) || io.err.text.includes(value), 'no secret printed')

  io = streams()
  t.equal(await secretsCommand(['scramble', '-i', inventory], io.out, io.err), 1)
  t.equal(await secretsCommand(['encrypt', '--chek', '-i', inventory], io.out, io.err), 1)
  t.match(io.err.text, /Unknown option '--chek'/)
})
