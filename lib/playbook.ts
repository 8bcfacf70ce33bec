/**
 * The entry point of every playbook script: parse the command line, load and
 * validate the inventory before any connection, run the plays over SSH, print
 * the recap, write the --json report and set the exit code
 * (0 success, 1 bad input, 2 a task failed, 4 a host was unreachable).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Inventory, Play, Role } from './types.ts'
import { InputError } from './types.ts'
import { parseArgs, scriptArgs, type CliOptions } from './cli/args.ts'
import { loadInventory, secretValues } from './inventory/index.ts'
import { SshConnection } from './connection/ssh.ts'
import { registerSecrets, mask } from './output/mask.ts'
import { Reporter } from './output/reporter.ts'
import { buildReport, writeReport } from './output/json-report.ts'
import { runPlays, type RunReport } from './play/runner.ts'

export interface PlaybookSpec {
  name: string
  /** The playbook's import.meta.url, to find its own arguments in argv. */
  script?: string
  /** The plays, or a function building them from the loaded inventory and options. */
  plays: Play[] | ((inventory: Inventory, options: CliOptions) => Play[] | Promise<Play[]>)
  /**
   * Every role whose variables the inventory is validated against, besides the plays' own roles
   * (playbooks pass `allRoles` of the roles folder, so a typo is caught whichever playbook runs).
   */
  roles?: Role[]
  /** Arguments instead of process.argv (tests). */
  argv?: string[]
  /** Do not set process.exitCode (tests). */
  embedded?: boolean
  reporter?: Reporter
}

export interface PlaybookResult extends RunReport {
  inventory?: Inventory
  exitCode: number
}

/**
 * The roles the inventory is checked against: the spec's and the plays', each once; none known
 * (no vocabulary to judge a variable by) leaves unknown variables unreported.
 */
function knownRoles(roles: Role[], plays: Play[]): Role[] | undefined {
  const seen = new Map<string, Role>()
  for (const role of [...roles, ...plays.flatMap((p) => p.roles ?? [])]) seen.set(role.name, role)
  return seen.size ? [...seen.values()] : undefined
}

export async function playbook(spec: PlaybookSpec): Promise<PlaybookResult> {
  const scriptPath = spec.script ? fileURLToPath(spec.script) : undefined
  const argv = spec.argv ?? scriptArgs(process.argv, scriptPath)
  let exitCode = 0
  let result: PlaybookResult = { stats: new Map(), success: false, durationMs: 0, exitCode: 1 }
  try {
    const options = parseArgs(argv)
    const staticPlays = Array.isArray(spec.plays) ? spec.plays : []
    const inventory = await loadInventory(resolve(options.inventory), {
      extraVars: options.extraVars,
      roles: knownRoles(spec.roles ?? [], staticPlays),
    })
    registerSecrets(secretValues(inventory))
    // A --limit that matches nothing is bad input: say so before any connection.
    if (options.limit) inventory.select(options.limit)
    const plays = Array.isArray(spec.plays) ? spec.plays : await spec.plays(inventory, options)
    const reporter = spec.reporter ?? Reporter.forTerminal(options.verbosity, options.diff)
    if (options.listHosts) {
      for (const play of plays) reporter.line(`play "${play.name}": ${inventory.select(play.hosts).filter((h) => !options.limit || inventory.select(options.limit).includes(h)).join(', ')}`)
      return { ...result, inventory, success: true, exitCode: 0 }
    }
    const report = await runPlays(plays, {
      inventory,
      reporter,
      connect: (host) => SshConnection.connect(inventory.hosts.get(host)!.connection),
      limit: options.limit,
      check: options.check,
      diff: options.diff,
      tags: options.tags,
      skipTags: options.skipTags,
      forks: options.forks,
      forceHandlers: options.forceHandlers,
    })
    const anyUnreachable = [...report.stats.values()].some((s) => s.unreachable > 0)
    const anyFailed = [...report.stats.values()].some((s) => s.failed > 0)
    exitCode = anyFailed ? 2 : anyUnreachable ? 4 : 0
    if (options.json) await writeReport(options.json, buildReport(spec.name, options.check, report.success, report.durationMs, report.stats))
    result = { ...report, inventory, exitCode }
  } catch (error) {
    exitCode = 1
    const message = mask(error instanceof Error ? error.message : String(error))
    process.stderr.write(`ERROR: ${message}\n`)
    if (!(error instanceof InputError)) process.stderr.write(mask((error as Error)?.stack ?? '') + '\n')
    result = { ...result, exitCode }
  }
  if (!spec.embedded) process.exitCode = exitCode
  return result
}
