/**
 * Verifications whose full cost is only needed after a change: a health gate after a start or a
 * restart, `pgbackrest check` after a configuration change. When the run is settled (nothing changed
 * or failed on any host so far, no handler pending on this host: `TaskContext.settled`), a quick
 * read-only command, batched with the other tasks' probes, answers instead; in check mode, after a
 * change, or when the quick answer is not good, the strict check runs as before.
 */
import type { CommandProbe, Plan, RunResult, Task } from '../types.ts'
import { probeCommand } from '../facts/probes.ts'
import { noChange } from './common.ts'

export interface QuickCheck {
  /**
   * One read-only shell command or typed probe (run as its command), gathered as a probe with the other
   * tasks' (lib/facts/probes.ts).
   */
  command: string | CommandProbe
  /** The task's reason when the answer is good; undefined when it is not (the strict check then runs). */
  judge(result: RunResult): string | undefined
}

/** The strict task, answered by `quick` when the run is settled and its answer is good. */
export function verifyAfterChange(strict: Task, quick: QuickCheck): Task {
  return {
    ...strict,
    // Only the quick command is gathered: the strict check runs live, and only when it is needed.
    probes: [typeof quick.command === 'string' ? { kind: 'run', command: quick.command } : quick.command],
    async check(ctx): Promise<Plan> {
      if (ctx.settled && !ctx.check) {
        const command = typeof quick.command === 'string' ? quick.command : probeCommand(quick.command)
        const reason = quick.judge(await ctx.conn.run(command))
        if (reason !== undefined) return noChange(`nothing changed in this run; ${reason}`)
      }
      return strict.check(ctx)
    },
  }
}
