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
import { InventoryErrors, loadInventory, secretValues } from './inventory/index.ts'
import { checkConnectionFiles } from './inventory/connection-spec.ts'
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

async function knownRoles(plays: Play[]): Promise<Role[]> {
  const { allRoles } = await import('../roles/index.ts')
  const seen = new Map<string, Role>()
  for (const role of [...allRoles, ...plays.flatMap((p) => p.roles ?? [])]) seen.set(role.name, role)
  return [...seen.values()]
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
      roles: await knownRoles(staticPlays),
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
    const targets = inventory.select(options.limit ?? 'all').map((h) => inventory.hosts.get(h)!)
    const fileProblems = await checkConnectionFiles(targets)
    if (fileProblems.length) throw new InventoryErrors(fileProblems)
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
