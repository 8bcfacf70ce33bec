/**
 * Runs plays against an inventory: hosts in parallel up to `forks`, rolling
 * batches with `serial`, one connection and one fact gathering per host for
 * the whole run, handlers at the end of each play, an unreachable host set
 * aside while the others go on, and per-host statistics for the recap.
 * Stops starting tasks once interrupted (see interrupt.ts), honours
 * --start-at-task and --step, and takes each host's lock right after connecting.
 */
import type { Connection, Facts, HandlerSpec, Inventory, Play, Probe, ProbeAnswer, Vars } from '../types.ts'
import { TaskFailed, UnreachableError } from '../types.ts'
import { gatherFacts } from '../facts/system.ts'
import { readFingerprints, type Fingerprints } from '../facts/fingerprints.ts'
import { mask } from '../output/mask.ts'
import { emptyStats, type HostStats, type Reporter } from '../output/reporter.ts'
import { probeKey } from '../facts/probes.ts'
import { HostRunner, type BatchContext } from './host-run.ts'
import { ProbedConnection } from './probed-connection.ts'
import {
  fillSecrets,
  nameSecrets,
  nextProbePlan,
  PLAN_MAX_PROBES,
  readProbePlan,
  withSecrets,
  writeProbePlan,
  type ProbePlan,
} from './probe-plan.ts'
import { hostSecrets } from '../inventory/secrets.ts'
import { Interrupted, RunControl, type StopSignal } from './interrupt.ts'
import { DEFAULT_PROGRESS, type ProgressIntervals } from './progress.ts'
import { elapsedMs, taskBounds, timed, type HostPhases, type RunPhases } from './phases.ts'
import type { StepPrompter } from './step.ts'
import {
  fingerprintFile,
  recordFingerprints,
  refuseLostSecrets,
  secretNamesOf,
  secretsOnHost,
  stateDir,
} from './secret-guard.ts'

export interface RunSettings {
  inventory: Inventory
  reporter: Reporter
  /** Opens the one connection of a host (SSH in real runs). */
  connect(host: string): Promise<Connection>
  limit?: string
  check?: boolean
  diff?: boolean
  tags?: string[]
  skipTags?: string[]
  forks?: number
  forceHandlers?: boolean
  /** The stop switch SIGINT/SIGTERM pull (default: a switch nothing pulls). */
  control?: RunControl
  /** When slow tasks print "still running" (default 10 s, then every 15 s). */
  progress?: ProgressIntervals
  /** Skip the tasks before the first whose name matches (exact, or a glob with `*`), on every host. */
  startAtTask?: string
  /** Ask before each task (--step). */
  step?: StepPrompter
  /**
   * Runs once per host right after connecting (the host lock); a throw fails that host. May return
   * a function undoing it, called before the connection closes.
   */
  onConnect?(conn: Connection): Promise<(() => Promise<void>) | void>
  /**
   * The probe plan's file (lib/play/probe-plan.ts): its probes are asked of each host in one round trip right
   * after connecting, their answers serve the run while it is settled, and the probes this run asks are written
   * back at its end. None: no plan (check mode, tests of the engine's own trips).
   */
  probePlan?: string
}

export interface RunReport {
  stats: Map<string, HostStats>
  /** True when every host ran without failure and was reachable. */
  success: boolean
  durationMs: number
  /** The signal that interrupted the run, if one did. */
  interrupted?: StopSignal
  /** With a start-at-task: false when no task of the run matched it. */
  startAtTaskFound?: boolean
  /** Where the run's time went outside its tasks (each host's set-up is in its stats' `phases`). */
  phases?: RunPhases
}

/** Set on a host that connected but could not be prepared (its lock is held by another run). */
export class HostSetupFailed extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message)
    this.name = 'HostSetupFailed'
  }
}

/** `Install *` → a regular expression matching the whole name; a name without `*` matches itself only. */
export function taskNameMatcher(pattern: string): (name: string) => boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  const regexp = new RegExp(`^${source}$`)
  return (name) => regexp.test(name)
}

/** Run at most `limit` promises at once, in order. */
export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!)
  })
  await Promise.all(workers)
}

