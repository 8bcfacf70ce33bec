/**
 * `failover_profile`: the detection settings each profile gives Patroni, Sentinel and HAProxy, chosen
 * per host in the inventory, above the role defaults and below any variable the inventory sets itself;
 * both profiles obey Patroni's rules, and an unknown profile or a broken override is refused before
 * any connection.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadInventory } from '../../lib/inventory/index.ts'
import { checkRoleDefaults } from '../../lib/inventory/validate.ts'
import type { Role } from '../../lib/types.ts'
import { allRoles, patroniRole } from '../../roles/index.ts'
import { FAILOVER_PROFILES } from '../../roles/stack.ts'

const HOSTS = `    etcd: { hosts: { db1: { address: 10.0.0.11 }, db2: { address: 10.0.0.12 }, db3: { address: 10.0.0.13 } } }
    postgres: { hosts: { db1: , db2: , db3: } }
    redis: { hosts: { db1: , db2: , db3: } }
    sentinel: { hosts: { db1: , db2: , db3: } }
    haproxy: { hosts: { lb1: { address: 10.0.0.20 } } }
`

/** Load an inventory whose `all.vars` are `vars` (YAML lines), with every role. */
async function load(t: Test, vars: string, extraVars: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-profile-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'inv.yml')
  writeFileSync(file, `all:\n  vars:\n    ssh_user: root\n${vars}  children:\n${HOSTS}`)
  return loadInventory(file, { roles: allRoles, extraVars, writeSecrets: false })
}

const DETECTION = [
  'patroni_ttl',
  'patroni_loop_wait',
  'patroni_retry_timeout',
  'sentinel_down_after_milliseconds',
  'haproxy_check_interval_ms',
  'haproxy_check_fall',
] as const

function detection(vars: Record<string, unknown>) {
  return Object.fromEntries(DETECTION.map((name) => [name, vars[name]]))
}

t.test('without failover_profile a host gets the default profile, the roles own defaults', async (t) => {
  const inventory = await load(t, '')
  t.same(detection(inventory.hosts.get('db1')!.vars), FAILOVER_PROFILES.default)
  t.equal(inventory.hosts.get('db1')!.vars.failover_profile, 'default')
})

t.test('failover_profile: fast gives ttl 20, loop_wait 1, retry_timeout 5, down-after 2000, fall 1', async (t) => {
  const inventory = await load(t, '    failover_profile: fast\n')
  const vars = inventory.hosts.get('db2')!.vars
  t.same(detection(vars), {
    patroni_ttl: 20,
    patroni_loop_wait: 1,
    patroni_retry_timeout: 5,
    sentinel_down_after_milliseconds: 2000,
    haproxy_check_interval_ms: 1000,
    haproxy_check_fall: 1,
  })
  t.equal(inventory.hosts.get('db2')!.origins.patroni_ttl!.key, 'profiles.failover_profile.fast.patroni_ttl')
})

t.test('a variable the inventory sets wins over the profile, at every level', async (t) => {
  const inventory = await load(t, '    failover_profile: fast\n    patroni_ttl: 25\n', ['haproxy_check_fall=3'])
  const vars = inventory.hosts.get('db1')!.vars
  t.equal(vars.patroni_ttl, 25, 'all.vars beats the profile')
  t.equal(vars.patroni_loop_wait, 1, 'the rest of the profile still applies')
  t.equal(vars.haproxy_check_fall, 3, '-e beats the profile')
})

t.test('the profile can be chosen from the command line', async (t) => {
  const inventory = await load(t, '', ['failover_profile=fast'])
  t.equal(inventory.hosts.get('db3')!.vars.sentinel_down_after_milliseconds, 2000)
})

t.test('an unknown profile is refused before any connection, naming the allowed ones', async (t) => {
  await t.rejects(load(t, '    failover_profile: fastest\n'), /failover_profile.*(default|allowed|must be equal)/s)
})

t.test("an override that breaks Patroni's rule under the fast profile is refused", async (t) => {
  await t.rejects(
    load(t, '    failover_profile: fast\n    patroni_retry_timeout: 10\n'),
    /patroni_loop_wait \+ 2 × patroni_retry_timeout \(21\) must not exceed patroni_ttl \(20\)/,
  )
  await t.rejects(load(t, '    patroni_ttl: 15\n'), /patroni_ttl.*must be >= 20/s, "ttl under Patroni's minimum of 20")
})

t.test(
  "both profiles keep Patroni's rules: ttl >= 20, loop_wait >= 1, retry_timeout >= 3, loop + 2 retry <= ttl",
  async (t) => {
    for (const [name, p] of Object.entries(FAILOVER_PROFILES)) {
      t.ok(p.patroni_ttl >= 20 && p.patroni_loop_wait >= 1 && p.patroni_retry_timeout >= 3, `${name}: minimums`)
      t.ok(p.patroni_loop_wait + 2 * p.patroni_retry_timeout <= p.patroni_ttl, `${name}: loop_wait + 2 retry <= ttl`)
    }
  },
)

t.test('a role whose profiles set a variable it does not declare is a bug, reported', async (t) => {
  const broken: Role = {
    ...patroniRole,
    profiles: { failover_profile: { fast: { sentinel_down_after_milliseconds: 1 } } },
  }
  t.match(
    checkRoleDefaults([broken]).map((e) => e.message),
    ['role patroni: its profiles by failover_profile use sentinel_down_after_milliseconds, which it does not declare'],
  )
  t.same(checkRoleDefaults(allRoles), [], 'the real roles declare what their profiles set')
})
