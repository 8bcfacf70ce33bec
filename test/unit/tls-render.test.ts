/**
 * The PostgreSQL stack's files with TLS on and off, rendered from an inventory: with `tls_enabled`, etcd
 * serves https on both links and asks every client and peer for a certificate, root's etcdctl shows the
 * host's; Patroni serves its API over HTTPS, reaches etcd over https with its certificate, turns
 * PostgreSQL's TLS on (TLSv1.2 at least) and replicates and rewinds with verify-full; pg_hba has `hostssl`
 * on every line off the host; HAProxy checks the API over TLS with the member's name; Prometheus scrapes
 * both over https; the app gets the CA. Each service's own switch keeps that one in plaintext, and with
 * `tls_enabled` off nothing mentions TLS. The switches a running cluster cannot take are refused by name.
 */
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { tree } from '../fixtures/tree.ts'
import { loadInventory } from '../../lib/inventory/index.ts'
import { renderTemplate } from '../../lib/template.ts'
import type { HostView, Inventory } from '../../lib/types.ts'
import { allRoles } from '../../roles/index.ts'
import { appEnvironment } from '../../roles/app/render.ts'
import { etcdctlEnvView, etcdDefaultView } from '../../roles/etcd/render.ts'
import { tlsSwitchProblem } from '../../roles/etcd/index.ts'
import { haproxyView } from '../../roles/haproxy/render.ts'
import { restApiSwitchProblem } from '../../roles/patroni/index.ts'
import { patroniConfigView } from '../../roles/patroni/render.ts'
import { scrapeJobs } from '../../roles/prometheus/scrape.ts'
import { snapshotEnvView } from '../../roles/snapshots/render.ts'

const HOSTS = `  children:
    etcd: { hosts: { node1: { address: 10.0.0.1 }, node2: { address: 10.0.0.2 }, node3: { address: 10.0.0.3 } } }
    postgres: { hosts: { node1: , node2: , node3: } }
    redis: { hosts: { node1: , node2: , node3: } }
    sentinel: { hosts: { node1: , node2: , node3: } }
    haproxy: { hosts: { lb1: { address: 10.0.0.9 } } }
    app: { hosts: { lb1: } }
    monitoring: { hosts: { lb1: } }
`

async function inventoryWith(vars: Record<string, unknown>): Promise<Inventory> {
  const dir = await tree({ 'inv.yml': `all:\n  vars: ${JSON.stringify(vars)}\n${HOSTS}` })
  return loadInventory(path.join(dir, 'inv.yml'), { roles: allRoles, secretsFile: path.join(dir, 's.yml') })
}

function view(inventory: Inventory, name: string): HostView {
  const host = inventory.hosts.get(name)!
  const hostvars = (n: string) => inventory.hosts.get(n)!.vars
  return { name, vars: host.vars, facts: {} as HostView['facts'], groups: host.groups, inventory, hostvars }
}

function files(inventory: Inventory) {
  const node = view(inventory, 'node1')
  const lb = view(inventory, 'lb1')
  return {
    etcd: renderTemplate('etcd/etcd.default.ejs', node, { etcd: etcdDefaultView(node, 'new') }),
    etcdctl: renderTemplate('etcd/etcdctl.env.ejs', node, { etcdctl: etcdctlEnvView(node) }),
    patroni: parseYaml(renderTemplate('patroni/config.yml.ejs', node, { patroni: patroniConfigView(node) })),
    haproxy: renderTemplate('haproxy/haproxy.cfg.ejs', lb, { haproxy: haproxyView(lb) }),
    scrape: scrapeJobs(inventory, lb.vars),
    app: Object.fromEntries(appEnvironment(lb)),
    snapshots: Object.fromEntries(snapshotEnvView(node, 'etcd')),
  }
}

