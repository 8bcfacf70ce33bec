/**
 * The audit over a fleet: every host read in parallel (probes.ts) and judged (findings.ts). Hosts
 * that cannot be read count as failures. Returns the exit code (0 clean, 2 findings or unreadable
 * hosts) and the report --json writes.
 */
import { secretValues } from '../../lib/inventory/index.ts'
import { certificatesRole } from '../../roles/certificates/index.ts'
import { exposureVars, hostExposures } from '../../roles/nftables/exposure.ts'
import type { Day2Outcome, Fleet } from '../day2/fleet.ts'
import { expiringCertificates, judgeListeners, looseSecretFiles, parseSocket, type Finding } from './findings.ts'
import { certificateListing, listeningSockets, secretFileModes, unauthenticatedServices } from './probes.ts'
import { plaintextServices } from './tls.ts'

export interface HostAudit {
  host: string
  findings: Finding[]
  /** Unexpected sockets bound to loopback only: shown, not failing. */
  localOnly: string[]
  error?: string
}

async function auditHost(fleet: Fleet, host: string, secrets: string[], now: Date): Promise<HostAudit> {
  const { inventory } = fleet
  const v = { ...certificatesRole.defaults, ...exposureVars(inventory, host) }
  try {
    const conn = await fleet.conn(host)
    const sockets = (await listeningSockets(conn)).split('\n').flatMap((l) => parseSocket(l) ?? [])
    const listeners = judgeListeners(host, sockets, hostExposures(inventory, host))
    const certificates = await certificateListing(conn, String(v.tls_dir))
    const findings: Finding[] = [
      ...listeners.unexpected,
      ...looseSecretFiles(host, await secretFileModes(conn, secrets, String(v.tls_dir))),
      ...expiringCertificates(host, certificates, Number(v.tls_renew_margin_days), now),
      ...(await unauthenticatedServices(conn, host, inventory.hosts.get(host)!.groups, v)),
      ...(await plaintextServices(conn, host, inventory.hosts.get(host)!.groups, v)),
    ]
    return { host, findings, localOnly: listeners.localOnly }
  } catch (error) {
    return { host, findings: [], localOnly: [], error: (error as Error).message }
  }
}

export async function auditFleet(fleet: Fleet, now = new Date()): Promise<Day2Outcome> {
  const secrets = secretValues(fleet.inventory)
  const hosts = await Promise.all([...fleet.inventory.hosts.keys()].map((h) => auditHost(fleet, h, secrets, now)))
  for (const { host, findings, localOnly, error } of hosts) {
    if (error !== undefined) fleet.say(`${host}: UNREADABLE: ${error}`)
    for (const f of findings) fleet.say(`FINDING ${f.message}`)
    for (const line of localOnly) fleet.say(`note: ${line}`)
  }
  const count = hosts.reduce((n, h) => n + h.findings.length, 0)
  const unreadable = hosts.filter((h) => h.error !== undefined).length
  fleet.say(`audit: ${count} finding(s) on ${hosts.length} host(s)${unreadable ? `, ${unreadable} unreadable` : ''}`)
  return { code: count === 0 && unreadable === 0 ? 0 : 2, report: { findings: count, unreadable, hosts } }
}
