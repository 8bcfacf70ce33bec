/**
 * Debian packages: install and remove a batch in one apt-get call,
 * non-interactively, waiting for the dpkg lock, and refreshing the package
 * index only when it is older than `cacheValidSeconds` (or absent).
 */
import { quoteArgs } from '../connection/quote.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'

export interface PackagesArgs extends TaskOptions {
  install?: string[]
  remove?: string[]
  /** Refresh the index first when it is older than this (default 3600 s). */
  cacheValidSeconds?: number
  /** Install recommended packages too (default false: lean hosts). */
  installRecommends?: boolean
  /** Extra environment for dpkg (for example RUNLEVEL=1 to keep services from starting). */
  env?: Record<string, string>
}

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' }
const APT_OPTS = ['-y', '-q', '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold']

/** Parse `dpkg-query -W -f '${Package} ${db:Status-Status}\n'` into the set of installed packages. */
export function parseInstalled(stdout: string): Set<string> {
  const installed = new Set<string>()
  for (const line of stdout.split('\n')) {
    const [name, status] = line.trim().split(/\s+/)
    if (name && status === 'installed') installed.add(name.split(':')[0]!)
  }
  return installed
}

/** Ensure packages are installed (and others removed), in one apt-get call each. */
export function packages(args: PackagesArgs) {
  const install = args.install ?? []
  const remove = args.remove ?? []
  const label = [...install, ...remove.map((p) => `-${p}`)].join(', ')
  return defineTask(`Ensure packages are present: ${label}`, args, async (ctx) => {
    const names = [...install, ...remove]
    const query = await ctx.conn.run(`dpkg-query -W -f '\${Package} \${db:Status-Status}\\n' ${quoteArgs(names)} 2>/dev/null; true`)
    const installed = parseInstalled(query.stdout)
    const missing = install.filter((p) => !installed.has(p))
    const present = remove.filter((p) => installed.has(p))
    if (missing.length === 0 && present.length === 0) return noChange()
    const reason = [missing.length ? `to install: ${missing.join(' ')}` : '', present.length ? `to remove: ${present.join(' ')}` : '']
      .filter(Boolean)
      .join('; ')
    return {
      change: true,
      reason,
      apply: async () => {
        const env = { ...APT_ENV, ...args.env }
        const maxAge = args.cacheValidSeconds ?? 3600
        if (missing.length) {
          // Refresh the index only when it is stale: newest list file older than maxAge, or none at all.
          const refresh = `n=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -newermt "${maxAge} seconds ago" 2>/dev/null | head -n1); [ -n "$n" ] || apt-get -q -o DPkg::Lock::Timeout=300 update`
          const recommends = args.installRecommends ? [] : ['--no-install-recommends']
          await ctx.conn.run(`${refresh} && apt-get install ${quoteArgs([...APT_OPTS, ...recommends, ...missing])}`, { env, check: true, timeoutMs: 1_200_000 })
        }
        if (present.length) {
          await ctx.conn.run(`apt-get remove ${quoteArgs([...APT_OPTS, ...present])}`, { env, check: true, timeoutMs: 600_000 })
        }
      },
    }
  })
}
