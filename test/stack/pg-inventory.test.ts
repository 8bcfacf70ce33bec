/**
 * Wrong inventories for the PostgreSQL HA roles are refused with a clear error
 * before anything connects: two hosts with one address, an even etcd member
 * count, a PostgreSQL parameter of the wrong type, Patroni timings that cannot
 * work. No lab needed: only the loader and the roles' schemas and checks.
 */
import t from 'tap'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadInventory } from '../../lib/inventory/index.ts'
import { allRoles } from '../../roles/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'hastack-pg-inv-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
/** Write an inventory (YAML text) and load it with every role. */
async function load(yaml: string) {
  const file = join(dir, `inv${n++}.yml`)
  writeFileSync(file, yaml)
  return loadInventory(file, { roles: allRoles })
}

const hosts = (addresses: string[], extra = '') => `all:
  vars:
    ssh_user: hastack
${extra}
  children:
    etcd:
      hosts:
${addresses.map((a, i) => `        db${i + 1}: { address: ${a} }`).join('\n')}
    postgres:
      hosts:
${addresses.map((_, i) => `        db${i + 1}:`).join('\n')}
`

t.test('a valid three-member inventory loads, with generated secrets', async (t) => {
  const inv = await load(hosts(['10.0.0.1', '10.0.0.2', '10.0.0.3']))
  const v = inv.hosts.get('db1')!.vars
  t.equal(v.patroni_ttl, 30)
  t.type(v.patroni_superuser_password, 'string')
  t.ok(String(v.patroni_superuser_password).length >= 20, 'a generated superuser password')
  t.equal(
    v.patroni_superuser_password,
    inv.hosts.get('db2')!.vars.patroni_superuser_password,
    'one secret for every host',
  )
})

t.test('two hosts with one address are refused', async (t) => {
  await t.rejects(load(hosts(['10.0.0.1', '10.0.0.1', '10.0.0.3'])), /db1 .*db2 have the same address 10\.0\.0\.1/)
})

t.test('an even etcd member count is refused', async (t) => {
  await t.rejects(load(hosts(['10.0.0.1', '10.0.0.2'])), /role etcd: group etcd has 2 etcd members: use an odd count/)
})

t.test('a PostgreSQL parameter of the wrong type is refused, naming its line', async (t) => {
  const extra = `    postgresql_parameters:\n      max_connections: lots\n`
  await t.rejects(
    load(hosts(['10.0.0.1', '10.0.0.2', '10.0.0.3'], extra)),
    /inv\d+\.yml:5 .*max_connections.*must be integer, got "lots"/s,
  )
})

t.test('a memory size that is no size is refused', async (t) => {
  const extra = `    postgresql_parameters:\n      shared_buffers: plenty\n`
  await t.rejects(load(hosts(['10.0.0.1', '10.0.0.2', '10.0.0.3'], extra)), /shared_buffers/)
})

t.test('Patroni timings that cannot hold the leader lock are refused', async (t) => {
  const extra = `    patroni_ttl: 20\n    patroni_loop_wait: 10\n    patroni_retry_timeout: 10\n`
  await t.rejects(
    load(hosts(['10.0.0.1', '10.0.0.2', '10.0.0.3'], extra)),
    /patroni_loop_wait \+ 2 × patroni_retry_timeout \(30\) must not exceed patroni_ttl \(20\)/,
  )
})

t.test('strict synchronous mode without synchronous mode is refused', async (t) => {
  const extra = `    patroni_synchronous_mode_strict: true\n`
  await t.rejects(
    load(hosts(['10.0.0.1', '10.0.0.2', '10.0.0.3'], extra)),
    /patroni_synchronous_mode_strict needs patroni_synchronous_mode/,
  )
})

t.test('a misspelt role variable gets a suggestion', async (t) => {
  const extra = `    patroni_tll: 30\n`
  await t.rejects(
    load(hosts(['10.0.0.1', '10.0.0.2', '10.0.0.3'], extra)),
    /unknown variable patroni_tll — did you mean patroni_ttl\?/,
  )
})
