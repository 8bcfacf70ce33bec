/**
 * The certificates role on scripted hosts whose openssl is the real one (keys, requests and public keys
 * are made by openssl on this machine and kept in the scripted host's files): a fresh stack gets a CA
 * beside the inventory, a key made on each host and a certificate that verifies with the host's names,
 * and per-service copies readable by the service's group (HAProxy's as one PEM); a second run changes
 * nothing; a certificate inside the renewal margin or for a replaced key is issued again; off or in
 * check mode nothing is made.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { certificatesRole } from '../../roles/certificates/index.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const TLS = '/etc/hastack/tls'
const play = [{ name: 'certificates', hosts: 'all', roles: [certificatesRole] }]
const ISSUE = 'Ensure the host certificate is current'

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
}

/** Answer the role's openssl, group and copy commands on a scripted host with the real openssl. */
function realOpenssl(conn: ScriptedConnection): void {
  const groups = new Set<string>()
  conn.on(/openssl genpkey .* -out (\S+)$/, (command, _o, c) => {
    const path = /-out (\S+)$/.exec(command)![1]!
    c.writeFile(path, openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']), {
      mode: '0600',
    })
    c.mutated(`genpkey ${path}`)
    return { code: 0 }
  })
  conn.on(/^openssl pkey -in (\S+) -pubout/, (command, _o, c) => {
    const key = c.readFile(/-in (\S+)/.exec(command)![1]!)
    return key === undefined ? { code: 1 } : { code: 0, stdout: openssl(['pkey', '-pubout'], key) }
  })
  conn.on(/^openssl req -new -key (\S+) -subj (\S+)$/, (command, _o, c) => {
    const [, path = '', quoted = ''] = /-key (\S+) -subj (\S+)$/.exec(command)!
    const subject = quoted.replace(/^'|'$/g, '')
    const dir = mkdtempSync(join(tmpdir(), 'hastack-req-'))
    try {
      writeFileSync(join(dir, 'host.key'), c.readFile(path) ?? '', { mode: 0o600 })
      return { code: 0, stdout: openssl(['req', '-new', '-key', join(dir, 'host.key'), '-subj', subject]) }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  conn.on(/^getent group (\S+)$/, (command) => ({ code: groups.has(command.split(' ')[2]!) ? 0 : 2 }))
  conn.on(/^groupadd --system (\S+)$/, (command, _o, c) => {
    groups.add(command.split(' ')[2]!)
    c.mutated(command)
    return { code: 0 }
  })
  const sum = /^cat -- (.+) \| sha256sum$/
  conn.on(sum, (command, _o, c) => {
    const sources = sum
      .exec(command)![1]!
      .split(' ')
      .map((p) => c.readFile(p))
    if (sources.includes(undefined)) return { code: 1 }
    return { code: 0, stdout: `${createHash('sha256').update(sources.join('')).digest('hex')}  -\n` }
  })
  const copy =
    /^umask 077 && cat -- (.+) > \S+ && chown (\S+):(\S+) -- \S+ && chmod (\S+) -- \S+ && mv -f -- \S+ (\S+)$/
  conn.on(copy, (command, _o, c) => {
    const [, sources = '', owner, group, mode, dest = ''] = copy.exec(command)!
    const content = sources
      .split(' ')
      .map((p) => c.readFile(p) ?? '')
      .join('')
    c.writeFile(dest, content, { owner, group, mode })
    c.mutated(`copy ${dest}`)
    return { code: 0 }
  })
}

/** The role tests' stack with a VIP on its haproxy host. */
function pkiInventory(vars: Record<string, unknown>): Record<string, unknown> {
  const doc = stackInventory(vars) as { all: { children: { haproxy: { vars?: object } } } }
  doc.all.children.haproxy.vars = { vip_address: '10.0.0.100' }
  return doc
}

async function pkiLab(vars: Record<string, unknown> = { tls_enabled: true }): Promise<ScriptedLab> {
  const lab = await scriptedLab(pkiInventory(vars))
  t.teardown(() => lab.cleanup())
  for (const name of lab.inventory.hosts.keys()) realOpenssl(lab.host(name))
  return lab
}

const caPaths = (lab: ScriptedLab) => {
  const base = join(dirname(lab.inventory.file), 'hosts')
  return { cert: `${base}.ca.crt`, key: `${base}.ca.key` }
}

/** openssl's text of a host's certificate (or another it holds), after verifying it against the CA. */
function verified(lab: ScriptedLab, host: string, path = `${TLS}/host.crt`): string {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-verify-'))
  try {
    writeFileSync(join(dir, 'host.crt'), lab.host(host).readFile(path) ?? '')
    const verdict = openssl(['verify', '-CAfile', caPaths(lab).cert, join(dir, 'host.crt')])
    if (!verdict.includes(': OK')) throw new Error(verdict)
    return openssl(['x509', '-in', join(dir, 'host.crt'), '-noout', '-text'])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('a fresh stack gets a CA, a key made on each host and a certificate for its names', async (t) => {
  const lab = await pkiLab()
  const run = await lab.run(play)
  t.ok(run.success, run.lines.join('\n'))
  t.equal(statSync(caPaths(lab).key).mode & 0o777, 0o600, 'the CA key is private')
  const db1 = lab.host('db1')
  t.match(db1.fs.get(`${TLS}/host.key`), { mode: '0600', owner: 'root' })
  t.notOk(db1.writes.includes(`${TLS}/host.key`), 'the key was made on the host, never uploaded from the controller')
  t.match(verified(lab, 'db1'), /DNS:db1, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:10\.0\.0\.11\n/)
  t.match(verified(lab, 'lb1'), /IP Address:10\.0\.0\.20, IP Address:10\.0\.0\.100/, 'the VIP on a haproxy host')
  for (const service of ['etcd', 'postgres', 'patroni'])
    t.match(db1.fs.get(`${TLS}/${service}/host.key`), { mode: '0640', owner: 'root', group: `hastack-tls-${service}` })
  t.equal(db1.readFile(`${TLS}/etcd/host.key`), db1.readFile(`${TLS}/host.key`))
  t.match(lab.host('redis1').fs.get(`${TLS}/redis/host.key`), { group: 'hastack-tls-redis' })
  t.notOk(lab.host('redis1').fs.has(`${TLS}/etcd/host.key`), 'no copy for a service the host does not run')
  const lb1 = lab.host('lb1')
  t.match(lb1.fs.get(`${TLS}/haproxy/host.pem`), { mode: '0640', owner: 'root', group: 'hastack-tls-haproxy' })
  t.equal(
    lb1.readFile(`${TLS}/haproxy/host.pem`),
    `${lb1.readFile(`${TLS}/host.crt`)}${lb1.readFile(`${TLS}/host.key`)}`,
    "HAProxy's copy: the certificate then the key, in one file",
  )
  t.notOk(lb1.fs.has(`${TLS}/haproxy/host.key`), 'HAProxy gets no separate key')
  t.same(db1.unmatched, [])

  const again = await lab.run(play)
  for (const host of lab.inventory.hosts.keys()) t.equal(again.stats.get(host)?.changed, 0, `${host}: nothing changes`)
})

/** The role tests' stack with a pgBackRest repository host of its own. */
function backupPkiInventory(vars: Record<string, unknown>): Record<string, unknown> {
  const doc = pkiInventory(vars) as { all: { children: Record<string, unknown> } }
  doc.all.children.backup_repo = { hosts: { bk1: { address: '10.0.0.40' } } }
  return doc
}

const CLIENT = `${TLS}/postgres/pgbackrest-client.crt`
const CLIENT_ISSUE = "Ensure pgBackRest's client certificate (CommonName the host's name) is current"

t.test("a member gets pgBackRest's client certificate, named in its CommonName, for its own key", async (t) => {
  const lab = await scriptedLab(backupPkiInventory({ tls_enabled: true }))
  t.teardown(() => lab.cleanup())
  for (const name of lab.inventory.hosts.keys()) realOpenssl(lab.host(name))
  t.ok((await lab.run(play)).success)
  const db2 = lab.host('db2')
  const text = verified(lab, 'db2', CLIENT)
  t.match(text, /Subject: O = hastack, OU = db2, CN = db2\n/)
  t.match(text, /DNS:db2, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:10\.0\.0\.12\n/)
  t.match(db2.fs.get(CLIENT), { mode: '0644', owner: 'root' })
  const publicKey = (pem: string) => openssl(['x509', '-noout', '-pubkey'], pem)
  t.equal(publicKey(db2.readFile(CLIENT)!), publicKey(db2.readFile(`${TLS}/host.crt`)!), "the host's key")
  t.match(verified(lab, 'db2'), /Subject: O = hastack, OU = db2\n/, 'the host certificate keeps no CommonName')
  const bk1 = lab.host('bk1')
  t.match(bk1.fs.get(`${TLS}/postgres/host.key`), { group: 'hastack-tls-postgres' }, "the server's copy, as postgres")
  t.notOk(bk1.fs.has(CLIENT), 'the repository host is no client')
  t.notOk(lab.host('redis1').fs.has(CLIENT), 'nor is a host that runs no PostgreSQL')
  const again = await lab.run(play)
  for (const host of lab.inventory.hosts.keys()) t.equal(again.stats.get(host)?.changed, 0, `${host}: nothing changes`)

  await lab.reconfigure(backupPkiInventory({ tls_enabled: true, tls_renew_margin_days: 365 }))
  const before = db2.readFile(CLIENT)
  const renewal = await lab.run(play)
  t.match(
    renewal.tasks('db2').find((x) => x.name === CLIENT_ISSUE),
    { status: 'changed', reason: /within/ },
  )
  t.not(db2.readFile(CLIENT), before, 'renewed with the host certificate')
})

t.test('with pgbackrest_tls false no client certificate is issued', async (t) => {
  const lab = await scriptedLab(backupPkiInventory({ tls_enabled: true, pgbackrest_tls: false }))
  t.teardown(() => lab.cleanup())
  for (const name of lab.inventory.hosts.keys()) realOpenssl(lab.host(name))
  t.ok((await lab.run(play)).success)
  t.notOk(lab.host('db2').fs.has(CLIENT))
  t.notOk(lab.host('bk1').fs.has(`${TLS}/postgres/host.key`), 'no server, no copy for it')
})

t.test('a certificate inside the renewal margin is issued again for the same key', async (t) => {
  const lab = await pkiLab()
  await lab.run(play)
  const db1 = lab.host('db1')
  const [key, cert] = [db1.readFile(`${TLS}/host.key`), db1.readFile(`${TLS}/host.crt`)]
  await lab.reconfigure(pkiInventory({ tls_enabled: true, tls_renew_margin_days: 365 }))
  const run = await lab.run(play)
  const issued = run.tasks('db1').find((x) => x.name === ISSUE)
  t.equal(issued?.status, 'changed')
  t.match(issued?.reason, /within tls_renew_margin_days \(365\)/)
  t.equal(db1.readFile(`${TLS}/host.key`), key, 'the key stays')
  t.not(db1.readFile(`${TLS}/host.crt`), cert, 'a new certificate')
  t.equal(db1.readFile(`${TLS}/postgres/host.crt`), db1.readFile(`${TLS}/host.crt`), "the services' copies follow")
})

t.test('a replaced host key gets a certificate of its own', async (t) => {
  const lab = await pkiLab()
  await lab.run(play)
  const db2 = lab.host('db2')
  db2.writeFile(`${TLS}/host.key`, openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']), {
    mode: '0600',
  })
  const run = await lab.run(play)
  t.match(
    run.tasks('db2').find((x) => x.name === ISSUE),
    { status: 'changed', reason: /not for the host's key/ },
  )
  t.match(verified(lab, 'db2'), /DNS:db2/)
})

t.test('without tls_enabled and in check mode nothing is generated or written', async (t) => {
  const off = await pkiLab({})
  const run = await off.run(play)
  t.ok(run.success)
  t.notOk(existsSync(caPaths(off).key), 'no CA')
  t.same(off.host('db1').writes, [])
  const checked = await pkiLab()
  const dry = await checked.run(play, { check: true })
  t.ok(dry.success)
  t.notOk(existsSync(caPaths(checked).key), 'check mode makes no CA')
  t.same(checked.host('db1').mutations, [])
})
