/**
 * Inventory validation: every problem reported with its exact file, line and key,
 * all problems together, before anything else happens.
 */
import path from 'node:path'
import { tree } from '../fixtures/tree.ts'
import t, { type Test } from 'tap'
import { InventoryErrors, loadInventory } from '../../lib/inventory/index.ts'
import { InputError, type Role } from '../../lib/types.ts'

const patroni: Role = {
  name: 'patroni',
  description: 'test role',
  defaults: { patroni_ttl: 30 },
  schema: {
    patroni_ttl: { type: 'integer', description: 'leader lease TTL' },
    patroni_mode: { type: 'string', enum: ['sync', 'async'], description: 'replication mode' },
    patroni_password: { type: 'string', secret: true, description: 'superuser password' },
  },
  validate: (inv) =>
    inv.groupHosts('db').length === 2 ? [`group db has ${inv.groupHosts('db').length} hosts, needs an odd count`] : [],
  tasks: async () => {},
}

/** Load and return the problems' messages (fails the test when loading succeeds). */
async function problems(
  t: Test,
  dir: string,
  options: Parameters<typeof loadInventory>[1] = { roles: [patroni] },
): Promise<string[]> {
  try {
    await loadInventory(path.join(dir, 'inv.yml'), options)
  } catch (err) {
    t.type(err, InventoryErrors)
    t.type(err, InputError)
    return (err as InventoryErrors).errors.map((e) => e.message)
  }
  t.fail('loading should have failed')
  return []
}

const good = 'all:\n  children:\n    db:\n      hosts:\n        db1: { address: 10.0.0.1 }\n'

t.test('structure: unknown keys, bad names, non-map host entries, unknown top-level key', async (t) => {
  const dir = await tree({
    'inv.yml': `all:
  hostz: {}
  children:
    db:
      hosts:
        db1: { address: 10.0.0.1 }
        "bad host": { address: 10.0.0.2 }
        db3: 42
extra: {}
`,
  })
  const f = path.join(dir, 'inv.yml')
  t.same(
    (await problems(t, dir)).sort(),
    [
      `${f}:2 (all.hostz): unknown key "hostz": a group holds only hosts, children and vars`,
      `${f}:7 (all.children.db.hosts.bad host): invalid host name "bad host": must be a host name (letters, digits and \`-\` in dot-separated labels, not starting with \`-\`)`,
      `${f}:8 (all.children.db.hosts.db3): a host entry must be a map or null, got 42`,
      `${f}:9 (extra): unknown top-level key "extra": an inventory holds only the group "all"`,
    ].sort(),
  )
})

t.test('structure: a group containing itself is a cycle', async (t) => {
  const dir = await tree({
    'inv.yml': `all:
  children:
    a:
      children:
        b:
          children:
            a:
              hosts: { h1: { address: 10.0.0.1 } }
`,
  })
  const messages = await problems(t, dir)
  t.equal(messages.length, 1)
  t.equal(
    messages[0],
    `${path.join(dir, 'inv.yml')}:7 (all.children.a.children.b.children.a): group cycle: a → b → a (a group cannot contain itself)`,
  )
})

t.test('wrong type in the inventory file names file, line, key and expectation', async (t) => {
  const dir = await tree({
    'inv.yml': `all:
  children:
    db:
      vars:
        patroni_ttl: thirty
      hosts:
        db1: { address: 10.0.0.1 }
`,
  })
  t.same(await problems(t, dir), [
    `${path.join(dir, 'inv.yml')}:5 (all.children.db.vars.patroni_ttl): must be integer, got "thirty"`,
  ])
})

t.test('wrong type in a group_vars file points at that file', async (t) => {
  const dir = await tree({ 'inv.yml': good, 'group_vars/db.yml': '# tuning\npatroni_mode: fast\n' })
  t.same(await problems(t, dir), [
    `${path.join(dir, 'group_vars/db.yml')}:2 (patroni_mode): must be one of "sync", "async", got "fast"`,
  ])
})

t.test('a bad connection variable in a host_vars directory file', async (t) => {
  const dir = await tree({ 'inv.yml': good, 'host_vars/db1/lab.yml': 'ssh_port: 70000\naddress: not_a_host!\n' })
  t.same((await problems(t, dir)).sort(), [
    `${path.join(dir, 'host_vars/db1/lab.yml')}:1 (ssh_port): must be <= 65535, got 70000`,
    `${path.join(dir, 'host_vars/db1/lab.yml')}:2 (address): must be an IPv4 address or a hostname, got "not_a_host!"`,
  ])
})

t.test('an unknown variable suggests the closest known name', async (t) => {
  const dir = await tree({ 'inv.yml': good, 'group_vars/all.yml': 'patroni_tll: 20\nzzz_qqq: 1\n' })
  t.same(await problems(t, dir), [
    `${path.join(dir, 'group_vars/all.yml')}:1 (patroni_tll): unknown variable patroni_tll — did you mean patroni_ttl?`,
    `${path.join(dir, 'group_vars/all.yml')}:2 (zzz_qqq): unknown variable zzz_qqq (no role nor the engine declares it)`,
  ])
})

