/**
 * The probe plan: per inventory, the read-only probes each host was asked during the last run, kept on the
 * controller beside the inventory (`<inventory>.probes.json`, not committed), so the next run can ask them
 * all in one round trip per host at its start. The plan holds the questions only (paths, package and unit
 * names, read-only commands and their standard input), never an answer. A secret in a command or its input
 * (the password redis-cli reads from its input) is kept as its variable's name (`nameSecrets`) and put
 * back from the inventory when the plan is read (`fillSecrets`): the file never holds a secret's value, and
 * a probe that would still show one, or names a secret the inventory no longer has for the host, is dropped.
 * The plan only decides what is asked early: its answers are used only while the run is settled (see
 * HostRunner), so a stale or damaged plan costs at most a wasted question, never a wrong answer. Its `run`
 * probes are commands the next run executes as root, so, like sshd's StrictModes, a plan file that is not
 * the controller user's own or that others may write is not read at all.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import type { Probe } from '../types.ts'
import { probeKey } from '../facts/probes.ts'
import { isIpv4Address, isTcpPort } from '../facts/ports.ts'

/** Each host's probes, in the order first asked. */
export type ProbePlan = Map<string, Probe[]>

/** At most this many probes are kept per host (a bounded batch; a no-op of the whole site asks about 300). */
export const PLAN_MAX_PROBES = 2000

/** Where the plan of an inventory file is kept. */
export function probePlanFile(inventoryFile: string): string {
  return `${inventoryFile}.probes.json`
}

function isProbe(value: unknown): value is Probe {
  const p = value as Record<string, unknown>
  if (typeof p !== 'object' || p === null) return false
  switch (p.kind) {
    case 'run':
      return typeof p.command === 'string' && (p.stdin === undefined || typeof p.stdin === 'string')
    case 'path':
    case 'read':
    case 'content':
      return typeof p.path === 'string'
    case 'listing':
      return typeof p.dir === 'string'
    case 'entry':
      return typeof p.dir === 'string' && typeof p.pattern === 'string'
    case 'sysctl':
      return typeof p.key === 'string' && typeof p.value === 'string'
    case 'served':
      return (
        typeof p.address === 'string' &&
        typeof p.port === 'number' &&
        isTcpPort(p.port) &&
        (p.starttls === undefined || p.starttls === 'postgres') &&
        typeof p.certFile === 'string'
      )
    case 'get':
    case 'url':
      if (typeof p.url !== 'string') return false
      // An https GET needs its CA file (httpGetCommand refuses one without).
      return p.caFile === undefined ? p.kind === 'url' || !p.url.startsWith('https:') : typeof p.caFile === 'string'
    case 'health': {
      const files = [p.caFile, p.certFile, p.keyFile]
      const urls = Array.isArray(p.urls) && p.urls.length > 0 && p.urls.every((url) => typeof url === 'string')
      return urls && (files.every((f) => f === undefined) || files.every((f) => typeof f === 'string'))
    }
    case 'unit':
    case 'group':
    case 'user':
    case 'hostname':
      return typeof p.name === 'string'
    case 'test':
      return (p.test === 'exists' || p.test === 'directory') && typeof p.path === 'string'
    case 'digest':
      return Array.isArray(p.paths) && p.paths.length > 0 && p.paths.every((path) => typeof path === 'string')
    case 'line':
      return typeof p.line === 'string' && typeof p.path === 'string'
    case 'port':
      return (
        typeof p.address === 'string' && isIpv4Address(p.address) && typeof p.port === 'number' && isTcpPort(p.port)
      )
    case 'packages':
      return Array.isArray(p.names) && p.names.every((n) => typeof n === 'string')
    default:
      return false
  }
}

/**
 * How a secret's value stands in a kept probe: its variable's name between this and a NUL byte. A shell
 * command holds no NUL byte (quote() refuses one), and a probe that already holds one is never kept.
 */
const SECRET_MARK = '\u0000hastack-secret:'

const runFields = (probe: Probe) => (probe.kind === 'run' ? [probe.command, probe.stdin ?? ''] : [])

