/**
 * HostRun: the handle a role's code receives for one host during one play. It
 * runs tasks (check, then apply on change), filters them by tag, records each
 * outcome, collects notified handlers and shares run-once results across the
 * hosts of a batch.
 */
import type {
  CommandProbe,
  Connection,
  DoAllOptions,
  Facts,
  HandlerSpec,
  HostRun,
  Inventory,
  Probe,
  ProbeAnswer,
  RunOptions,
  RunResult,
  Task,
  TaskOutcome,
  Vars,
} from '../types.ts'
import { TaskFailed, UnreachableError } from '../types.ts'
import { mask } from '../output/mask.ts'
import { ProbedConnection } from './probed-connection.ts'
import { probeCommand, probeKey } from '../facts/probes.ts'
import type { HostStats, Reporter } from '../output/reporter.ts'
import { Interrupted, type RunControl } from './interrupt.ts'
import { watchSlowTask, type ProgressIntervals } from './progress.ts'
import type { StepPrompter } from './step.ts'

/** What is shared by every host of one play batch. */
export interface BatchContext {
  play: string
  check: boolean
  diff: boolean
  tags: string[]
  skipTags: string[]
  inventory: Inventory
  reporter: Reporter
  /** Run-once results, by key. */
  once: Map<string, Promise<unknown>>
  /** One-at-a-time sections, by key: the end of the queue and the first host whose turn failed. */
  turns: Map<string, { tail: Promise<void>; failedOn?: string }>
  /** Set when any-errors-fatal tripped: every host stops at its next task. */
  abort: { reason?: string }
  /** Handlers of the play's roles and the play itself, in definition order. */
  handlers: [string, HandlerSpec][]
  /** The run's stop switch (signals) and its cleanups. */
  control: RunControl
  /** When to print "still running" for a slow task. */
  progress: ProgressIntervals
  /** --start-at-task: which task to start at, and the hosts that have reached it (shared by every play). */
  startAt?: { matches(task: string): boolean; reached: Set<string> }
  /** --step: asks before each task. */
  step?: StepPrompter
  /** Whether nothing has changed or failed on any host of the run so far (HostRun.settled). */
  runSettled(): boolean
  /**
   * The answers of the probe plan read from this host at the run's start (lib/play/probe-plan.ts); undefined
   * when there are none or the run is no longer settled (then they are dropped for good).
   */
  earlyAnswers(host: string): Promise<ReadonlyMap<string, ProbeAnswer> | undefined>
  /** Note the probes asked of a host, for the next run's probe plan. */
  recordProbes(host: string, probes: Probe[]): void
}

/** A probe batch's error that means the host is lost (not merely a batch that could not be made). */
const isLostHost = (err: unknown) => err instanceof UnreachableError

export class HostRunner implements HostRun {
  readonly name: string
  readonly vars: Vars
  readonly groups: string[]
  readonly inventory: Inventory
  /** Tags that apply to every task run now (the current role's name). */
  roleTags: string[] = []
  private readonly notified = new Set<string>()

  constructor(
    private readonly batch: BatchContext,
    readonly conn: Connection,
    readonly facts: Facts,
    private readonly stats: HostStats,
    private readonly hostvarsOf: (name: string) => Vars,
  ) {
    this.name = conn.host
    const host = batch.inventory.hosts.get(conn.host)!
    this.vars = host.vars
    this.groups = host.groups
    this.inventory = batch.inventory
  }

  get check(): boolean {
    return this.batch.check
  }

  get diff(): boolean {
    return this.batch.diff
  }

  get settled(): boolean {
    return this.notified.size === 0 && this.batch.runSettled()
  }

  hostvars(name: string): Vars {
    return this.hostvarsOf(name)
  }

  private selected(task: Task): boolean {
    return selectedByTags([...(task.tags ?? []), ...this.roleTags], this.batch.tags, this.batch.skipTags)
  }

  async do(task: Task): Promise<TaskOutcome> {
    const probes = task.probes ?? []
    // --step: the host may change while the user answers, as in gather().
    if (probes.length === 0 || !this.selected(task) || this.batch.step) return this.runTask(task, this.conn)
    // While the run is settled, the probes the run's early answers hold are answered from them (no round trip).
    this.batch.recordProbes(this.name, probes)
    const early = this.settled ? await this.batch.earlyAnswers(this.name) : undefined
    const known = probes.filter((p) => early?.has(probeKey(p)))
    if (!this.settled || known.length === 0) return this.runTask(task, this.conn)
    return this.runTask(task, await ProbedConnection.gather(this.conn, known, isLostHost, early))
  }

