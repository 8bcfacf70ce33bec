/**
 * Debian packages: install and remove a batch in one apt-get call,
 * non-interactively, refreshing the package index only when it is older than
 * `cacheValidSeconds` (or absent).
 *
 * apt waits (bounded) for another apt or dpkg, such as unattended-upgrades:
 * `DPkg::Lock::Timeout` covers dpkg's locks, and since `apt-get update` fails at
 * once on the lists lock, every apt-get call is retried while it fails on a held
 * lock, for APT_LOCK_WAIT_SECONDS at most.
 *
 * With `denyServiceStarts`, a deny-all `policy-rc.d` is placed and removed within
 * the same remote command as the install, by a trap that also runs on
 * HUP/INT/TERM and when the connection drops (the remote command then finishes
 * on its own), so an interrupted run does not leave it behind.
 */
import type { Probe } from '../types.ts'
import { quote, quoteArgs } from '../connection/quote.ts'
import { packageStateCommand } from '../facts/packages.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'

/** Longest wait for locks held by another apt or dpkg, per apt-get call. */
export const APT_LOCK_WAIT_SECONDS = 300
/** Debian's hook asked before a package starts a service (exit 101: do not start). */
export const POLICY_RC_D = '/usr/sbin/policy-rc.d'
/** Marks a policy-rc.d as hastack's own. */
export const POLICY_MARKER = '# hastack: services do not start while packages install'

/** Whether a policy-rc.d's text is hastack's own (one that only an interrupted install can leave behind). */
export const isOwnPolicy = (text: string) => text.split('\n').includes(POLICY_MARKER)

export interface PackagesArgs extends TaskOptions {
  install?: string[]
  remove?: string[]
  /** Refresh the index first when it is older than this (default 3600 s). */
  cacheValidSeconds?: number
  /** Install recommended packages too (default false: lean hosts). */
  installRecommends?: boolean
  /** Extra environment for dpkg (for example RUNLEVEL=1 to keep services from starting). */
  env?: Record<string, string>
  /** Keep installed packages from starting their services (a policy-rc.d for the install only). */
  denyServiceStarts?: boolean
  /**
   * Install some packages from .deb files already on the host instead of the index: package name →
   * path (apt still fetches their dependencies from the index).
   */
  debFiles?: Record<string, string>
}

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' }
const LOCK_TIMEOUT = ['-o', `DPkg::Lock::Timeout=${APT_LOCK_WAIT_SECONDS}`]
const CONFFILES = ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold']
const APT_OPTS = ['-y', '-q', ...LOCK_TIMEOUT, ...CONFFILES]
/** A hung index refresh (a mirror or proxy that stops answering) is ended after this long and tried again. */
export const APT_UPDATE_TIMEOUT_SECONDS = 120
/** The index refresh, bounded in time. */
export const APT_UPDATE = `timeout ${APT_UPDATE_TIMEOUT_SECONDS} apt-get ${quoteArgs(['-q', ...LOCK_TIMEOUT, 'update'])}`

/**
 * Shell text that runs an apt-get command line again, every 5 s, while it fails
 * because another process holds an apt or dpkg lock, or was ended by `timeout`
 * (exit 124: it hung), for `seconds` at most; any other failure ends it at once
 * with apt's output on stderr and its exit code.
 */
export function retryWhileLocked(command: string, seconds = APT_LOCK_WAIT_SECONDS): string {
  if (!Number.isInteger(seconds) || seconds < 0) throw new TypeError(`invalid lock wait: ${seconds}`)
  return [
    '(',
    `end=$(($(date +%s) + ${seconds}))`,
    'while :; do',
    `  out=$(${command} 2>&1) && code=0 || code=$?`,
    '  if [ "$code" -eq 0 ]; then printf \'%s\\n\' "$out"; exit 0; fi',
    '  if [ "$code" -eq 124 ] && [ "$(date +%s)" -lt "$end" ]; then continue; fi',
    '  case $out in',
    "    *'Could not get lock'* | *'Unable to lock'* | *'Unable to acquire the dpkg frontend lock'*)",
    '      if [ "$(date +%s)" -lt "$end" ]; then sleep 5; continue; fi',
    `      printf 'hastack: apt locks still held after ${seconds} s\\n' >&2 ;;`,
    '  esac',
    '  printf \'%s\\n\' "$out" >&2',
    '  exit "$code"',
    'done',
    ')',
  ].join('\n')
}

/**
 * Shell text that runs `command` with service starts denied: places a deny-all
 * policy-rc.d and removes it on every exit path (a trap), in this one command. A
 * policy-rc.d the host already has of its own (without hastack's marker) is left
 * alone and stays in charge.
 */
export function withServiceStartsDenied(command: string, policy = POLICY_RC_D): string {
  const p = quote(policy)
  return [
    `own=0; if [ ! -e ${p} ] || grep -qxF ${quote(POLICY_MARKER)} ${p}; then own=1; fi`,
    `trap 'if [ "$own" = 1 ]; then rm -f -- ${p.replaceAll("'", `'\\''`)}; fi' EXIT`,
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
    `if [ "$own" = 1 ]; then`,
    `  printf '#!/bin/sh\\n%s\\nexit 101\\n' ${quote(POLICY_MARKER)} > ${p} && chmod 0755 ${p} || exit`,
    'fi',
    command,
  ].join('\n')
}

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
  const names = [...install, ...remove]
  const stateQuery = packageStateCommand(names)
  const probes: Probe[] = [{ kind: 'packages', names }]
  return defineTask(`Ensure packages are present: ${label}`, { ...args, probes }, async (ctx) => {
    const query = await ctx.conn.run(stateQuery)
    const installed = parseInstalled(query.stdout)
    const missing = install.filter((p) => !installed.has(p))
    const present = remove.filter((p) => installed.has(p))
    if (missing.length === 0 && present.length === 0) return noChange()
    const reason = [
      missing.length ? `to install: ${missing.join(' ')}` : '',
      present.length ? `to remove: ${present.join(' ')}` : '',
    ]
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
          const newer = `-newermt "${maxAge} seconds ago"`
          const fresh = `find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' ${newer} 2>/dev/null`
          const update = retryWhileLocked(APT_UPDATE)
          const refresh = `n=$(${fresh} | head -n1); [ -n "$n" ] || ${update}`
          const recommends = args.installRecommends ? [] : ['--no-install-recommends']
          const targets = missing.map((p) => args.debFiles?.[p] ?? p)
          const installCommand = `apt-get install ${quoteArgs([...APT_OPTS, ...recommends, ...targets])}`
          const install = `${refresh} && ${retryWhileLocked(installCommand)}`
          const line = args.denyServiceStarts ? withServiceStartsDenied(install) : install
          await ctx.conn.run(line, { env, check: true, timeoutMs: 1_200_000 })
        }
        if (present.length) {
          const remove = retryWhileLocked(`apt-get remove ${quoteArgs([...APT_OPTS, ...present])}`)
          await ctx.conn.run(remove, { env, check: true, timeoutMs: 600_000 })
        }
      },
    }
  })
}
