/**
 * Inventory loading: precedence across every layer, origins of winning values,
 * extra vars, group membership and connection specs.
 */
import os from 'node:os'
import path from 'node:path'
import { tree } from '../fixtures/tree.ts'
import t from 'tap'
import { loadInventory } from '../../lib/inventory/index.ts'
import type { Role } from '../../lib/types.ts'

const names = ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9', 'v10', 'v11', 'v12', 'sib', 'n', 'b', 's']
const testRole: Role = {
  name: 'test',
  description: 'declares the variables of the precedence fixture',
  defaults: { v0: 'default', v1: 'default' },
  schema: Object.fromEntries(names.map((n) => [n, { description: n }])),
  tasks: async () => {},
}

// Each vN is set in layer N-1 and layer N, so layer N must win.
const precedenceFixture = {
  'inv.yml': `all:
  vars:
    v1: all-vars
    v2: all-vars
  hosts:
    solo: { address: 10.0.0.9 }
  children:
    beta:
      vars: { sib: beta }
      hosts: { db1: }
    alpha:
      vars: { sib: alpha }
      hosts: { db1: }
    pg:
      vars:
        v3: pg
        v4: pg
      children:
        db:
          vars:
            v4: db-inventory
            v5: db-inventory
          hosts:
            db1:
              address: 10.0.0.1
              v7: host-entry
              v8: host-entry
            db2: { address: 10.0.0.2 }
`,
  'group_vars/all.yml': 'v2: group_vars-all\nv3: group_vars-all\n',
  'group_vars/db.yml': 'v5: group_vars-db-file\nv6: group_vars-db-file\n',
  'group_vars/db/10-first.yml': 'v6: group_vars-db-dir-10\nv7: group_vars-db-dir-10\n',
  'group_vars/db/20-second.yml': 'v6: group_vars-db-dir-20\n',
  'host_vars/db1.yml': 'v8: host_vars-file\nv9: host_vars-file\n',
  'host_vars/db1/lab.yml': 'v9: host_vars-dir\nv10: host_vars-dir\n',
  'extra.yml': 'v10: extra-file\nv11: extra-file\n',
}

t.test('each precedence layer beats the one below it', async (t) => {
  const dir = await tree(precedenceFixture)
  const inv = await loadInventory(path.join(dir, 'inv.yml'), {
    roles: [testRole],
    extraVars: [`@${path.join(dir, 'extra.yml')}`, 'v11=command-line'],
  })
  const vars = inv.hosts.get('db1')!.vars
  t.equal(vars.v0, 'default', 'role default when nothing else sets it')
  t.equal(vars.v1, 'all-vars', 'all vars beat role defaults')
  t.equal(vars.v2, 'group_vars-all', 'group_vars/all.yml beats the inventory file all vars')
  t.equal(vars.v3, 'pg', 'a child group of all beats all')
  t.equal(vars.v4, 'db-inventory', 'a child group beats its parent')
  t.equal(vars.v5, 'group_vars-db-file', 'group_vars/<g>.yml beats the inventory vars of the group')
  t.equal(vars.v6, 'group_vars-db-dir-20', 'group_vars/<g>/ files beat the file form, later names win')
  t.equal(vars.v7, 'host-entry', 'host inventory entry beats group vars')
  t.equal(vars.v8, 'host_vars-file', 'host_vars/<h>.yml beats the inventory entry')
  t.equal(vars.v9, 'host_vars-dir', 'host_vars/<h>/ files beat the file form')
  t.equal(vars.v10, 'extra-file', '-e @file beats host vars')
  t.equal(vars.v11, 'command-line', 'a later -e beats an earlier one')
  t.equal(vars.sib, 'beta', 'siblings of the same depth apply by name: beta after alpha')
  t.same(
    inv.hosts.get('db1')!.groups,
    ['all', 'alpha', 'beta', 'pg', 'db'],
    'groups: all first, parents before children',
  )
  t.equal(inv.hosts.get('db2')!.vars.v4, 'db-inventory', 'other hosts of the group get group vars')
  t.equal(inv.hosts.get('db2')!.vars.v7, 'group_vars-db-dir-10')
  t.equal(inv.hosts.get('solo')!.vars.v3, 'group_vars-all', 'hosts outside a group do not get its vars')
})

