/**
 * The roles' shared variables and the engine's independence from the roles: every shared variable
 * has one default and one schema whichever role declares it, the cross-host validators look at every
 * host of a group (not the first one), nothing under lib/ imports from roles/, and a playbook checks
 * the inventory against the roles it is given.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Inventory, Vars } from '../../lib/types.ts'
import { checkRoleDefaults } from '../../lib/inventory/validate.ts'
import { playbook } from '../../lib/playbook.ts'
import { Reporter } from '../../lib/output/reporter.ts'
import { allRoles, etcdRole, patroniRole, redisRole, sentinelRole } from '../../roles/index.ts'
import { STACK_DEFAULTS, STACK_SCHEMA, clientAddress } from '../../roles/stack.ts'

const ADDR: Record<string, string> = { db1: '10.0.0.11', db2: '10.0.0.12', db3: '10.0.0.13', lb1: '10.0.0.20' }
const GROUPS: Record<string, string[]> = {
  etcd: ['db1', 'db2', 'db3'],
  postgres: ['db1', 'db2', 'db3'],
  redis: ['db1', 'db2', 'db3'],
  sentinel: ['db1', 'db2', 'db3'],
  haproxy: ['lb1'],
}

/** An inventory of four hosts with every role's defaults, and `overrides` set on single hosts. */
function inventoryWith(overrides: Record<string, Vars> = {}): Inventory {
  const defaults = Object.assign({}, ...allRoles.map((r) => r.defaults)) as Vars
  const groupsOf = (host: string) => ['all', ...Object.keys(GROUPS).filter((g) => GROUPS[g]!.includes(host))]
  const hosts = new Map(
    Object.keys(ADDR).map((name) => {
      const vars = { ...defaults, address: ADDR[name], ...overrides[name] }
      return [name, { name, groups: groupsOf(name), vars, origins: {}, connection: {} as never }]
    }),
  )
  const group = (name: string, hosts: string[]) => ({ name, hosts, children: [], parents: ['all'], vars: {} })
  const groups = new Map(Object.entries(GROUPS).map(([name, members]) => [name, group(name, members)]))
  const groupHosts = (g: string) => GROUPS[g] ?? []
  return { file: 'x.yml', hosts, groups, secrets: {}, groupHosts, select: () => [] } as Inventory
}

t.test('a shared variable has the same default and schema in every role that reads it', async (t) => {
  t.same(checkRoleDefaults(allRoles), [], 'no two roles declare different defaults')
  let checked = 0
  for (const role of allRoles) {
    for (const name of Object.keys(role.schema).filter((n) => n in STACK_SCHEMA)) {
      t.equal(role.schema[name], STACK_SCHEMA[name], `${role.name}: schema of ${name} comes from roles/stack.ts`)
      if (name in STACK_DEFAULTS) t.same(role.defaults[name], STACK_DEFAULTS[name], `${role.name}: default of ${name}`)
      checked++
    }
  }
  t.ok(checked > 20, 'the roles read many shared variables')
  t.equal(STACK_DEFAULTS.redis_port, 6379)
  t.notOk('redis_password' in STACK_DEFAULTS, 'a generated secret has no default')
})

t.test("clients use the VIP when the haproxy hosts have one, else the first haproxy host's address", async (t) => {
  t.equal(clientAddress(inventoryWith()), '10.0.0.20')
  t.equal(clientAddress(inventoryWith({ lb1: { vip_address: '10.0.0.200' } })), '10.0.0.200')
  const noBalancer = { ...inventoryWith(), groups: new Map(), groupHosts: () => [] }
  t.equal(clientAddress(noBalancer), undefined, 'no haproxy group: no client address')
})

t.test('the validators check every host of the group, not the first one', async (t) => {
  t.same(etcdRole.validate!(inventoryWith()), [])
  t.same(patroniRole.validate!(inventoryWith()), [])
  t.same(redisRole.validate!(inventoryWith()), [])
  t.same(sentinelRole.validate!(inventoryWith()), [])
  const lastHost = (vars: Vars) => inventoryWith({ db3: vars })
  t.match(sentinelRole.validate!(lastHost({ sentinel_quorum: 1 })).join('\n'), /not a majority/)
  t.match(redisRole.validate!(lastHost({ redis_maxmemory: 'lots' })).join('\n'), /host db3: not a Redis memory size/)
  t.match(redisRole.validate!(lastHost({ redis_min_replicas_to_write: 5 })).join('\n'), /only 2 replica/)
  t.match(redisRole.validate!(inventoryWith({ lb1: { redis_haproxy_rise: 2 } })).join('\n'), /too small/)
  t.match(patroniRole.validate!(lastHost({ patroni_ttl: 20 })).join('\n'), /host db3: patroni_loop_wait/)
  t.match(etcdRole.validate!(lastHost({ etcd_election_timeout: 200 })).join('\n'), /host db3: etcd_election_timeout/)
})

t.test('a validator reads a default from the roles when a host lacks the variable', async (t) => {
  const inventory = inventoryWith()
  delete inventory.hosts.get('db2')!.vars.patroni_ttl
  delete inventory.hosts.get('db2')!.vars.etcd_group
  t.same(patroniRole.validate!(inventory), [], 'patroni_ttl and etcd_group fall back to their declared defaults')
})

t.test('nothing in lib/ imports from roles/', async (t) => {
  const root = new URL('../../lib/', import.meta.url).pathname
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))
  t.ok(files.length > 20)
  for (const file of files) t.notMatch(readFileSync(join(root, file), 'utf8'), /roles\//, `lib/${file}`)
})

t.test('a playbook checks the inventory against the roles it passes, before any connection', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-roles-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const inventory = join(dir, 'typo.yml')
  writeFileSync(inventory, 'all:\n  hosts:\n    db1: { address: 10.0.0.11, patroni_tll: 30 }\n')
  const lines: string[] = []
  const reporter = new Reporter({ verbosity: 0, diff: false, color: false, write: (l) => lines.push(l) })
  const plays = [{ name: 'nothing', hosts: 'all', tasks: async () => {} }]
  const argv = ['-i', inventory, '--list-hosts']
  const run = (roles?: typeof allRoles) => playbook({ name: 'typo', plays, roles, argv, embedded: true, reporter })
  const stderr = process.stderr.write.bind(process.stderr)
  let errors = ''
  process.stderr.write = ((chunk: string) => ((errors += chunk), true)) as typeof process.stderr.write
  try {
    t.equal((await run(allRoles)).exitCode, 1, "refused with every role's vocabulary")
    t.match(errors, /unknown variable patroni_tll — did you mean patroni_ttl\?/)
    t.equal((await run()).exitCode, 0, 'without roles there is no vocabulary to judge it by')
    t.match(lines.join('\n'), /play #1 \(all\): nothing\n {4}hosts \(1\): db1/)
  } finally {
    process.stderr.write = stderr
  }
})
