/**
 * The entry point of every playbook script: parse the command line, load and
 * validate the inventory before any connection, print a --list-* and stop, or
 * take the run lock and the host locks, run the plays over SSH (stopping
 * cleanly on SIGINT/SIGTERM), print the recap, write the --json report and set
 * the exit code (0 success, 1 bad input, 2 a task failed, 4 a host was
 * unreachable, 130/143 interrupted by SIGINT/SIGTERM).
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { Inventory, Play, Role } from './types.ts'
import { InputError } from './types.ts'
import { parseArgs, scriptArgs, type CliOptions } from './cli/args.ts'
import { listKind, printListing } from './cli/listing.ts'
import { HelpRequested, type OptionSpecs } from './cli/parse.ts'
import { InventoryErrors, loadInventory, secretValues } from './inventory/index.ts'
import { checkConnectionFiles } from './inventory/connection-spec.ts'
import { SshConnection } from './connection/ssh.ts'
import { registerSecrets, mask } from './output/mask.ts'
import { Reporter } from './output/reporter.ts'
import { buildReport, writeReport } from './output/json-report.ts'
import { takeHostLock } from './play/host-lock.ts'
import { stateDir } from './play/secret-guard.ts'
import { RunControl, SIGNAL_EXIT_CODES, watchSignals } from './play/interrupt.ts'
import type { ProgressIntervals } from './play/progress.ts'
import { acquireRunLock, type RunLock } from './play/run-lock.ts'
import { probePlanFile } from './play/probe-plan.ts'
import { runPlays, type RunReport } from './play/runner.ts'
import { StepPrompter } from './play/step.ts'

export interface PlaybookSpec {
  name: string
  /** The playbook's import.meta.url, to find its own arguments in argv. */
  script?: string
  /** The plays, or a function building them from the loaded inventory and options. */
  plays: Play[] | ((inventory: Inventory, options: CliOptions) => Play[] | Promise<Play[]>)
  /** The playbook's own command-line options, typed; their values arrive in `options.playbookOptions`. */
  options?: OptionSpecs
  /**
   * Every role whose variables the inventory is validated against, besides the plays' own roles
   * (playbooks pass `allRoles` of the roles folder, so a typo is caught whichever playbook runs).
   */
  roles?: Role[]
  /** Arguments instead of process.argv (tests). */
  argv?: string[]
  /** Do not set process.exitCode and do not listen for SIGINT/SIGTERM (tests, code running plays). */
  embedded?: boolean
  reporter?: Reporter
  /** Where --step reads its answers (default: standard input, which must be a terminal). */
  input?: Readable
  /** When slow tasks print "still running" (default 10 s, then every 15 s). */
  progress?: ProgressIntervals
  /** The stop switch (tests interrupt embedded runs through it; signals pull it in scripts). */
  control?: RunControl
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
  const control = spec.control ?? new RunControl()
  let exitCode: number
  let result: PlaybookResult = { stats: new Map(), success: false, durationMs: 0, exitCode: 1 }
  let lock: RunLock | undefined
  let step: StepPrompter | undefined
  let stopWatchingSignals = () => {}
  try {
    const options = parseArgs(argv, spec.options)
    const listing = listKind(options)
    const staticPlays = Array.isArray(spec.plays) ? spec.plays : []
    const inventory = await loadInventory(resolve(options.inventory), {
      extraVars: options.extraVars,
      roles: knownRoles(spec.roles ?? [], staticPlays),
      // Lists and check mode touch nothing, not even the secrets file.
      writeSecrets: !options.check,
      listing: listing !== undefined,
    })
    registerSecrets(secretValues(inventory))
    // A --limit that matches nothing is bad input: say so before any connection.
    if (options.limit) inventory.select(options.limit)
    const plays = Array.isArray(spec.plays) ? spec.plays : await spec.plays(inventory, options)
    const reporter = spec.reporter ?? Reporter.forTerminal(options.verbosity, options.diff)
    if (listing) {
      await printListing(listing, spec.name, plays, inventory, options, reporter)
      return { ...result, inventory, success: true, exitCode: 0 }
    }
    const targets = inventory.select(options.limit ?? 'all').map((h) => inventory.hosts.get(h)!)
    const fileProblems = await checkConnectionFiles(targets)
    if (fileProblems.length) throw new InventoryErrors(fileProblems)
    if (options.step) step = new StepPrompter(stepInput(spec), (text) => reporter.prompt(text))
    const command = mask(`playbook ${spec.name} ${argv.join(' ')}`.trim())
    const warn = (message: string) => reporter.line(`WARNING: ${message}`)
    lock = await acquireRunLock(inventory.file, { command, waitSeconds: options.waitLockSeconds, warn })
    if (!spec.embedded) {
      const held = lock
      stopWatchingSignals = watchSignals(
        control,
        (signal) => {
          reporter.line(`\n${signal}: no new task starts; running tasks finish, then the recap.`)
          reporter.line('Signal again to exit at once.')
          step?.close()
        },
        (code) => {
          held.release()
          process.exit(code)
        },
      )
    }
    const description = `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}: ${command}`
    const holder = { runId: randomUUID(), description }
    // From the process's start to here (Node, modules, inventory, locks): the part of a run before any connection.
    const startupMs = Math.round(performance.now())
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
      control,
      progress: spec.progress,
      startAtTask: options.startAtTask,
      step,
      // Check mode writes nothing on the hosts, not even the lock's holder file.
      probePlan: probePlanFile(inventory.file),
      onConnect: options.check
        ? undefined
        : async (conn) => (await takeHostLock(conn, holder, stateDir(inventory, conn.host))).release,
    })
    exitCode = exitCodeOf(report)
    if (report.startAtTaskFound === false && !report.interrupted) {
      process.stderr.write(`ERROR: no task matched --start-at-task ${JSON.stringify(options.startAtTask)}\n`)
    }
    if (options.json) {
      const { success, durationMs, stats, interrupted, phases } = report
      const built = buildReport(spec.name, options.check, success, durationMs, stats, interrupted)
      const json = { ...built, startupMs, phases }
      await writeReport(options.json, json)
    }
    result = { ...report, inventory, exitCode }
  } catch (error) {
    exitCode = error instanceof HelpRequested ? 0 : 1
    if (error instanceof HelpRequested) process.stdout.write(error.usage + '\n')
    else {
      const message = mask(error instanceof Error ? error.message : String(error))
      process.stderr.write(`ERROR: ${message}\n`)
      if (!(error instanceof InputError)) process.stderr.write(mask((error as Error)?.stack ?? '') + '\n')
    }
    result = { ...result, exitCode }
  } finally {
    stopWatchingSignals()
    step?.close()
    lock?.release()
  }
  if (!spec.embedded) process.exitCode = exitCode
  return result
}

/** 130/143 interrupted, 1 when --start-at-task matched nothing, 2 a task failed, 4 unreachable, else 0. */
function exitCodeOf(report: RunReport): number {
  if (report.interrupted) return SIGNAL_EXIT_CODES[report.interrupted]
  if (report.startAtTaskFound === false) return 1
  const stats = [...report.stats.values()]
  if (stats.some((s) => s.failed > 0)) return 2
  if (stats.some((s) => s.unreachable > 0)) return 4
  return 0
}

/** Where --step reads answers: the injected stream, or standard input when it is a terminal. */
function stepInput(spec: PlaybookSpec): Readable {
  if (spec.input) return spec.input
  if (process.stdin.isTTY) return process.stdin
  throw new InputError('--step asks before each task and needs a terminal, but standard input is not one')
}
