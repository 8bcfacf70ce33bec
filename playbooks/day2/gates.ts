/**
 * Health gates of the day-2 playbooks: read the stack until a condition holds on two readings in a
 * row (one reading can catch a cluster between two states), bounded in time by the engine's one
 * poll (waitUntil). A gate that times out fails with the problems of the last reading, so the
 * operator reads why, not just that it took too long.
 */
import { waitUntil } from '../../lib/tasks/wait.ts'
import type { Fleet } from './fleet.ts'
import type { StackState } from './stack-state.ts'
import { readStack } from './stack-state.ts'

/** A condition on a reading: the problems in the way (none: it holds). */
export type Condition = (state: StackState) => string[]

export class GateFailed extends Error {
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`${what}: not reached — ${problems.join('; ') || 'no reading'}`)
    this.name = 'GateFailed'
  }
}

/** Wait until `condition` holds on two readings in a row; the last reading. */
export async function gate(
  fleet: Fleet,
  what: string,
  condition: Condition,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<StackState> {
  let passes = 0
  let last: string[] = []
  const probe = async () => {
    const state = await readStack(fleet)
    last = condition(state)
    passes = last.length ? 0 : passes + 1
    return passes >= 2 ? state : undefined
  }
  try {
    return await waitUntil(what, probe, { timeoutMs: options.timeoutMs, intervalMs: options.intervalMs ?? 1000 })
  } catch {
    throw new GateFailed(`${what} within ${Math.round(options.timeoutMs / 1000)} s`, last)
  }
}
