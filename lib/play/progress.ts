/**
 * "Still running" notices for slow tasks: the first after `firstMs`, then one
 * every `everyMs` until the task ends (the caller stops the watch).
 */

export interface ProgressIntervals {
  /** The first notice after this long (default 10 s). */
  firstMs: number
  /** Then one notice every this long (default 15 s). */
  everyMs: number
}

export const DEFAULT_PROGRESS: ProgressIntervals = { firstMs: 10_000, everyMs: 15_000 }

/** Call `notice(elapsedSeconds)` while the task runs; returns the function that stops it. */
export function watchSlowTask(intervals: ProgressIntervals, notice: (elapsedSeconds: number) => void): () => void {
  const started = Date.now()
  let repeat: NodeJS.Timeout | undefined
  const tell = () => notice(Math.round((Date.now() - started) / 1000))
  const first = setTimeout(() => {
    tell()
    repeat = setInterval(tell, intervals.everyMs)
  }, intervals.firstMs)
  return () => {
    clearTimeout(first)
    clearInterval(repeat)
  }
}
