/**
 * The CA and host certificates made by the real code (roles/certificates/ca.ts, inspect.ts) and read back
 * with the openssl command line: the generated CA key is mode 0600 and made once, a signed host
 * certificate verifies against the CA and carries exactly the names the controller chose, and the
 * renewal decisions (expiry margin, names, key, CA) and the checks of a user's own CA hold.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { caFiles, caProblems, ensureCa, signRequest, type CaFiles } from '../../roles/certificates/ca.ts'
import { certificateProblems } from '../../roles/certificates/inspect.ts'

const NAMES = { dns: ['node1', 'localhost'], ips: ['127.0.0.1', '10.0.0.11', '10.0.0.100'] }
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: 'pipe' })

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-pki-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function newCa(dir: string, name = 'hosts'): Promise<CaFiles> {
  const files = caFiles(join(dir, `${name}.yml`), {})
  await ensureCa(files, `hastack CA ${name}`, 3650)
  return files
}

/** A host key and a request for it, made as the host makes them; returns the key path and the request. */
function hostRequest(dir: string, name = 'host', subject = '/O=hastack/OU=node1') {
  const key = join(dir, `${name}.key`)
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key)
  const csr = openssl('req', '-new', '-key', key, '-subj', subject)
  return { key, csr, publicKey: openssl('pkey', '-in', key, '-pubout') }
}

t.test('the generated CA lies beside the inventory, its key mode 0600, and is made once', async (t) => {
  const dir = workdir()
  const files = await newCa(dir)
  t.equal(files.key, join(dir, 'hosts.ca.key'))
  t.equal(statSync(files.key).mode & 0o777, 0o600)
  const text = openssl('x509', '-in', files.cert, '-noout', '-text')
  t.match(text, /CA:TRUE/)
  t.match(text, /Certificate Sign/)
  const before = readFileSync(files.key, 'utf8')
  t.same(await ensureCa(files, 'hastack CA hosts', 3650), { created: false })
  t.equal(readFileSync(files.key, 'utf8'), before, 'a second run keeps the key')
  t.same(caProblems(files), [])
})

t.test('a host certificate verifies against the CA and names exactly the chosen names', async (t) => {
  const dir = workdir()
  const ca = await newCa(dir)
  const request = hostRequest(dir)
  const pem = await signRequest(ca, request.csr, NAMES, 365)
  writeFileSync(join(dir, 'host.crt'), pem)
  t.match(openssl('verify', '-CAfile', ca.cert, join(dir, 'host.crt')), /: OK/)
  const text = openssl('x509', '-in', join(dir, 'host.crt'), '-noout', '-text')
  t.match(text, /DNS:node1, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:10\.0\.0\.11, IP Address:10\.0\.0\.100/)
  t.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/)
  t.match(text, /CA:FALSE/)
  t.match(text, /Subject: O = hastack, OU = node1\n/)
  t.notOk(readFileSync(ca.key, 'utf8').includes(pem.slice(30, 60)), 'the certificate is no copy of the key')
})

t.test('a current certificate needs nothing; every way of falling out of date is named', async (t) => {
  const dir = workdir()
  const ca = await newCa(dir)
  const request = hostRequest(dir)
  const pem = await signRequest(ca, request.csr, NAMES, 365)
  const caPem = readFileSync(ca.cert, 'utf8')
  const want = { caPem, names: NAMES, publicKeyPem: request.publicKey, renewMarginDays: 30, now: new Date() }
  t.same(certificateProblems(pem, want), [])
  t.same(certificateProblems(undefined, want), ['the certificate is missing'])
  t.match(certificateProblems(pem, { ...want, renewMarginDays: 366 }), [/expires on .*within tls_renew_margin_days/])
  const later = new Date(Date.now() + 340 * 24 * 3600 * 1000)
  t.match(certificateProblems(pem, { ...want, now: later }), [/within tls_renew_margin_days \(30\)/], 'near its end')
  t.match(certificateProblems(pem, { ...want, names: { ...NAMES, ips: ['127.0.0.1', '10.0.0.11'] } }), [
    /names .* differ/,
  ])
  t.same(certificateProblems(pem, { ...want, publicKeyPem: hostRequest(dir, 'other').publicKey }), [
    "it is not for the host's key",
  ])
  const otherCa = await newCa(dir, 'other')
  t.same(certificateProblems(pem, { ...want, caPem: readFileSync(otherCa.cert, 'utf8') }), [
    'it was not issued by the current CA',
  ])
  const named = hostRequest(dir, 'named', '/CN=node1')
  const withCn = await signRequest(ca, named.csr, NAMES, 365)
  t.same(certificateProblems(withCn, { ...want, publicKeyPem: named.publicKey }), [
    'it has a CommonName (etcd refuses it from Patroni)',
  ])
})

t.test("a client certificate for pgBackRest must carry exactly the host's name as its CommonName", async (t) => {
  const dir = workdir()
  const ca = await newCa(dir)
  const caPem = readFileSync(ca.cert, 'utf8')
  const named = hostRequest(dir, 'named', '/O=hastack/OU=node1/CN=node1')
  const withCn = await signRequest(ca, named.csr, NAMES, 365)
  const want = { caPem, names: NAMES, publicKeyPem: named.publicKey, renewMarginDays: 30, now: new Date() }
  t.same(certificateProblems(withCn, { ...want, commonName: 'node1' }), [])
  t.same(certificateProblems(withCn, { ...want, commonName: 'node2' }), ['its CommonName (node1) is not node2'])
  const plain = hostRequest(dir, 'plain')
  const withoutCn = await signRequest(ca, plain.csr, NAMES, 365)
  t.same(certificateProblems(withoutCn, { ...want, publicKeyPem: plain.publicKey, commonName: 'node1' }), [
    'its CommonName (none) is not node1',
  ])
})

t.test(
  "a user's own CA is refused with a loose key, a key of another CA, or a certificate that is no CA",
  async (t) => {
    const dir = workdir()
    const mine = await newCa(dir, 'mine')
    const other = await newCa(dir, 'other')
    const own = (cert: string, key: string) =>
      caFiles(join(dir, 'hosts.yml'), { tls_ca_cert_file: cert, tls_ca_key_file: key })
    t.same(caProblems(own('mine.ca.crt', 'mine.ca.key')), [])
    t.match(caProblems(own('mine.ca.crt', 'other.ca.key')), [/does not belong to/])
    chmodSync(other.key, 0o640)
    t.match(caProblems(own('other.ca.crt', 'other.ca.key')), [/readable by group or others \(mode 0640\)/])
    const request = hostRequest(dir)
    writeFileSync(join(dir, 'leaf.crt'), await signRequest(mine, request.csr, NAMES, 30))
    t.match(caProblems(own('leaf.crt', 'host.key')), [/is no CA certificate/])
    t.match(caProblems(own('missing.crt', 'mine.ca.key')), [/needs both/])
    t.same(caProblems(caFiles(join(dir, 'fresh.yml'), {})), [], "hastack's own CA may not exist yet")
  },
)