/** Split hosts into rolling batches: a count, or a percentage of the hosts ("30%"). */
export function batches(hosts: string[], serial?: number | string): string[][] {
  if (serial === undefined) return [hosts]
  const size =
    typeof serial === 'string' && serial.endsWith('%')
      ? Math.max(1, Math.floor((hosts.length * Number(serial.slice(0, -1))) / 100))
      : Math.max(1, Number(serial))
  const out: string[][] = []
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size))
  return out
}

export class PlayRunner {
  readonly stats = new Map<string, HostStats>()
  private readonly connections = new Map<string, Promise<Connection>>()
  /** Each host's connection as soon as it is open, before onConnect (the host lock) has run on it. */
  private readonly opened = new Map<string, Promise<Connection>>()
  /** What onConnect asked to undo before each connection closes. */
  private readonly undoOnClose = new Map<string, () => Promise<void>>()
  private readonly facts = new Map<string, Promise<Facts>>()
  /** The hosts whose secret fingerprints the guard checks, and what each holds (read once, under its lock). */
  private readonly guarded = new Set<string>()
  private readonly fingerprints = new Map<string, Promise<Fingerprints | undefined>>()
  /** Hosts set aside for the rest of the run: unreachable or failed. */
  private readonly down = new Set<string>()
  /** Secret variables each host's roles were given in this run (their fingerprints are recorded after it). */
  private readonly secretsUsed = new Map<string, Set<string>>()
  /** The probe plan of the last run, the answers of its probes per host, and the probes this run asked. */
  private plan: ProbePlan = new Map()
  private readonly early = new Map<string, Promise<Map<string, ProbeAnswer>>>()
  private readonly asked: ProbePlan = new Map()
  private stopped?: string
  readonly control: RunControl
  /** The run's start on the monotonic clock, for each host's `readyAtMs`. */
  private readonly startedAt = performance.now()
  /** Hosts that have reached the --start-at-task task (kept across plays). */
  private readonly startAt?: BatchContext['startAt']

  constructor(private readonly settings: RunSettings) {
    this.control = settings.control ?? new RunControl()
    if (settings.startAtTask) this.startAt = { matches: taskNameMatcher(settings.startAtTask), reached: new Set() }
  }

  /** False when a start-at-task was given and no host ever reached it. */
  get startAtTaskFound(): boolean | undefined {
    return this.startAt ? this.startAt.reached.size > 0 : undefined
  }

  private statsOf(host: string): HostStats {
    let s = this.stats.get(host)
    if (!s) this.stats.set(host, (s = emptyStats()))
    return s
  }

  private phasesOf(host: string): HostPhases {
    return (this.statsOf(host).phases ??= {})
  }

  /** Whether nothing has changed or failed on any host of the run so far. */
  private settled(): boolean {
    return [...this.stats.values()].every((s) => s.changed === 0 && s.failed === 0 && !s.unreachable)
  }

  /** Load the probe plan of the run (none in check mode: its answers are for runs that may write). */
  async loadProbePlan(): Promise<void> {
    if (!this.settings.probePlan || this.settings.check) return
    const secretsOf = (host: string) => hostSecrets(this.settings.inventory, host)
    this.plan = withSecrets(await readProbePlan(this.settings.probePlan), secretsOf, fillSecrets)
  }

  /** Ask the plan's probes of a host in one round trip, right after connecting (before any task). */
  private startEarlyAnswers(host: string, conn: Connection): void {
    const probes = this.plan.get(host)
    if (!probes?.length) return
    const asking = () => ProbedConnection.answersOf(conn, probes)
    const answers = timed(asking, (ms) => (this.phasesOf(host).planBatchMs = ms)).catch(
      () => new Map<string, ProbeAnswer>(),
    )
    this.early.set(host, answers)
  }

  /** The early answers of a host while the run is settled; any change drops every host's for good. */
  private async earlyAnswers(host: string): Promise<ReadonlyMap<string, ProbeAnswer> | undefined> {
    if (!this.settled()) this.early.clear()
    return this.early.get(host)
  }

  private recordProbes(host: string, probes: Probe[]): void {
    if (!this.settings.probePlan || this.settings.check || probes.length === 0) return
    const asked = this.asked.get(host)
    if (!asked) this.asked.set(host, [...probes])
    else if (asked.length < PLAN_MAX_PROBES) asked.push(...probes)
  }