  async doAll(tasks: Task[], options: DoAllOptions = {}): Promise<TaskOutcome[]> {
    const after = options.afterHandlers ?? []
    const all = [...tasks, ...after]
    const outcomes: TaskOutcome[] = []
    let conn = await this.gather(all)
    let wrote = false
    for (const [i, task] of all.entries()) {
      if (i === tasks.length && after.length > 0) {
        // The handlers write through the host's own connection: after any ran, the rest are gathered again.
        const ran = await this.runNotifiedHandlers()
        if (ran > 0) {
          conn.invalidate()
          conn = await this.gather(all.slice(i))
          wrote = false
        }
      }
      // Answers dropped by a check's own commands (no write: the task before changed nothing) are asked again
      // for the rest in one trip; after a write, the next task asks live.
      if (i > 0 && conn.stale && !wrote) conn = await this.gather(all.slice(i))
      const outcome = await this.runTask(task, conn)
      wrote = outcome.changed && !this.check
      // A write may have gone through another connection (a role's own query): no answer read before it holds.
      if (wrote) conn.invalidate()
      outcomes.push(outcome)
    }
    if (after.length === 0 && options.afterHandlers) await this.flushHandlers()
    return outcomes
  }

  /** The probes of these tasks (those that would run) answered in one round trip. */
  private async gather(tasks: Task[]): Promise<ProbedConnection> {
    const { abort, control, step } = this.batch
    // --step asks before each task, so the host may change between two answers: no batch then.
    const gathering = !abort.reason && !control.signal && !step
    const probes = gathering ? tasks.filter((t) => this.selected(t)).flatMap((t) => t.probes ?? []) : []
    return this.gatherProbes(probes)
  }

  /** Probes answered from the run's early answers while it is settled, the others in one round trip. */
  private async gatherProbes(probes: Probe[]): Promise<ProbedConnection> {
    this.batch.recordProbes(this.name, probes)
    const known = this.settled && probes.length > 0 ? await this.batch.earlyAnswers(this.name) : undefined
    // Read again after the wait: a change on another host meanwhile drops the early answers.
    return ProbedConnection.gather(this.conn, probes, isLostHost, this.settled ? known : undefined)
  }

  /** do() on a given connection: the host's own, or the probed one of a doAll. */
  private async runTask(task: Task, conn: Connection): Promise<TaskOutcome> {
    if (this.batch.abort.reason) throw new TaskFailed(this.name, task.name, this.batch.abort.reason)
    const { control, startAt, step } = this.batch
    if (control.signal) throw new Interrupted(this.name, task.name, control.signal)
    if (startAt && !startAt.reached.has(this.name)) {
      if (!startAt.matches(task.name)) return skipped(task, 'before --start-at-task')
      startAt.reached.add(this.name)
    }
    if (!this.selected(task)) return skipped(task, 'not selected by tags')
    const started = Date.now()
    if (step && !(await step.perform(`${this.batch.play}\u0000${task.name}`, task.name))) {
      return this.record(task, skipped(task, 'skipped at --step'), started)
    }
    if (control.signal) throw new Interrupted(this.name, task.name, control.signal)
    const outcome = await this.execute(task, conn)
    return this.record(task, outcome, started)
  }

  /** Check, then apply on change; never throws (failures become a failed outcome). */
  private async execute(task: Task, conn: Connection): Promise<TaskOutcome> {
    const started = Date.now()
    const { control, progress, reporter } = this.batch
    const onInterrupt = (label: string, cleanup: () => Promise<void>) =>
      control.onInterrupt(`${this.name}: ${label}`, cleanup)
    const ctx = { conn, host: this, check: this.check, diff: this.diff, settled: this.settled, onInterrupt }
    const stopWatch = watchSlowTask(progress, (seconds) => reporter.stillRunning(this.name, task.name, seconds))
    try {
      const plan = await task.check(ctx)
      if (!plan.change) {
        return {
          task: task.name,
          status: plan.skip ? 'skipped' : 'ok',
          changed: false,
          reason: plan.reason,
          data: plan.data,
          durationMs: Date.now() - started,
        }
      }
      if (this.check) {
        return {
          task: task.name,
          status: 'changed',
          changed: true,
          reason: plan.reason,
          diff: plan.diff,
          durationMs: Date.now() - started,
        }
      }
      const result = (await plan.apply()) ?? {}
      const changed = result.changed ?? true
      return {
        task: task.name,
        status: changed ? 'changed' : 'ok',
        changed,
        reason: changed ? plan.reason : 'ran; nothing changed',
        diff: changed ? plan.diff : undefined,
        data: result.data,
        stdout: result.stdout,
        stderr: result.stderr,
        durationMs: Date.now() - started,
      }
    } catch (error) {
      if (error instanceof UnreachableError) throw error
      const message = mask(error instanceof Error ? error.message : String(error))
      return { task: task.name, status: 'failed', changed: false, error: message, durationMs: Date.now() - started }
    } finally {
      stopWatch()
    }
  }