t.test('without roles, unknown variables are not reported but engine variables are checked', async (t) => {
  const dir = await tree({ 'inv.yml': good, 'group_vars/all.yml': 'patroni_tll: 20\nbecome: maybe\n' })
  t.same(await problems(t, dir, {}), [
    `${path.join(dir, 'group_vars/all.yml')}:2 (become): must be boolean, got "maybe"`,
  ])
})

t.test('a bad -e value points at the command line', async (t) => {
  const dir = await tree({ 'inv.yml': good })
  t.same(await problems(t, dir, { roles: [patroni], extraVars: ['patroni_mode=sync', 'patroni_ttl=thirty', 'oops'] }), [
    '<command line>:2 (patroni_ttl): must be integer, got "thirty"',
    '<command line>:3: -e "oops": expected key=value or @file.yml',
  ])
})

t.test('two hosts with the same address are named with their lines', async (t) => {
  const dir = await tree({
    'inv.yml': `all:
  hosts:
    db1: { address: 10.0.0.1 }
    db2:
    db3: { address: 10.0.0.3 }
`,
    'host_vars/db2.yml': 'address: 10.0.0.1\n',
  })
  const f = path.join(dir, 'inv.yml')
  t.same(await problems(t, dir), [
    `${path.join(dir, 'host_vars/db2.yml')}:1 (address): hosts db1 (${f}:3) and db2 have the same address 10.0.0.1`,
  ])
})

t.test('three hosts sharing an address make one error naming all of them', async (t) => {
  const dir = await tree({ 'inv.yml': 'all:\n  vars:\n    address: 10.0.0.1\n  hosts:\n    a:\n    b:\n    c:\n' })
  const f = path.join(dir, 'inv.yml')
  t.same(await problems(t, dir, {}), [
    `${f}:3 (all.vars.address): hosts a (${f}:3), b and c (${f}:3) have the same address 10.0.0.1`,
  ])
})

t.test('a host without an address is reported at its entry', async (t) => {
  const dir = await tree({ 'inv.yml': 'all:\n  hosts:\n    lonely:\n' })
  t.same(await problems(t, dir), [
    `${path.join(dir, 'inv.yml')}:3 (all.hosts.lonely): host lonely has no address (set address in its entry or in host_vars/lonely.yml)`,
  ])
})

t.test("a role's cross-host check becomes an error", async (t) => {
  const dir = await tree({ 'inv.yml': good + '        db2: { address: 10.0.0.2 }\n' })
  t.same(await problems(t, dir), ['role patroni: group db has 2 hosts, needs an odd count'])
})

t.test('roles declaring different defaults for one variable are reported', async (t) => {
  const dir = await tree({ 'inv.yml': good })
  const other: Role = { ...patroni, name: 'other', defaults: { patroni_ttl: 10 }, validate: undefined }
  t.same(await problems(t, dir, { roles: [patroni, other] }), [
    'roles patroni and other declare different defaults for patroni_ttl (a bug in the roles)',
  ])
})

t.test('a YAML syntax error names file and line', async (t) => {
  const dir = await tree({ 'inv.yml': good, 'group_vars/db.yml': 'patroni_ttl: 30\npatroni_mode: [sync\n' })
  const messages = await problems(t, dir)
  t.equal(messages.length, 1)
  t.match(
    messages[0],
    new RegExp(`^${path.join(dir, 'group_vars/db.yml').replace(/[.]/g, '\\.')}:\\d+: YAML syntax error: `),
  )
  const dir2 = await tree({ 'inv.yml': 'all:\n  hosts:\n    a: { address: 10.0.0.1 }\n    a: { address: 10.0.0.2 }\n' })
  t.match(
    await problems(t, dir2),
    [new RegExp(`inv\\.yml:4: YAML syntax error: Map keys must be unique`)],
    'duplicate keys too',
  )
})

t.test('several problems are reported together in one error', async (t) => {
  const dir = await tree({
    'inv.yml': `all:
  vars:
    patroni_ttl: thirty
  hosts:
    a: { address: 10.0.0.1, patroni_modee: sync }
    b: { address: 10.0.0.1 }
`,
  })
  let error: InventoryErrors | undefined
  try {
    await loadInventory(path.join(dir, 'inv.yml'), { roles: [patroni], extraVars: ['patroni_mode=fast'] })
  } catch (err) {
    error = err as InventoryErrors
  }
  t.ok(error)
  t.equal(error!.errors.length, 4)
  const f = path.join(dir, 'inv.yml')
  t.match(error!.message, /^invalid inventory, 4 problems:\n/)
  for (const line of [
    `${f}:3 (all.vars.patroni_ttl): must be integer, got "thirty"`,
    `${f}:5 (all.hosts.a.patroni_modee): unknown variable patroni_modee — did you mean patroni_mode?`,
    `${f}:6 (all.hosts.b.address): hosts a (${f}:5) and b have the same address 10.0.0.1`,
    `<command line>:1 (patroni_mode): must be one of "sync", "async", got "fast"`,
  ])
    t.ok(error!.message.includes(`  - ${line}`), line)
})

t.test('a wrong-type secret never shows its value', async (t) => {
  const dir = await tree({ 'inv.yml': good, 'group_vars/db.yml': 'patroni_password: 123456789\n' })
  const messages = await problems(t, dir)
  t.same(messages, [`${path.join(dir, 'group_vars/db.yml')}:1 (patroni_password): must be string, got ***`])
})
