/**
 * Reading a host certificate against what it must be: issued by the CA, for exactly the wanted names,
 * with no CommonName (its names are in subjectAltName only: etcd's JSON gateway, which Patroni uses,
 * refuses a client certificate with a CommonName once etcd authenticates) or with exactly the wanted one
 * (pgBackRest's client certificate: its TLS server authorizes a client by its CN), for the host's own key, and
 * valid beyond the renewal margin. The certificates role renews when any
 * of these fails; the audit reports certificates inside the margin. Pure: PEM text in, reasons out.
 */
import { X509Certificate } from 'node:crypto'
import type { CertificateNames } from './ca.ts'

const DAY_MS = 24 * 60 * 60 * 1000

/** The names a certificate carries, from its subjectAltName (`DNS:a, IP Address:10.0.0.1`). */
export function certificateNamesOf(cert: X509Certificate): CertificateNames {
  const names: CertificateNames = { dns: [], ips: [] }
  for (const entry of (cert.subjectAltName ?? '').split(',').map((s) => s.trim())) {
    if (entry.startsWith('DNS:')) names.dns.push(entry.slice(4))
    else if (entry.startsWith('IP Address:')) names.ips.push(entry.slice('IP Address:'.length))
  }
  return names
}

/** Whether a certificate expires within `marginDays` of `now`. */
export function expiresWithin(cert: X509Certificate, marginDays: number, now: Date): boolean {
  return new Date(cert.validTo).getTime() - now.getTime() <= marginDays * DAY_MS
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',')
}

const spki = (pem: string) => pem.replace(/\s+/g, '')

/** The CA certificate parsed once per PEM text: every host's checks in a run compare against the same CA. */
const parsedCas = new Map<string, X509Certificate>()
function parsedCa(pem: string): X509Certificate {
  let ca = parsedCas.get(pem)
  if (!ca) parsedCas.set(pem, (ca = new X509Certificate(pem)))
  return ca
}

export interface WantedCertificate {
  caPem: string
  names: CertificateNames
  /** The host key's public half (SPKI PEM); undefined when the host has no key yet. */
  publicKeyPem?: string
  renewMarginDays: number
  now: Date
  /** The CommonName it must carry; undefined: it must carry none. */
  commonName?: string
}

/** The CommonName of a certificate's subject, undefined without one. */
export function commonNameOf(cert: X509Certificate): string | undefined {
  return /^CN=(.*)$/m.exec(cert.subject)?.[1]
}

/** Why this certificate must be (re)issued; empty when it is as wanted. */
export function certificateProblems(certPem: string | undefined, want: WantedCertificate): string[] {
  if (certPem === undefined) return ['the certificate is missing']
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch {
    return ['the certificate is not readable PEM']
  }
  const problems: string[] = []
  const ca = parsedCa(want.caPem)
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) problems.push('it was not issued by the current CA')
  if (expiresWithin(cert, want.renewMarginDays, want.now))
    problems.push(`it expires on ${cert.validTo}, within tls_renew_margin_days (${want.renewMarginDays})`)
  const names = certificateNamesOf(cert)
  if (!sameSet(names.dns, want.names.dns) || !sameSet(names.ips, want.names.ips))
    problems.push(`its names (${[...names.dns, ...names.ips].join(', ')}) differ from the wanted ones`)
  const commonName = commonNameOf(cert)
  if (want.commonName === undefined && commonName !== undefined)
    problems.push('it has a CommonName (etcd refuses it from Patroni)')
  if (want.commonName !== undefined && commonName !== want.commonName)
    problems.push(`its CommonName (${commonName ?? 'none'}) is not ${want.commonName}`)
  const own = cert.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  if (want.publicKeyPem === undefined || spki(own) !== spki(want.publicKeyPem))
    problems.push("it is not for the host's key")
  return problems
}