  /** Write the plan for the next run: the probes this run asked (none holding a secret), per host. */
  async saveProbePlan(): Promise<void> {
    const file = this.settings.probePlan
    if (!file || this.settings.check || this.asked.size === 0) return
    const keep = (probe: Probe) => {
      const text = probeKey(probe)
      return mask(text) === text
    }
    // Each secret the probes carry is kept by its name: `keep` then drops any probe still showing a secret.
    const named = withSecrets(this.asked, (host) => hostSecrets(this.settings.inventory, host), nameSecrets)
    const write = async () => writeProbePlan(file, nextProbePlan(await readProbePlan(file), named, keep))
    await write().catch((error) =>
      this.settings.reporter.line(`WARNING: could not write the probe plan ${file}: ${error}`),
    )
  }

  /** The host's one connection; opened on first use, reused after. */
  connection(host: string): Promise<Connection> {
    let conn = this.connections.get(host)
    if (!conn) {
      const phases = this.phasesOf(host)
      const opened = timed(
        () => this.settings.connect(host),
        (ms) => (phases.connectMs = ms),
      )
      opened.catch(() => undefined)
      this.opened.set(host, opened)
      const onConnect = this.settings.onConnect
      conn = opened.then(async (c) => {
        // The privileged session starts while the host lock is taken: the plan's batch after it runs through it.
        c.startPrivileged?.()
        try {
          const undo =
            onConnect &&
            (await timed(
              () => onConnect(c),
              (ms) => (phases.lockMs = ms),
            ))
          if (undo) this.undoOnClose.set(host, undo)
          phases.readyAtMs = elapsedMs(this.startedAt)
          // After the host lock: no other run changes the host while its fingerprints and the plan's answers are
          // read, the fingerprints first, through the privileged session before the plan's batch takes it.
          if (this.guarded.has(host)) await this.heldFingerprints(host, c).catch(() => undefined)
          this.startEarlyAnswers(host, c)
        } catch (error) {
          await c.close().catch(() => undefined)
          throw new HostSetupFailed('host lock', error instanceof Error ? error.message : String(error))
        }
        return c
      })
      conn.catch(() => undefined)
      this.connections.set(host, conn)
    }
    return conn
  }

  /** A host's facts, gathered once. */
  private hostFacts(host: string, conn: Connection): Promise<Facts> {
    const gathering = () =>
      timed(
        () => gatherFacts(conn),
        (ms) => (this.phasesOf(host).factsMs = ms),
      )
    return onceFor(this.facts, host, gathering)
  }

  /** The secret fingerprints a host holds (undefined: unreadable), read once. */
  private heldFingerprints(host: string, conn: Connection): Promise<Fingerprints | undefined> {
    return onceFor(this.fingerprints, host, () =>
      readFingerprints(conn, fingerprintFile(this.settings.inventory, host)),
    )
  }

  /**
   * Before any change: read the secret fingerprints of every host whose roles use secrets, under its lock, and
   * refuse the run when they show that the secrets file was lost or swapped. The facts the first play needs are
   * gathered meanwhile, while the lock is taken (read-only). Unreachable hosts are reported by their plays.
   */
  async guardSecrets(plays: Play[]): Promise<void> {
    const hosts = new Set(plays.filter((p) => secretNamesOf(p).length).flatMap((p) => this.playHosts(p)))
    for (const host of hosts) this.guarded.add(host)
    const held = new Map<string, Fingerprints>()
    await mapLimit([...hosts], this.settings.forks ?? 10, async (host) => {
      const ready = this.connection(host)
      this.opened
        .get(host)!
        .then((conn) => this.hostFacts(host, conn))
        .catch(() => undefined)
      const read = await ready.then((conn) => this.heldFingerprints(host, conn)).catch(() => undefined)
      if (read) held.set(host, read)
    })
    await refuseLostSecrets(this.settings.inventory, held)
  }

  /** After a real run: record on each host the fingerprints of the secrets its roles were given. */
  async recordSecretFingerprints(): Promise<void> {
    if (this.settings.check) return
    const { inventory, reporter } = this.settings
    await mapLimit([...this.secretsUsed], this.settings.forks ?? 10, async ([host, names]) => {
      if (this.statsOf(host).unreachable) return
      const held = await this.fingerprints.get(host)?.catch(() => undefined)
      if (!held) return
      const given = Object.entries(secretsOnHost(inventory, host, names))
      const values = Object.fromEntries(given.map(([name, v]) => [name, v.value]))
      try {
        const conn = await this.connection(host)
        await recordFingerprints(conn, stateDir(inventory, host), held, values)
      } catch (error) {
        reporter.line(`WARNING: ${host}: could not record the secret fingerprints: ${mask((error as Error).message)}`)
      }
    })
  }

