/**
 * Pending Debian package updates for `rolling-restart --upgrade`: `apt-get -s upgrade` lists them
 * (simulated: nothing is installed), only minor versions are applied (the upstream major version
 * must stay: 15.4 → 15.10 yes, 15 → 16 never; date-based versions have none), installed with
 * service starts denied (Debian's maintainer scripts would restart services in their own order),
 * and then the units of the components whose packages changed are restarted by the roll, one host
 * at a time.
 */
import type { Connection } from '../../lib/types.ts'
import { quoteArgs } from '../../lib/connection/quote.ts'
import { APT_UPDATE, retryWhileLocked, withServiceStartsDenied } from '../../lib/tasks/apt.ts'
import { APP_SERVICE_UNITS } from './balancers.ts'

export interface PendingUpdate {
  name: string
  from: string
  to: string
}

/** The updates in `apt-get -s upgrade` output: `Inst NAME [OLD] (NEW SOURCE [ARCH])`. */
export function parsePending(stdout: string): PendingUpdate[] {
  const updates: PendingUpdate[] = []
  for (const line of stdout.split('\n')) {
    const m = /^Inst (\S+) \[([^\]]+)\] \((\S+) /.exec(line)
    if (m) updates.push({ name: m[1]!, from: m[2]!, to: m[3]! })
  }
  return updates
}

/**
 * The upstream major version: the leading number, without the epoch; undefined for a date-based
 * version (a leading number of four digits or more: tzdata 2026f, ca-certificates 20250419), which
 * has no major version and counts as minor within the release.
 */
export function majorVersion(version: string): string | undefined {
  const lead = /^\d+/.exec(version.replace(/^\d+:/, ''))?.[0]
  return lead !== undefined && lead.length < 4 ? lead : undefined
}

/** Minor updates (applied) and major ones (left alone, named to the operator). */
export function splitByMajor(updates: PendingUpdate[]): { minor: PendingUpdate[]; major: PendingUpdate[] } {
  const minor = updates.filter((u) => majorVersion(u.from) === majorVersion(u.to))
  return { minor, major: updates.filter((u) => !minor.includes(u)) }
}

/**
 * The units to restart after these packages changed, among the host's `units`: a component's own
 * packages restart its unit; a shared library (libc, OpenSSL) restarts every unit of the host.
 */
export function unitsToRestart(packages: string[], units: string[]): string[] {
  const owners: [RegExp, string[]][] = [
    [/^etcd/, ['etcd']],
    [/^(postgresql|libpq|patroni|python3-psycopg)/, ['patroni']],
    [/^redis-sentinel$/, ['redis-sentinel']],
    [/^redis/, ['redis-server']],
    [/^haproxy$/, ['haproxy']],
    [/^keepalived$/, ['keepalived']],
    [/^(nodejs|libnode)/, APP_SERVICE_UNITS],
    [/^(libc6|libssl|openssl|libsystemd|libjemalloc)/, units],
  ]
  const wanted = new Set<string>()
  for (const p of packages)
    for (const [pattern, owned] of owners) if (pattern.test(p)) owned.forEach((u) => wanted.add(u))
  return units.filter((u) => wanted.has(u))
}

const SIMULATE = `timeout 120 apt-get ${quoteArgs(['-s', '-q', 'upgrade'])}`

/** Refresh the package lists and list the pending updates (nothing installed). */
export async function pendingUpdates(conn: Connection): Promise<PendingUpdate[]> {
  const r = await conn.run(retryWhileLocked(`${APT_UPDATE} && ${SIMULATE}`), { timeoutMs: 600_000 })
  if (r.code !== 0) throw new Error(`apt-get -s upgrade failed on ${conn.host}: ${r.stderr.trim().split('\n').pop()}`)
  return parsePending(r.stdout)
}

/** Install these updates only (no new package, nothing removed), keeping local configuration files. */
export async function applyUpdates(conn: Connection, updates: PendingUpdate[]): Promise<void> {
  const args = ['-q', '-y', '-o', 'Dpkg::Options::=--force-confold', 'install', '--only-upgrade']
  const install = `timeout 900 apt-get ${quoteArgs([...args, ...updates.map((u) => u.name)])}`
  const r = await conn.run(withServiceStartsDenied(retryWhileLocked(install)), {
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    timeoutMs: 1_000_000,
  })
  if (r.code !== 0) throw new Error(`apt-get install --only-upgrade failed on ${conn.host}: ${r.stderr.trim()}`)
}