t.test('with tls_enabled every link of the PostgreSQL stack is configured for TLS', async (t) => {
  const f = files(await inventoryWith({ tls_enabled: true }))
  t.match(f.etcd, /ETCD_LISTEN_PEER_URLS="https:\/\/10\.0\.0\.1:2380"/)
  t.match(f.etcd, /ETCD_LISTEN_CLIENT_URLS="https:\/\/10\.0\.0\.1:2379,https:\/\/127\.0\.0\.1:2379"/)
  t.match(f.etcd, /ETCD_INITIAL_CLUSTER="node1=https:\/\/10\.0\.0\.1:2380,node2=https/)
  t.match(f.etcd, /ETCD_CLIENT_CERT_AUTH="true"\n/)
  t.match(f.etcd, /ETCD_PEER_CLIENT_CERT_AUTH="true"\n/)
  t.match(f.etcd, /ETCD_KEY_FILE="\/etc\/hastack\/tls\/etcd\/host\.key"/, "etcd's own copy of the key")
  t.match(f.etcdctl, /ETCDCTL_ENDPOINTS=https:\/\/10\.0\.0\.1:2379,https/)
  t.match(f.etcdctl, /ETCDCTL_CERT=\/etc\/hastack\/tls\/host\.crt\nETCDCTL_KEY=\/etc\/hastack\/tls\/host\.key/)

  const p = f.patroni
  t.same(
    [p.restapi.certfile, p.restapi.keyfile, p.restapi.cafile],
    ['/etc/hastack/tls/patroni/host.crt', '/etc/hastack/tls/patroni/host.key', '/etc/hastack/tls/patroni/ca.crt'],
  )
  t.same([p.etcd3.protocol, p.etcd3.cert], ['https', '/etc/hastack/tls/patroni/host.crt'], 'etcd with a certificate')
  t.match(p.postgresql.parameters, {
    ssl: 'on',
    ssl_key_file: '/etc/hastack/tls/postgres/host.key',
    ssl_min_protocol_version: 'TLSv1.2',
  })
  for (const use of ['replication', 'rewind'])
    t.match(p.postgresql.authentication[use], { sslmode: 'verify-full', sslrootcert: '/etc/hastack/tls/ca.crt' })
  const hba = p.postgresql.pg_hba as string[]
  t.same(
    hba.filter((l) => !l.startsWith('hostssl ')),
    [
      'local all all peer',
      'host all all 127.0.0.1/32 scram-sha-256',
      'host replication replicator 127.0.0.1/32 scram-sha-256',
    ],
    'only the socket and loopback lines are without TLS',
  )
  t.ok(hba.includes('hostssl app app 10.0.0.9/32 scram-sha-256'), 'the HAProxy host reaches the app database')

  const node2 = f.haproxy.split('\n').find((l) => l.includes('server node2 10.0.0.2:5432 check port 8008 '))
  t.match(node2, / check-ssl verify required ca-file \/etc\/hastack\/tls\/ca\.crt verifyhost node2$/)
  const job = (name: string) => f.scrape.find((j) => j.job_name === name)!
  t.match(job('patroni'), { scheme: 'https', tls_config: { ca_file: '/etc/hastack/tls/ca.crt' } })
  t.match(job('etcd'), {
    scheme: 'https',
    tls_config: { cert_file: '/etc/hastack/tls/prometheus/host.crt', key_file: '/etc/hastack/tls/prometheus/host.key' },
  })
  t.equal(f.app.APP_PG_CA_FILE, '/etc/hastack/tls/ca.crt', 'the app checks PostgreSQL with the CA')
  t.match(f.snapshots, {
    ETCD_SOURCES: 'https://10.0.0.1:2379 https://10.0.0.2:2379 https://10.0.0.3:2379',
    ETCDCTL_CACERT: '/etc/hastack/tls/ca.crt',
    ETCDCTL_CERT: '/etc/hastack/tls/host.crt',
  })
})

t.test('a service switched off keeps its links in plaintext while the others use TLS', async (t) => {
  const f = files(await inventoryWith({ tls_enabled: true, etcd_tls: false, postgresql_tls: false }))
  t.match(f.etcd, /ETCD_LISTEN_PEER_URLS="http:\/\/10\.0\.0\.1:2380"/)
  t.notMatch(f.etcd, /CERT/)
  t.notMatch(f.etcdctl, /ETCDCTL_CACERT/)
  t.same([f.patroni.etcd3.protocol, f.patroni.etcd3.cert], ['http', undefined])
  t.equal(f.patroni.postgresql.parameters.ssl, undefined)
  t.notOk(
    (f.patroni.postgresql.pg_hba as string[]).some((l) => l.startsWith('hostssl')),
    'pg_hba has host lines',
  )
  t.equal(f.patroni.restapi.certfile, '/etc/hastack/tls/patroni/host.crt', "Patroni's API still on HTTPS")
  t.match(f.haproxy, /check-ssl/)
  t.equal(f.app.APP_PG_CA_FILE, undefined)
  t.equal(f.scrape.find((j) => j.job_name === 'etcd')!.scheme, undefined, 'Prometheus scrapes etcd over http')
})

t.test('an inventory that says nothing gets TLS on every link (tls_enabled is on by default)', async (t) => {
  const f = files(await inventoryWith({}))
  t.match(f.etcd, /^ETCD_LISTEN_CLIENT_URLS="https:/m, 'etcd serves https')
  t.equal(f.patroni.restapi.certfile, '/etc/hastack/tls/patroni/host.crt', "Patroni's API on HTTPS")
  t.match(JSON.stringify(f.patroni), /hostssl/, 'PostgreSQL requires TLS off the host')
  t.match(f.haproxy, /check-ssl/, "HAProxy checks Patroni's API over HTTPS")
  t.equal(f.app.APP_PG_CA_FILE, '/etc/hastack/tls/ca.crt', "the app's connection verifies the CA")
  t.equal(f.scrape.find((j) => j.job_name === 'etcd')!.scheme, 'https', 'Prometheus scrapes etcd over https')
})

t.test('with tls_enabled off nothing mentions TLS', async (t) => {
  const f = files(await inventoryWith({ tls_enabled: false }))
  t.notMatch(f.etcd, /https|CERT/)
  t.notMatch(f.etcdctl, /https|ETCDCTL_CA/)
  t.notMatch(JSON.stringify(f.snapshots), /https|ETCDCTL_CA/)
  const config = JSON.stringify(f.patroni)
  t.notMatch(config, /https|certfile|sslmode|"ssl"|hostssl|\/tls\//)
  t.notMatch(f.haproxy, /ssl/)
  t.notOk(
    f.scrape.some((j) => j.scheme || j.tls_config),
    'every scrape over http',
  )
  t.equal(f.app.APP_PG_CA_FILE, undefined)
})

t.test('a running cluster is refused a switch between plaintext and TLS, naming the member and the way out', (t) => {
  t.equal(tlsSwitchProblem('db1', undefined, 'https'), undefined, 'a member never configured takes either')
  t.equal(tlsSwitchProblem('db1', 'https', 'https'), undefined)
  t.match(
    tlsSwitchProblem('db1', 'http', 'https'),
    /etcd member db1 runs with http peer URLs .* To keep it in plaintext set etcd_tls: false in the inventory's all\.vars .* or tls_enabled: false to keep the whole stack in plaintext/,
  )
  t.match(
    tlsSwitchProblem('db2', 'https', 'http'),
    /etcd member db2 runs with https .*set etcd_tls: true and tls_enabled: true/,
  )
  t.equal(restApiSwitchProblem('db1', true, true), undefined)
  t.match(
    restApiSwitchProblem('db1', false, true),
    /Patroni on db1 serves its REST API over HTTP .* To keep it in plaintext set patroni_api_tls: false .*or tls_enabled: false/,
  )
  t.match(
    restApiSwitchProblem('db3', true, false),
    /over HTTPS .* asks for HTTP.* set patroni_api_tls: true and tls_enabled: true/,
  )
  t.end()
})