  /** Variables of any host, for templates that list their peers. */
  private hostvars = (name: string): Vars => {
    const host = this.settings.inventory.hosts.get(name)
    if (!host) throw new Error(`no host named ${name} in the inventory`)
    return host.vars
  }

  /** The hosts a play runs on: its pattern, narrowed by --limit, minus hosts already down. */
  playHosts(play: Play): string[] {
    const { inventory, limit } = this.settings
    let hosts = inventory.select(play.hosts)
    if (limit) {
      const allowed = new Set(inventory.select(limit))
      hosts = hosts.filter((h) => allowed.has(h))
    }
    return hosts
  }

  async runPlay(play: Play): Promise<void> {
    const { reporter } = this.settings
    const hosts = this.playHosts(play)
    reporter.playStart(play.name, hosts, Boolean(this.settings.check))
    if (this.stopped || this.control.signal) {
      reporter.line(`skipped: ${this.stopped ?? `interrupted (${this.control.signal})`}`)
      const note = `play "${play.name}" not started`
      if (this.control.signal) for (const host of hosts) this.statsOf(host).interrupted ??= note
      return
    }
    const handlers: [string, HandlerSpec][] = [
      ...(play.roles ?? []).flatMap((r) => Object.entries(r.handlers ?? {})),
      ...Object.entries(play.handlers ?? {}),
    ]
    const rolling = play.serial !== undefined
    const maxFail = play.maxFailPercentage ?? (rolling ? 0 : 100)
    for (const batch of batches(hosts, play.serial)) {
      const live = batch.filter((h) => !this.down.has(h))
      const ctx: BatchContext = {
        play: play.name,
        check: Boolean(this.settings.check),
        diff: Boolean(this.settings.diff),
        tags: this.settings.tags ?? [],
        skipTags: this.settings.skipTags ?? [],
        inventory: this.settings.inventory,
        reporter,
        once: new Map(),
        turns: new Map(),
        abort: {},
        handlers,
        control: this.control,
        progress: this.settings.progress ?? DEFAULT_PROGRESS,
        startAt: this.startAt,
        step: this.settings.step,
        runSettled: () => this.settled(),
        earlyAnswers: (host) => this.earlyAnswers(host),
        recordProbes: (host, probes) => this.recordProbes(host, probes),
      }
      let failures = 0
      await mapLimit(live, this.settings.forks ?? 10, async (host) => {
        const ok = await this.runHost(play, host, ctx)
        if (!ok) {
          failures++
          if (play.anyErrorsFatal)
            ctx.abort.reason = `stopped: another host failed and the play "${play.name}" treats any error as fatal`
        }
      })
      // Any failure of a play that treats errors as fatal ends the run (as Ansible's any_errors_fatal):
      // the percentage only governs rolling batches.
      const tooMany = failures > 0 && (play.anyErrorsFatal || (failures * 100) / Math.max(1, live.length) > maxFail)
      if (tooMany && (rolling || play.anyErrorsFatal)) {
        this.stopped = rolling
          ? `play "${play.name}" stopped after a batch with ${failures} failed host(s): rolling work halts at the first unhealthy member`
          : `play "${play.name}" failed on ${failures} host(s) and treats any error as fatal`
        reporter.line(`STOPPED: ${this.stopped}`)
        return
      }
    }
  }

