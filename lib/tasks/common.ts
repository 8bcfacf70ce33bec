/**
 * What every task shares: the options a caller may add to any task (tags,
 * handlers to notify, ignore errors; run-once is `h.once`) and a helper that builds the
 * Task object from a default name and a check function.
 */
import type { Plan, Task, TaskContext } from '../types.ts'

export interface TaskOptions {
  /** A sentence naming what the task ensures; each task has a sensible default. */
  name?: string
  tags?: string[]
  notify?: string | string[]
  ignoreErrors?: boolean
}

export function defineTask(
  defaultName: string,
  options: TaskOptions,
  check: (ctx: TaskContext) => Promise<Plan>,
): Task {
  return {
    name: options.name ?? defaultName,
    tags: options.tags,
    notify: options.notify,
    ignoreErrors: options.ignoreErrors,
    check,
  }
}

/** A plan that changes nothing. */
export function noChange(reason?: string): Plan {
  return { change: false, reason }
}
