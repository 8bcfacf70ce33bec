/**
 * What every task shares: the options a caller may add to any task (tags,
 * handlers to notify, ignore errors; run-once is `h.once`) and a helper that builds the
 * Task object from a default name and a check function.
 */
import type { Plan, Probe, Task, TaskContext } from '../types.ts'

export interface TaskOptions {
  /** A sentence naming what the task ensures; each task has a sensible default. */
  name?: string
  tags?: string[]
  notify?: string | string[]
  ignoreErrors?: boolean
}

/** What a task kind adds to the caller's options: the read-only probes its check starts with (Task.probes). */
export interface TaskDefinition extends TaskOptions {
  probes?: Probe[]
}

export function defineTask(
  defaultName: string,
  options: TaskDefinition,
  check: (ctx: TaskContext) => Promise<Plan>,
): Task {
  return {
    name: options.name ?? defaultName,
    tags: options.tags,
    notify: options.notify,
    ignoreErrors: options.ignoreErrors,
    check,
    probes: options.probes,
  }
}

/** A plan that changes nothing. */
export function noChange(reason?: string): Plan {
  return { change: false, reason }
}
