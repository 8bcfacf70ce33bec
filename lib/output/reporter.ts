/**
 * Run output: a header per play, one line per host and task as results come
 * in (colours on a terminal, plain lines in CI or a pipe), diffs under --diff,
 * "still running" notices for slow tasks, and a PLAY RECAP per host at the end,
 * like Ansible's, with the total time and the slowest tasks (like profile_tasks).
 * Everything printed passes through the secret masker.
 */
import type { TaskOutcome } from '../types.ts'
import { mask } from './mask.ts'
import type { HostPhases } from '../play/phases.ts'

export interface HostStats {
  ok: number
  changed: number
  failed: number
  skipped: number
  unreachable: number
  /** Failures of tasks marked ignoreErrors. */
  ignored: number
  /** Handlers notified but not run because the host failed first. */
  pendingHandlers: string[]
  tasks: RecordedTask[]
  error?: string
  /** Set when the run was interrupted (SIGINT, SIGTERM) before this host was done: what did not run. */
  interrupted?: string
  /** Round trips made over the host's connection (commands, probe batches, uploads), counted when it closes. */
  commands?: number
  /** The host's set-up: connection, lock, facts, the probe plan's early batch (lib/play/phases.ts). */
  phases?: HostPhases
}

/** A task as recorded for the recap and the JSON report: its outcome, its play, when it started and ended (ISO). */
export type RecordedTask = TaskOutcome & { play: string; startedAt?: string; endedAt?: string }

/** How many of the slowest tasks the recap lists. */
const SLOWEST_SHOWN = 5

export function emptyStats(): HostStats {
  return { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, pendingHandlers: [], tasks: [] }
}

export interface ReporterOptions {
  verbosity: number
  diff: boolean
  color: boolean
  write?: (line: string) => void
}

const COLORS = { ok: 32, changed: 33, failed: 31, skipped: 36, unreachable: 31, pending: 35 } as const

export class Reporter {
  private readonly write: (line: string) => void

  constructor(private readonly options: ReporterOptions) {
    this.write = options.write ?? ((line) => process.stdout.write(line + '\n'))
  }

  static forTerminal(verbosity: number, diff: boolean): Reporter {
    const color = Boolean(process.stdout.isTTY) && !process.env.CI && !process.env.NO_COLOR
    return new Reporter({ verbosity, diff, color })
  }

  private paint(kind: keyof typeof COLORS, text: string): string {
    return this.options.color ? `\x1b[${COLORS[kind]}m${text}\x1b[0m` : text
  }

  line(text: string): void {
    this.write(mask(text))
  }

  /** A question waiting for an answer on the same line (--step). */
  prompt(text: string): void {
    if (this.options.write) this.options.write(mask(text))
    else process.stdout.write(mask(text))
  }

  playStart(name: string, hosts: string[], check: boolean): void {
    const title = `PLAY [${name}]${check ? ' (check mode)' : ''} `
    this.line(`\n${title}${'*'.repeat(Math.max(3, 72 - title.length))}`)
    if (this.options.verbosity > 0) this.line(`hosts: ${hosts.join(', ') || '(none)'}`)
  }

  handlersStart(host: string, names: string[]): void {
    this.line(`${host}: running handlers: ${names.join(', ')}`)
  }

  taskDone(host: string, outcome: TaskOutcome): void {
    const v = this.options.verbosity
    if (outcome.status === 'ok' && v === 0 && !outcome.reason) {
      this.line(`${this.paint('ok', 'ok:')} [${host}] ${outcome.task}`)
      return
    }
    const status = outcome.status === 'changed' ? 'changed' : outcome.status
    const secs = (outcome.durationMs / 1000).toFixed(1)
    let text = `${this.paint(status, `${status}:`)} [${host}] ${outcome.task}`
    if (outcome.reason && (outcome.status !== 'ok' || v > 0)) text += ` — ${outcome.reason}`
    if (v > 0) text += ` (${secs}s)`
    this.line(text)
    if (outcome.error) this.line(indent(outcome.error))
    if (this.options.diff && outcome.diff) this.line(indent(outcome.diff))
    if (v > 1 && outcome.stdout) this.line(indent(outcome.stdout.trimEnd()))
  }

  hostUnreachable(host: string, message: string): void {
    this.line(`${this.paint('unreachable', 'unreachable:')} [${host}] ${message}`)
  }

  stillRunning(host: string, task: string, seconds: number): void {
    this.line(`${host} | ${task}: still running (${seconds} s)`)
  }

  log(host: string, message: string): void {
    this.line(`  [${host}] ${message}`)
  }

  recap(stats: Map<string, HostStats>, durationMs: number): void {
    this.line(`\nPLAY RECAP ${'*'.repeat(62)}`)
    const width = Math.max(...[...stats.keys()].map((h) => h.length), 4)
    for (const [host, s] of stats) {
      const failed = s.failed > 0 || s.unreachable > 0
      const name = this.paint(failed ? 'failed' : s.changed ? 'changed' : 'ok', host.padEnd(width))
      const pending = s.pendingHandlers.length ? `pending handlers: ${s.pendingHandlers.join(', ')}` : ''
      this.line(
        `${name} : ok=${s.ok}  changed=${s.changed}  unreachable=${s.unreachable}  failed=${s.failed}  skipped=${s.skipped}  ignored=${s.ignored}` +
          (pending ? `  ${this.paint('pending', pending)}` : '') +
          (s.interrupted ? `  ${this.paint('failed', `interrupted: ${s.interrupted}`)}` : ''),
      )
    }
    this.timing(stats, durationMs)
  }

  /** The total run time and the slowest tasks of every host. */
  private timing(stats: Map<string, HostStats>, durationMs: number): void {
    this.line(`\nTotal time: ${formatDuration(durationMs)}`)
    const slowest = [...stats]
      .flatMap(([host, s]) => s.tasks.map((t) => ({ host, task: t.task, ms: t.durationMs })))
      .filter((t) => t.ms > 0)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, SLOWEST_SHOWN)
    if (slowest.length === 0) return
    this.line('Slowest tasks:')
    for (const t of slowest) this.line(`  ${formatDuration(t.ms).padStart(8)}  ${t.host} | ${t.task}`)
  }
}

/** 0.4 s, 12.3 s, 2 min 05 s. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')
}
