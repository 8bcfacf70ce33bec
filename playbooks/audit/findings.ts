/**
 * The audit's judgements, pure: a host's listening sockets (`ss -Hltnup`) against the ports its groups
 * expose (roles/nftables/exposure.ts, the firewall's own source), files holding a secret that others may
 * read, certificates inside the renewal margin. Each finding names the host and, for sockets, the port.
 */
import { X509Certificate } from 'node:crypto'
import { expiresWithin } from '../../roles/certificates/inspect.ts'
import type { Exposure } from '../../roles/nftables/exposure.ts'

export interface Finding {
  host: string
  /**
   * What kind of problem: an unexpected listener, a loose secret file, a certificate, an open service, a
   * service answering in plaintext on a TLS port (tls.ts).
   */
  kind: 'listener' | 'secret-file' | 'certificate' | 'no-auth' | 'no-tls'
  port?: number
  message: string
}

export interface Socket {
  protocol: 'tcp' | 'udp'
  address: string
  port: number
  process: string
}

/**
 * Sockets every Debian host may have that serve nobody else: the DHCP clients and chrony's command port.
 * Anything else must be in the host's exposures.
 */
export const SYSTEM_SOCKETS: { protocol: 'tcp' | 'udp'; port: number; why: string }[] = [
  { protocol: 'udp', port: 68, why: 'DHCP client' },
  { protocol: 'udp', port: 546, why: 'DHCPv6 client' },
  { protocol: 'udp', port: 323, why: "chrony's command port" },
]

/** One line of `ss -Hltnup`: `tcp LISTEN 0 4096 10.0.0.11:2379 0.0.0.0:* users:(("etcd",pid=1,fd=7))`. */
export function parseSocket(line: string): Socket | undefined {
  const fields = line.trim().split(/\s+/)
  const [netid, , , , local] = fields
  if ((netid !== 'tcp' && netid !== 'udp') || local === undefined) return undefined
  const at = local.lastIndexOf(':')
  const port = Number(local.slice(at + 1))
  if (at < 0 || !Number.isInteger(port)) return undefined
  // `[::1]:6379`, `127.0.0.53%lo:53`, `*:22`: brackets and the interface go.
  const address = local
    .slice(0, at)
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '')
  const process = /users:\(\("([^"]+)"/.exec(line)?.[1] ?? '?'
  return { protocol: netid, address, port, process }
}

/** Whether only this machine can reach the address (127.0.0.0/8, ::1, their IPv4-mapped form). */
export function isLoopback(address: string): boolean {
  return /^(::ffff:)?127\./.test(address) || address === '::1'
}

export interface ListenerReport {
  /** Reachable from other hosts and not expected: the audit fails. */
  unexpected: Finding[]
  /** Bound to loopback only and not expected: reported, not failing (nothing else can reach them). */
  localOnly: string[]
}

/** Compare a host's sockets with its exposures. */
export function judgeListeners(host: string, sockets: Socket[], exposures: Exposure[]): ListenerReport {
  const expected = new Set([
    ...exposures.filter((e) => e.port !== undefined).map((e) => `${e.protocol}/${String(e.port)}`),
    ...SYSTEM_SOCKETS.map((s) => `${s.protocol}/${s.port}`),
  ])
  const report: ListenerReport = { unexpected: [], localOnly: [] }
  const seen = new Set<string>()
  for (const s of sockets) {
    const key = `${s.protocol}/${s.port}`
    if (expected.has(key) || seen.has(`${key} ${s.address}`)) continue
    seen.add(`${key} ${s.address}`)
    const where = `${s.address}:${s.port}/${s.protocol} (${s.process})`
    if (isLoopback(s.address)) report.localOnly.push(`${host}: ${where} on loopback only`)
    else
      report.unexpected.push({
        host,
        kind: 'listener',
        port: s.port,
        message: `${host} port ${s.port}: unexpected listener ${where}, not needed by its groups`,
      })
  }
  return report
}

/** Lines of `stat -c '%a|%U|%G|%n'` for files holding a secret or a private key: those others may read or write. */
export function looseSecretFiles(host: string, statLines: string): Finding[] {
  const findings: Finding[] = []
  for (const line of statLines.split('\n').filter(Boolean)) {
    const [mode = '', owner, group, ...name] = line.split('|')
    if ((parseInt(mode, 8) & 0o007) === 0) continue
    const file = name.join('|')
    const how = `mode ${mode.padStart(4, '0')} (${owner}:${group})`
    findings.push({
      host,
      kind: 'secret-file',
      message: `${host}: ${file} holds a secret and is ${how}: others may read it`,
    })
  }
  return findings
}

/** PEM certificates (each after a `==> path` line) expiring within the margin. */
export function expiringCertificates(host: string, listing: string, marginDays: number, now: Date): Finding[] {
  const findings: Finding[] = []
  for (const block of listing.split(/^==> /m).filter((b) => b.trim())) {
    const [file = '', ...rest] = block.split('\n')
    const pem = rest.join('\n')
    let cert: X509Certificate
    try {
      cert = new X509Certificate(pem)
    } catch {
      findings.push({ host, kind: 'certificate', message: `${host}: ${file} is not a readable certificate` })
      continue
    }
    if (expiresWithin(cert, marginDays, now))
      findings.push({
        host,
        kind: 'certificate',
        message: `${host}: ${file} expires on ${cert.validTo}, within tls_renew_margin_days (${marginDays})`,
      })
  }
  return findings
}
