/**
 * The firewall's rules derived from the inventory (roles/nftables/exposure.ts, ruleset.ts) on the lab-small
 * shape (three members running everything, two HAProxy hosts behind a VIP, node1 monitoring, logging and
 * backups, plus an app-only host): who may reach each port, and a rendered ruleset nft itself accepts.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import type { Inventory } from '../../lib/types.ts'
import { loadInventory } from '../../lib/inventory/index.ts'
import { allRoles } from '../../roles/index.ts'
import { stackExposures, type Exposure } from '../../roles/nftables/exposure.ts'
import { allowedAddresses, renderRuleset } from '../../roles/nftables/ruleset.ts'
import { firewallProblems } from '../../roles/nftables/index.ts'

const ADDRESS: Record<string, string> = {
  node1: '10.0.0.11',
  node2: '10.0.0.12',
  node3: '10.0.0.13',
  web4: '10.0.0.14',
}
const CONTROL = '10.0.0.1'

async function labSmall(
  extra: Record<string, unknown> = {},
  address = ADDRESS,
  groups: Record<string, { hosts: Record<string, null> }> = {},
): Promise<Inventory> {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-firewall-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const members = { node1: null, node2: null, node3: null }
  const doc = {
    all: {
      vars: { ssh_user: 'root', ...extra },
      hosts: Object.fromEntries(Object.entries(address).map(([name, a]) => [name, { address: a }])),
      children: {
        etcd: { hosts: members },
        postgres: { hosts: members },
        redis: { hosts: members },
        sentinel: { hosts: members },
        haproxy: { hosts: { node1: null, node2: null }, vars: { redis_haproxy_port: 6380, vip_address: '10.0.0.100' } },
        monitoring: { hosts: { node1: null } },
        logging: { hosts: { node1: null } },
        backup_repo: { hosts: { node1: null } },
        app: { hosts: { node1: null, node2: null, web4: null } },
        ...groups,
      },
    },
  }
  const file = join(dir, 'hosts.yml')
  writeFileSync(file, stringify(doc))
  return loadInventory(file, { roles: allRoles, writeSecrets: false })
}

const input = (exposures: Exposure[]) => ({ exposures, addressOf: (h: string) => ADDRESS[h]!, control: [CONTROL] })

/** Who may reach this port of this host: sorted addresses, or `anywhere`. */
function whoMayReach(exposures: Exposure[], host: string, port: number | 'vrrp'): string[] {
  const matching = exposures.filter(
    (e) => e.host === host && (port === 'vrrp' ? e.protocol === 'vrrp' : e.port === port),
  )
  if (matching.some((e) => e.sources.anywhere)) return ['anywhere']
  return [...new Set(matching.flatMap((e) => allowedAddresses(e, input(exposures))))].sort()
}

const MEMBERS = ['10.0.0.11', '10.0.0.12', '10.0.0.13']

t.test(
  'etcd: clients from members, Patroni, backup, monitoring and the admin network; peers from members only',
  async (t) => {
    const e = stackExposures(await labSmall())
    t.same(whoMayReach(e, 'node2', 2379), [CONTROL, ...MEMBERS].sort())
    t.same(whoMayReach(e, 'node2', 2380), MEMBERS)
    t.same(whoMayReach(e, 'web4', 2379), [], 'a host outside the etcd group exposes nothing')
  },
)

t.test(
  'Patroni 8008 and PostgreSQL 5432: members, HAProxy, backup hosts and the admin network, never the app-only host',
  async (t) => {
    const inv = await labSmall({ postgresql_client_networks: ['192.168.5.0/24'] })
    const e = stackExposures(inv)
    t.same(whoMayReach(e, 'node3', 8008), [CONTROL, ...MEMBERS].sort())
    t.same(whoMayReach(e, 'node3', 5432), [CONTROL, ...MEMBERS, '192.168.5.0/24'].sort(), 'with the client networks')
    t.notOk(whoMayReach(e, 'node3', 5432).includes(ADDRESS.web4!))
  },
)

t.test("pgBackRest's TLS server 8432 on the repository host: the other members only, and only with TLS", async (t) => {
  const e = stackExposures(await labSmall())
  t.same(whoMayReach(e, 'node1', 8432), ['10.0.0.12', '10.0.0.13'], 'no admin network, no app-only host')
  t.same(whoMayReach(e, 'node2', 8432), [], 'only the repository host serves it')
  t.same(whoMayReach(stackExposures(await labSmall({ pgbackrest_tls: false })), 'node1', 8432), [], 'SSH instead')
  t.same(whoMayReach(stackExposures(await labSmall({ tls_enabled: false })), 'node1', 8432), [], 'a plaintext stack')
})

t.test(
  'Redis 6379 from Redis, Sentinel, HAProxy, app, backup hosts; Sentinel 26379 from Sentinels, Redis, apps; both from admins',
  async (t) => {
    const e = stackExposures(await labSmall())
    t.same(whoMayReach(e, 'node3', 6379), [CONTROL, ...MEMBERS, ADDRESS.web4!].sort())
    t.same(whoMayReach(e, 'node3', 26379), [CONTROL, ...MEMBERS, ADDRESS.web4!].sort())
  },
)

