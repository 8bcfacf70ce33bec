/**
 * The PostgreSQL data directory Patroni manages: which paths are refused before any
 * connection (the root, system directories and what lies in virtual or volatile file
 * systems), and the task that prepares it without touching anything the host already
 * had: the data directory itself belongs to postgres (0700); its parent is created,
 * owned by postgres, only when it is missing, and otherwise left exactly as it is.
 */
import type { Inventory } from '../../lib/types.ts'
import { defineTask, noChange } from '../../lib/tasks/index.ts'
import { pathState, pathStateProbe } from '../../lib/facts/files.ts'
import { sh } from '../../lib/connection/quote.ts'

/** Directories that must never be the data directory (nor, for the first group below, contain it). */
export const SYSTEM_DIRS = [
  ...['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt'],
  ...['/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local'],
  ...['/usr/sbin', '/usr/share', '/var', '/var/cache', '/var/lib', '/var/log', '/var/run', '/var/tmp'],
  '/var/lib/postgresql',
]
/** Virtual or volatile file systems: no data directory inside them. */
const NOTHING_INSIDE = ['/proc', '/sys', '/dev', '/run', '/tmp', '/var/run', '/boot']

/** Modes PostgreSQL accepts for its data directory. */
const PRIVATE_MODES = ['700', '750']
const modeOf = (mode?: string) => String(mode).replace(/^0/, '')

/** Why a data directory path is refused, or undefined when it is acceptable. */
export function dataDirProblem(dir: string): string | undefined {
  if (!dir.startsWith('/')) return 'must be an absolute path'
  if (/\/\.{1,2}(\/|$)|\/\//.test(dir)) return 'must be a plain path (no //, /./ or /../)'
  const path = dir.length > 1 ? dir.replace(/\/+$/, '') : dir
  const example = '/var/lib/postgresql/15/patroni'
  if (SYSTEM_DIRS.includes(path))
    return `${path} is a system directory: choose a directory of its own, such as ${example}`
  const inside = NOTHING_INSIDE.find((d) => path.startsWith(`${d}/`))
  if (inside) return `${path} lies in ${inside}, which does not keep data: choose another directory`
  return undefined
}

/** The parent directory of an absolute path. */
export function parentOf(dir: string): string {
  return dir.replace(/\/+$/, '').replace(/\/[^/]+$/, '') || '/'
}

/** One message per member whose `postgresql_data_dir` is refused, with the line that sets it. */
export function validateDataDirs(inventory: Inventory, members: string[]): string[] {
  const errors: string[] = []
  for (const name of members) {
    const host = inventory.hosts.get(name)
    const dir = host?.vars.postgresql_data_dir
    if (!host || typeof dir !== 'string') continue
    const problem = dataDirProblem(dir)
    if (!problem) continue
    const at = host.origins.postgresql_data_dir
    const where = at ? `${at.file}:${at.line} (postgresql_data_dir)` : `host ${name} (postgresql_data_dir)`
    errors.push(`${where}: ${problem}`)
  }
  return [...new Set(errors)]
}

/**
 * Ensure the data directory exists, owned by postgres with mode 0700. A missing parent
 * is created for postgres (Patroni renames a broken data directory beside it); an
 * existing parent keeps its owner and mode.
 */
export function dataDirTask(dir: string) {
  const parent = parentOf(dir)
  const probes = [pathStateProbe(parent), pathStateProbe(dir)]
  return defineTask(`Ensure the data directory ${dir} exists for postgres`, { probes }, async (ctx) => {
    const [parentState, state] = [await pathState(ctx.conn, parent), await pathState(ctx.conn, dir)]
    const steps: string[] = []
    const reasons: string[] = []
    if (parentState.type === 'absent') {
      steps.push(sh`mkdir -p -- ${parent}`, sh`chown postgres:postgres -- ${parent}`, sh`chmod 0755 -- ${parent}`)
      reasons.push(`its parent ${parent} is missing`)
    } else if (parentState.type !== 'directory')
      throw new Error(`${parent} exists and is not a directory (${parentState.type})`)
    if (state.type === 'absent') {
      steps.push(sh`install -d -o postgres -g postgres -m 0700 -- ${dir}`)
      reasons.push('the data directory is missing')
    } else if (state.type !== 'directory') throw new Error(`${dir} exists and is not a directory (${state.type})`)
    else if (state.owner !== 'postgres' || state.group !== 'postgres' || !PRIVATE_MODES.includes(modeOf(state.mode))) {
      steps.push(sh`chown postgres:postgres -- ${dir}`, sh`chmod 0700 -- ${dir}`)
      reasons.push(`the data directory is ${state.owner}:${state.group} ${state.mode}`)
    }
    if (steps.length === 0) return noChange()
    const apply = async () => void (await ctx.conn.run(steps.join(' && '), { check: true }))
    return { change: true, reason: reasons.join('; '), apply }
  })
}