  /** Count, print and act on an outcome: notify handlers on change, throw on failure. */
  private record(task: Task, outcome: TaskOutcome, started: number): TaskOutcome {
    const masked = {
      ...outcome,
      diff: outcome.diff && mask(outcome.diff),
      reason: outcome.reason && mask(outcome.reason),
    }
    const times = { startedAt: new Date(started).toISOString(), endedAt: new Date().toISOString() }
    this.stats.tasks.push({ ...masked, stdout: undefined, stderr: undefined, play: this.batch.play, ...times })
    if (masked.status === 'ok' || masked.status === 'changed') this.stats.ok++
    if (masked.status === 'changed') this.stats.changed++
    if (masked.status === 'skipped') this.stats.skipped++
    if (masked.status === 'failed') this.stats[task.ignoreErrors ? 'ignored' : 'failed']++
    this.batch.reporter.taskDone(this.name, masked)
    if (outcome.changed && task.notify) this.notify(task.notify)
    if (outcome.status === 'failed' && !task.ignoreErrors)
      throw new TaskFailed(this.name, task.name, outcome.error ?? 'failed')
    return outcome
  }

  async query(command: string | string[], options?: RunOptions): Promise<RunResult> {
    return this.conn.run(command, options)
  }

  async queryAll(questions: ReadonlyArray<string | CommandProbe>): Promise<RunResult[]> {
    const probes = questions.map((q): CommandProbe => (typeof q === 'string' ? { kind: 'run', command: q } : q))
    const probed = await this.gatherProbes(probes)
    const results: RunResult[] = []
    // Answered from the batch; a command the batch could not answer runs live (read-only: nothing to invalidate).
    for (const probe of probes) {
      const stdin = probe.kind === 'run' ? probe.stdin : undefined
      results.push(await probed.run(probeCommand(probe), stdin === undefined ? undefined : { stdin }))
    }
    return results
  }

  notify(handler: string | string[]): void {
    for (const name of Array.isArray(handler) ? handler : [handler]) {
      if (!this.batch.handlers.some(([n]) => n === name))
        throw new Error(`no handler named "${name}" in play ${this.batch.play}`)
      this.notified.add(name)
    }
  }

  /** Handlers notified and not yet run, in definition order, without those another notified one supersedes. */
  pendingHandlers(): string[] {
    const notified = this.batch.handlers.filter(([n]) => this.notified.has(n))
    const superseded = new Set(notified.flatMap(([, spec]) => (typeof spec === 'function' ? [] : spec.supersedes)))
    return notified.map(([n]) => n).filter((n) => !superseded.has(n))
  }

  async flushHandlers(): Promise<void> {
    await this.runNotifiedHandlers()
  }

  /** Run the notified handlers; returns how many ran. */
  private async runNotifiedHandlers(): Promise<number> {
    let ran = 0
    // A handler may notify another: loop until none is pending (bounded by the handler count).
    for (let round = 0; round <= this.batch.handlers.length && this.notified.size > 0; round++) {
      const due = this.pendingHandlers()
      for (const name of this.notified) if (!due.includes(name)) this.notified.delete(name) // superseded
      this.batch.reporter.handlersStart(this.name, due)
      for (const name of due) {
        const spec = this.batch.handlers.find(([n]) => n === name)![1]
        await (typeof spec === 'function' ? spec : spec.run)(this)
        this.notified.delete(name)
        ran++
      }
    }
    return ran
  }

  once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const first = !this.batch.once.has(key)
    if (first) this.batch.once.set(key, fn())
    const shared = this.batch.once.get(key) as Promise<T>
    if (first) return shared
    // The first host reported its own failure; each other host fails with a step of its own.
    return shared.catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error)
      throw new Error(`"${key}" ran once for the batch and failed: ${message}`)
    })
  }

  async oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let turn = this.batch.turns.get(key)
    if (!turn) this.batch.turns.set(key, (turn = { tail: Promise.resolve() }))
    const previous = turn.tail
    let release!: () => void
    turn.tail = new Promise<void>((resolve) => (release = resolve))
    await previous
    try {
      // An interrupted run starts no new turn; an interruption is no failure of the operation.
      const { signal } = this.batch.control
      if (signal) throw new Interrupted(this.name, `${key} (one host at a time)`, signal)
      if (turn.failedOn)
        throw new Error(
          `not started: "${key}" failed on ${turn.failedOn}, and a one-at-a-time operation stops at the first failure`,
        )
      return await fn()
    } catch (error) {
      if (!(error instanceof Interrupted)) turn.failedOn ??= this.name
      throw error
    } finally {
      release()
    }
  }

  log(message: string): void {
    this.batch.reporter.log(this.name, message)
  }
}

/** Whether the tag filters select a task with these tags. `always` runs unless skipped by name. */
export function selectedByTags(taskTags: string[], tags: string[], skipTags: string[]): boolean {
  if (skipTags.some((t) => taskTags.includes(t))) return false
  if (tags.length === 0 || taskTags.includes('always')) return true
  return tags.some((t) => taskTags.includes(t))
}

/** The outcome of a task that was not run. */
function skipped(task: Task, reason: string): TaskOutcome {
  return { task: task.name, status: 'skipped', changed: false, reason, durationMs: 0 }
}