/** A command probe with `edit` applied to its command and its input (when it has one). */
const editRun = (probe: Probe & { kind: 'run' }, edit: (text: string) => string): Probe =>
  probe.stdin === undefined
    ? { kind: 'run', command: edit(probe.command) }
    : { kind: 'run', command: edit(probe.command), stdin: edit(probe.stdin) }

/**
 * The probe as the plan keeps it: every value of the host's secrets (by variable name) in a command probe's
 * text and input replaced by the secret's name. Undefined when the probe holds a NUL byte already.
 */
export function nameSecrets(probe: Probe, secrets: ReadonlyMap<string, string>): Probe | undefined {
  if (runFields(probe).some((text) => text.includes('\u0000'))) return undefined
  if (probe.kind !== 'run') return probe
  // The longest value first: a secret that is part of another one cannot split it.
  const values = [...secrets].filter(([, value]) => value !== '').sort((a, b) => b[1].length - a[1].length)
  return editRun(probe, (text) =>
    values.reduce((out, [name, value]) => out.replaceAll(value, `${SECRET_MARK}${name}\u0000`), text),
  )
}

/** A kept probe with its secrets' values put back; undefined when it names a secret the host does not have. */
export function fillSecrets(probe: Probe, secrets: ReadonlyMap<string, string>): Probe | undefined {
  if (probe.kind !== 'run') return probe
  let unknown = false
  const out = editRun(probe, (text) =>
    text.replace(/\u0000hastack-secret:([^\u0000]*)\u0000/g, (_, name: string) => {
      const value = secrets.get(name)
      if (value === undefined || value === '') unknown = true
      return value ?? ''
    }),
  )
  return unknown || runFields(out).some((text) => text.includes('\u0000')) ? undefined : out
}

/**
 * The plan with `convert` (nameSecrets or fillSecrets) applied to each probe with its host's secrets; a probe it
 * returns undefined for is left out.
 */
export function withSecrets(
  plan: ProbePlan,
  secretsOf: (host: string) => ReadonlyMap<string, string>,
  convert: typeof nameSecrets,
): ProbePlan {
  return new Map(
    [...plan].map(([host, probes]) => {
      const secrets = secretsOf(host)
      return [host, probes.flatMap((probe) => convert(probe, secrets) ?? [])]
    }),
  )
}

/** Whether the file belongs to this process's user and no one else may write it. */
async function ownedAndPrivate(file: string): Promise<boolean> {
  const st = await stat(file)
  const uid = process.getuid?.()
  return (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0
}

/** The plan in the file; empty when there is none or it cannot be read (anything malformed is left out). */
export async function readProbePlan(file: string): Promise<ProbePlan> {
  const plan: ProbePlan = new Map()
  let data: unknown
  try {
    if (!(await ownedAndPrivate(file))) return plan
    data = JSON.parse(await readFile(file, 'utf8'))
  } catch {
    return plan
  }
  const hosts = (data as { version?: unknown; hosts?: unknown })?.hosts
  if ((data as { version?: unknown }).version !== 1 || typeof hosts !== 'object' || hosts === null) return plan
  for (const [host, probes] of Object.entries(hosts)) {
    if (Array.isArray(probes)) plan.set(host, probes.filter(isProbe).slice(0, PLAN_MAX_PROBES))
  }
  return plan
}

/**
 * The next plan: the hosts this run asked replace their old lists (`asked`, in the order first asked, only
 * the probes `keep` accepts: no secret in them), the other hosts keep theirs.
 */
export function nextProbePlan(old: ProbePlan, asked: ProbePlan, keep: (probe: Probe) => boolean): ProbePlan {
  const next: ProbePlan = new Map(old)
  for (const [host, probes] of asked) {
    const unique = new Map(probes.filter(keep).map((p) => [probeKey(p), p]))
    next.set(host, [...unique.values()].slice(0, PLAN_MAX_PROBES))
  }
  return next
}

/** Write the plan whole or not at all (temp file, then rename). */
export async function writeProbePlan(file: string, plan: ProbePlan): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`
  await writeFile(temp, `${JSON.stringify({ version: 1, hosts: Object.fromEntries(plan) })}\n`, { mode: 0o600 })
  await rename(temp, file)
}