t.test("a Redis host that runs no Sentinel reaches the Sentinels' port (it asks them for the primary)", async (t) => {
  const redis = { hosts: { node1: null, node2: null, node3: null, web4: null } }
  const app = { hosts: { node1: null, node2: null } }
  const e = stackExposures(await labSmall({}, ADDRESS, { redis, app }))
  t.ok(whoMayReach(e, 'node3', 26379).includes(ADDRESS.web4!), 'the joining Redis host web4 is let in')
  t.ok(whoMayReach(e, 'node3', 6379).includes(ADDRESS.web4!))
})

t.test('HAProxy client ports are open to anyone, its stats page to monitoring and the control machine', async (t) => {
  const e = stackExposures(await labSmall())
  for (const port of [5000, 5001, 6380, 80, 8088]) t.same(whoMayReach(e, 'node2', port), ['anywhere'], `port ${port}`)
  t.same(whoMayReach(e, 'node2', 7000), [CONTROL, '10.0.0.11'].sort())
  t.same(whoMayReach(e, 'node3', 5000), [], 'a host outside the haproxy group does not open it')
  t.same(whoMayReach(e, 'web4', 8080), ['10.0.0.11', '10.0.0.12'], "the app's own port: HAProxy hosts only")
})

t.test('exporters are reachable from the monitoring host and the admin network only', async (t) => {
  const e = stackExposures(await labSmall())
  for (const [host, port] of [
    ['node3', 9100],
    ['web4', 9100],
    ['node3', 9187],
    ['node3', 9121],
    ['node3', 9122],
  ] as const)
    t.same(whoMayReach(e, host, port), [CONTROL, '10.0.0.11'].sort(), `${host}:${port}`)
  t.same(whoMayReach(e, 'node1', 9090), [CONTROL, '10.0.0.11'].sort(), 'Prometheus: monitoring and the operator')
})

t.test('keepalived VRRP only between the HAProxy peers, and only with a VIP', async (t) => {
  t.same(whoMayReach(stackExposures(await labSmall()), 'node1', 'vrrp'), ['10.0.0.12'])
  t.same(whoMayReach(stackExposures(await labSmall()), 'node3', 'vrrp'), [])
  const noVip = await labSmall()
  for (const host of ['node1', 'node2']) delete noVip.hosts.get(host)!.vars.vip_address
  t.same(whoMayReach(stackExposures(noVip), 'node1', 'vrrp'), [])
})

t.test(
  'journal upload reaches the logging host from every host; SSH from the control machine and pgBackRest',
  async (t) => {
    const e = stackExposures(await labSmall())
    t.same(whoMayReach(e, 'node1', 19532), Object.values(ADDRESS).sort())
    t.same(whoMayReach(e, 'node3', 19532), [])
    t.same(whoMayReach(e, 'web4', 22), [CONTROL], 'SSH: the control machine only')
    t.same(whoMayReach(e, 'node1', 22), [CONTROL, ...MEMBERS].sort(), 'the repository host: also the members')
  },
)

t.test('the rendered ruleset drops by default and passes `nft -c` when nft can check here', async (t) => {
  const exposures = stackExposures(await labSmall()).filter((e) => e.host === 'node2')
  const text = renderRuleset(input(exposures))
  t.match(text, /policy drop;/)
  t.match(text, /tcp dport 2380 ip saddr \{ 10\.0\.0\.11, 10\.0\.0\.12, 10\.0\.0\.13 \} accept comment "etcd peer"/)
  t.match(text, /ip protocol vrrp ip saddr \{ 10\.0\.0\.11 \} accept/)
  t.match(text, /tcp dport 5000 accept comment/)
  const dir = mkdtempSync(join(tmpdir(), 'hastack-nft-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'rules.nft'), text)
  let checked: string
  try {
    checked = execFileSync('nft', ['-c', '-f', join(dir, 'rules.nft')], { encoding: 'utf8', stdio: 'pipe' })
  } catch (error) {
    const message = String((error as { stderr?: string }).stderr ?? error)
    if (/Operation not permitted|ENOENT|not found/.test(message)) return t.comment(`nft cannot check here: ${message}`)
    throw new Error(message, { cause: error })
  }
  t.equal(checked, '', 'nft accepts the ruleset')
})

t.test(
  'the firewall (on by default) refuses hosts addressed by name when loading the inventory, before any connection',
  async (t) => {
    await t.rejects(labSmall({}, { ...ADDRESS, web4: 'web4.example' }), {
      message:
        /role nftables: host web4: firewall_enabled \(on by default\) needs an IPv4 address .* set firewall_enabled: false/,
    })
    const off = await labSmall({ firewall_enabled: false }, { ...ADDRESS, web4: 'web4.example' })
    t.same(firewallProblems(off), [], 'off: no requirement')
  },
)