  /** Run one play on one host; false when it failed or was unreachable. */
  private async runHost(play: Play, host: string, ctx: BatchContext): Promise<boolean> {
    const stats = this.statsOf(host)
    const { reporter } = this.settings
    let runner: HostRunner | undefined
    if (this.control.signal) {
      stats.interrupted ??= `play "${play.name}" not started`
      return true
    }
    try {
      const conn = await this.connection(host)
      const facts = play.gatherFacts === false ? ({} as Facts) : await this.hostFacts(host, conn)
      const used = this.secretsUsed.get(host) ?? new Set<string>()
      for (const name of secretNamesOf(play)) this.secretsUsed.set(host, used.add(name))
      runner = new HostRunner(ctx, conn, facts, stats, this.hostvars)
      for (const role of play.roles ?? []) {
        runner.roleTags = [role.name]
        await role.tasks(runner)
      }
      runner.roleTags = []
      if (play.tasks) await play.tasks(runner)
      await runner.flushHandlers()
      return true
    } catch (error) {
      if (error instanceof Interrupted) {
        stats.interrupted = `stopped before "${error.task}" (play "${play.name}")`
        if (runner) stats.pendingHandlers.push(...runner.pendingHandlers())
        return true
      }
      if (error instanceof UnreachableError) {
        stats.unreachable = 1
        stats.error = mask(error.message)
        reporter.hostUnreachable(host, stats.error)
      } else if (!(error instanceof TaskFailed)) {
        // An error outside a task (a role's own logic, a query, the host lock): record it as a failed step.
        const message = mask(error instanceof Error ? error.message : String(error))
        const step = error instanceof HostSetupFailed ? error.step : 'role logic'
        stats.failed++
        stats.error = message
        const outcome = { task: step, status: 'failed' as const, changed: false, error: message, durationMs: 0 }
        stats.tasks.push({ ...outcome, play: play.name })
        reporter.taskDone(host, outcome)
      } else {
        stats.error = mask(error.message)
      }
      this.down.add(host)
      await this.settleHandlers(runner, host, play, stats)
      return false
    }
  }

  /** After a failure: run the notified handlers when forced, or report them pending. */
  private async settleHandlers(
    runner: HostRunner | undefined,
    host: string,
    play: Play,
    stats: HostStats,
  ): Promise<void> {
    if (!runner) return
    const pending = runner.pendingHandlers()
    if (pending.length === 0) return
    if (this.settings.forceHandlers || play.forceHandlers) {
      try {
        await runner.flushHandlers()
        return
      } catch {
        // fall through: whatever did not run stays pending
      }
    }
    stats.pendingHandlers.push(...runner.pendingHandlers())
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.connections].map(async ([host, c]) => {
        try {
          await this.undoOnClose
            .get(host)?.()
            .catch(() => undefined)
          const conn = await c
          this.statsOf(host).commands = conn.commandCount
          await conn.close()
        } catch {
          // unreachable hosts have nothing to close
        }
      }),
    )
  }
}

/** What a cache holds for a host, made by its first ask. */
function onceFor<T>(cache: Map<string, Promise<T>>, host: string, make: () => Promise<T>): Promise<T> {
  let value = cache.get(host)
  if (!value) cache.set(host, (value = make()))
  return value
}

/** Run plays in order on the inventory; always closes every connection. */
export async function runPlays(plays: Play[], settings: RunSettings): Promise<RunReport> {
  const started = Date.now()
  const runner = new PlayRunner(settings)
  const spent = { planReadMs: 0, hostsReadyMs: 0, playsMs: 0, fingerprintsMs: 0, closeMs: 0, planWriteMs: 0 }
  const step = (name: keyof typeof spent, work: () => Promise<void>) => timed(work, (ms) => (spent[name] = ms))
  try {
    await step('planReadMs', () => runner.loadProbePlan())
    await step('hostsReadyMs', () => runner.guardSecrets(plays))
    await step('playsMs', async () => {
      for (const play of plays) await runner.runPlay(play)
    })
    if (runner.control.signal) {
      for (const problem of await runner.control.runCleanups()) settings.reporter.line(`cleanup failed: ${problem}`)
    }
    await step('fingerprintsMs', () => runner.recordSecretFingerprints())
  } finally {
    // Side by side: the plan is what the run asked. Neither throws (each reports its own trouble).
    await Promise.all([step('closeMs', () => runner.closeAll()), step('planWriteMs', () => runner.saveProbePlan())])
  }
  const ended = Date.now()
  const durationMs = ended - started
  const [first, last] = taskBounds([...runner.stats.values()].flatMap((s) => s.tasks)) ?? [started, started]
  const phases = { ...spent, firstTaskAtMs: first - started, tasksMs: last - first, afterLastTaskMs: ended - last }
  settings.reporter.recap(runner.stats, durationMs)
  const interrupted = runner.control.signal
  if (interrupted) {
    settings.reporter.line(`\nInterrupted by ${interrupted}: running tasks were let finish, no new task was started.`)
  }
  const success = !interrupted && [...runner.stats.values()].every((s) => s.failed === 0 && s.unreachable === 0)
  return { stats: runner.stats, success, durationMs, interrupted, startAtTaskFound: runner.startAtTaskFound, phases }
}
