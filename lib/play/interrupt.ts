/**
 * Interruption of a run (SIGINT, SIGTERM): once asked to stop, no new task
 * starts, running tasks finish, the cleanups registered by running work are
 * run, and the recap says what was interrupted. A second signal exits at once.
 */

export type StopSignal = 'SIGINT' | 'SIGTERM'

/** Exit codes of an interrupted run, as a shell reports them (128 + the signal number). */
export const SIGNAL_EXIT_CODES: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 }

/** Each cleanup gets this long before the next one runs. */
const CLEANUP_TIMEOUT_MS = 30_000

/** Thrown by a host's next task once the run is stopping. */
export class Interrupted extends Error {
  constructor(
    readonly host: string,
    readonly task: string,
    readonly signal: StopSignal,
  ) {
    super(`interrupted (${signal}) before "${task}"`)
    this.name = 'Interrupted'
  }
}

export class RunControl {
  signal?: StopSignal
  private readonly cleanups = new Map<number, { label: string; run: () => Promise<void> }>()
  private nextId = 0

  get stopping(): boolean {
    return this.signal !== undefined
  }

  /** Ask the run to stop: no new task starts. */
  interrupt(signal: StopSignal): void {
    this.signal ??= signal
  }

  /** Register work to undo if the run is interrupted; the returned function unregisters it (call it when done). */
  onInterrupt(label: string, run: () => Promise<void>): () => void {
    const id = this.nextId++
    this.cleanups.set(id, { label, run })
    return () => void this.cleanups.delete(id)
  }

  /** Run every registered cleanup once, each bounded in time; returns the problems, by label. */
  async runCleanups(): Promise<string[]> {
    const problems: string[] = []
    const due = [...this.cleanups.values()]
    this.cleanups.clear()
    for (const { label, run } of due) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${CLEANUP_TIMEOUT_MS / 1000} s`)),
          CLEANUP_TIMEOUT_MS,
        )
      })
      try {
        await Promise.race([run(), timeout])
      } catch (error) {
        problems.push(`${label}: ${error instanceof Error ? error.message : String(error)}`)
      } finally {
        clearTimeout(timer)
      }
    }
    return problems
  }
}

/**
 * One Ctrl-C can arrive twice: from the terminal to the whole process group, and relayed by a
 * launcher such as tsx. A second signal this soon after the first is that same keypress.
 */
export const DUPLICATE_SIGNAL_MS = 500

/**
 * Route SIGINT and SIGTERM to the control while a run is going: the first asks it to stop
 * (and calls `onFirst` to tell the operator), a later one calls `exitNow` with 130/143.
 * Returns a function that removes the listeners.
 */
export function watchSignals(
  control: RunControl,
  onFirst: (signal: StopSignal) => void,
  exitNow: (code: number) => void,
): () => void {
  let firstAt = 0
  const listeners = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const listener = () => {
      if (control.stopping) {
        if (Date.now() - firstAt >= DUPLICATE_SIGNAL_MS) exitNow(SIGNAL_EXIT_CODES[signal])
        return
      }
      firstAt = Date.now()
      control.interrupt(signal)
      onFirst(signal)
    }
    process.on(signal, listener)
    return [signal, listener] as const
  })
  return () => listeners.forEach(([signal, listener]) => process.off(signal, listener))
}