t.test('origins name the file, line and key of each winning value', async (t) => {
  const dir = await tree(precedenceFixture)
  const inv = await loadInventory(path.join(dir, 'inv.yml'), {
    roles: [testRole],
    extraVars: [`@${path.join(dir, 'extra.yml')}`, 'v11=command-line'],
  })
  const o = inv.hosts.get('db1')!.origins
  const pick = (name: string) => ({ file: o[name].file, line: o[name].line, key: o[name].key })
  t.same(pick('v0'), { file: 'role test', line: 0, key: 'defaults.v0' })
  t.same(pick('v1'), { file: path.join(dir, 'inv.yml'), line: 3, key: 'all.vars.v1' })
  t.same(pick('v4'), { file: path.join(dir, 'inv.yml'), line: 21, key: 'all.children.pg.children.db.vars.v4' })
  t.same(pick('v7'), { file: path.join(dir, 'inv.yml'), line: 26, key: 'all.children.pg.children.db.hosts.db1.v7' })
  t.same(pick('v6'), { file: path.join(dir, 'group_vars/db/20-second.yml'), line: 1, key: 'v6' })
  t.same(pick('v9'), { file: path.join(dir, 'host_vars/db1/lab.yml'), line: 1, key: 'v9' })
  t.same(pick('v10'), { file: path.join(dir, 'extra.yml'), line: 1, key: 'v10' })
  t.same(pick('v11'), { file: '<command line>', line: 2, key: 'v11' })
})

t.test('-e key=value values are YAML scalars', async (t) => {
  const dir = await tree({ 'inv.yml': 'all:\n  hosts:\n    h1: { address: 10.0.0.1 }\n' })
  const inv = await loadInventory(path.join(dir, 'inv.yml'), { extraVars: ['n=5', 'b=true', 's=hello world', 'e='] })
  const vars = inv.hosts.get('h1')!.vars
  t.equal(vars.n, 5)
  t.equal(vars.b, true)
  t.equal(vars.s, 'hello world')
  t.equal(vars.e, '')
})

t.test('groups list direct hosts, children, parents and their own vars; groupHosts is recursive', async (t) => {
  const dir = await tree(precedenceFixture)
  const inv = await loadInventory(path.join(dir, 'inv.yml'), { roles: [testRole] })
  t.same([...inv.hosts.keys()], ['solo', 'db1', 'db2'], 'hosts in the order the inventory first names them')
  const pg = inv.groups.get('pg')!
  t.same(pg.hosts, [])
  t.same(pg.children, ['db'])
  t.same(inv.groups.get('db')!.parents, ['pg'])
  t.same(inv.groups.get('db')!.vars, {
    v4: 'db-inventory',
    v5: 'group_vars-db-file',
    v6: 'group_vars-db-dir-20',
    v7: 'group_vars-db-dir-10',
  })
  t.same(inv.groupHosts('pg'), ['db1', 'db2'])
  t.same(inv.groupHosts('all'), ['solo', 'db1', 'db2'])
  t.same(inv.groupHosts('nope'), [], 'an unknown group has no hosts')
})

t.test('connection spec: relative ssh_key against the inventory dir, defaults, become, jump', async (t) => {
  const dir = await tree({
    'inventory/lab.yml': `all:
  vars: { ssh_user: hastack, ssh_key: ../.lab/ssh/id_ed25519 }
  hosts:
    a: { address: 10.0.0.1 }
    b: { address: b.example.org, ssh_user: root, ssh_port: 2222, ssh_connect_timeout: 3, ssh_key: ~/k,
         ssh_known_hosts_file: ../pinned/keys, ssh_host_key_checking: strict }
    c: { address: 10.0.0.3, become: false, ssh_jump: "ops@bastion.example.org:2200" }
`,
  })
  const inv = await loadInventory(path.join(dir, 'inventory/lab.yml'))
  const a = inv.hosts.get('a')!.connection
  const knownHosts = { file: path.join(dir, 'inventory/lab.known_hosts'), checking: 'accept-new' }
  const key = path.join(dir, '.lab/ssh/id_ed25519')
  const defaults = { user: 'hastack', port: 22, become: true, connectTimeoutMs: 10_000 }
  t.same(a, { host: 'a', address: '10.0.0.1', ...defaults, key, knownHosts })
  const b = inv.hosts.get('b')!.connection
  t.equal(b.become, false, 'become defaults to false for root')
  t.equal(b.port, 2222)
  t.equal(b.connectTimeoutMs, 3000)
  t.equal(b.key, path.join(os.homedir(), 'k'), '~ is expanded')
  t.same(b.knownHosts, { file: path.join(dir, 'pinned/keys'), checking: 'strict' }, 'relative to the inventory')
  const c = inv.hosts.get('c')!.connection
  t.equal(c.become, false, 'an explicit become wins')
  t.same(c.jump, { user: 'ops', host: 'bastion.example.org', port: 2200, key: path.join(dir, '.lab/ssh/id_ed25519') })
})

t.test('a host entry may be null and get its address from host_vars', async (t) => {
  const dir = await tree({
    'inv.yml': 'all:\n  children:\n    db:\n      hosts:\n        db1:\n',
    'host_vars/db1/lab.yml': 'address: 10.0.0.7\napt_proxy: http://10.0.0.254:3142\n',
  })
  const inv = await loadInventory(path.join(dir, 'inv.yml'))
  t.equal(inv.hosts.get('db1')!.connection.address, '10.0.0.7')
  t.equal(inv.hosts.get('db1')!.connection.user, 'root', 'ssh_user defaults to root')
  t.equal(inv.hosts.get('db1')!.vars.apt_proxy, 'http://10.0.0.254:3142')
})
