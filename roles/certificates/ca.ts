/**
 * The certificate authority on the control machine: generated once by hastack beside the inventory's
 * secrets (`<inventory>.ca.key`, mode 0600, and `<inventory>.ca.crt`), or the user's own
 * (`tls_ca_cert_file` / `tls_ca_key_file`, relative to the inventory). It signs the hosts' requests
 * with the names the controller decides (never the names a request asks for). The openssl command
 * line does the X.509 work; the key is only ever named by its path, never read into a message.
 */
import { execFile } from 'node:child_process'
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface CaFiles {
  cert: string
  key: string
  /** The user's own CA (never generated or changed by hastack). */
  own: boolean
}

/** What a host certificate must say: its names and how long it is valid. */
export interface CertificateNames {
  dns: string[]
  ips: string[]
}

/** The CA files of an inventory: the user's (both variables, relative to the inventory) or hastack's. */
export function caFiles(
  inventoryFile: string,
  vars: { tls_ca_cert_file?: unknown; tls_ca_key_file?: unknown },
): CaFiles {
  const dir = path.dirname(path.resolve(inventoryFile))
  if (typeof vars.tls_ca_cert_file === 'string' && typeof vars.tls_ca_key_file === 'string')
    return {
      cert: path.resolve(dir, vars.tls_ca_cert_file),
      key: path.resolve(dir, vars.tls_ca_key_file),
      own: true,
    }
  const base = path.join(dir, path.basename(inventoryFile).replace(/\.ya?ml$/, ''))
  return { cert: `${base}.ca.crt`, key: `${base}.ca.key`, own: false }
}

/**
 * Why these CA files cannot be used (empty: they can): a key readable by group or others, a certificate
 * that is no CA or has expired, a key that does not match the certificate. Absent files of hastack's own
 * CA are no problem (they are generated on the first converge).
 */
export function caProblems(files: CaFiles, now = new Date()): string[] {
  const present = [files.cert, files.key].filter((f) => statSync(f, { throwIfNoEntry: false }))
  if (present.length === 0 && !files.own) return []
  if (present.length < 2) return [`the CA needs both ${files.cert} and ${files.key}`]
  const problems: string[] = []
  const mode = statSync(files.key).mode & 0o777
  if (mode & 0o077)
    problems.push(`CA key ${files.key} is readable by group or others (mode 0${mode.toString(8)}): run chmod 600`)
  let cert: X509Certificate
  try {
    cert = new X509Certificate(readFileSync(files.cert))
  } catch {
    return [...problems, `${files.cert} is no PEM certificate`]
  }
  if (!cert.ca) problems.push(`${files.cert} is no CA certificate (basicConstraints CA:TRUE)`)
  if (new Date(cert.validTo) <= now) problems.push(`the CA certificate ${files.cert} expired on ${cert.validTo}`)
  try {
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(files.key))))
      problems.push(`the CA key ${files.key} does not belong to ${files.cert}`)
  } catch {
    problems.push(`${files.key} is no readable unencrypted PEM private key`)
  }
  return problems
}

/** Generate hastack's CA (an EC P-256 key, mode 0600, and a self-signed certificate) unless it exists. */
export async function ensureCa(files: CaFiles, subject: string, days: number): Promise<{ created: boolean }> {
  if (statSync(files.cert, { throwIfNoEntry: false })) return { created: false }
  if (files.own) throw new Error(`the CA certificate ${files.cert} is missing`)
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  writeFileSync(files.key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
  chmodSync(files.key, 0o600)
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-sha256',
    '-key',
    files.key,
    '-out',
    files.cert,
    '-days',
    String(days),
    '-subj',
    `/CN=${subject}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  return { created: true }
}

/** The subjectAltName value for openssl: `DNS:a,IP:10.0.0.1`. */
export function subjectAltName(names: CertificateNames): string {
  return [...names.dns.map((n) => `DNS:${n}`), ...names.ips.map((ip) => `IP:${ip}`)].join(',')
}

/** Sign a host's request (PEM) with the CA: a server and client certificate for exactly these names. */
export async function signRequest(files: CaFiles, csrPem: string, names: CertificateNames, days: number) {
  const dir = await mkdtemp(path.join(tmpdir(), 'hastack-sign-'))
  try {
    const csr = path.join(dir, 'host.csr')
    const ext = path.join(dir, 'host.ext')
    await writeFile(csr, csrPem)
    await writeFile(
      ext,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        `subjectAltName=${subjectAltName(names)}`,
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        '',
      ].join('\n'),
    )
    const serial = `0x${randomBytes(16).toString('hex')}`
    const { stdout } = await run('openssl', [
      'x509',
      '-req',
      '-sha256',
      '-in',
      csr,
      '-CA',
      files.cert,
      '-CAkey',
      files.key,
      '-set_serial',
      serial,
      '-days',
      String(days),
      '-extfile',
      ext,
    ])
    return stdout
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
