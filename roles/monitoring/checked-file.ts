/**
 * A configuration file that a checker must accept before it replaces the old one
 * (promtool check config, amtool check-config): the new content is uploaded beside the
 * destination, checked there, removed, and only then written by the file task. A
 * rejected file fails the task and leaves the running configuration alone. When the
 * engine's file task gains a `validate` option, this function becomes that option.
 */
import { createHash } from 'node:crypto'
import type { HostRun, TaskOutcome } from '../../lib/types.ts'
import { defineTask, file, noChange, type TaskOptions } from '../../lib/tasks/index.ts'
import { pathState } from '../../lib/facts/files.ts'
import { sh } from '../../lib/connection/quote.ts'
import type { Ownership } from '../../lib/tasks/files.ts'

export interface CheckedFileArgs extends TaskOptions, Ownership {
  path: string
  content: string
  /** The check command for a candidate file at the given path; exit 0 accepts it. */
  checkCommand: (candidate: string) => string
  /** What the checker is called in task names, e.g. "promtool". */
  checker: string
}

/** Check the new content with the checker (only when it differs), then ensure the file. */
export async function checkedFile(h: HostRun, args: CheckedFileArgs): Promise<TaskOutcome> {
  const { path, content, checkCommand, checker, ...fileArgs } = args
  const candidate = `${path}.hastack-candidate`
  const wanted = createHash('sha256').update(content).digest('hex')
  await h.do(
    defineTask(`Check the new ${path} with ${checker} before it replaces the old`, {}, async (ctx) => {
      if ((await pathState(ctx.conn, path)).sha256 === wanted) return noChange()
      return {
        change: true,
        reason: `${path} will change: ${checker} checks the candidate first`,
        apply: async () => {
          await ctx.conn.put(candidate, content, {
            mode: args.mode ?? '0644',
            owner: args.owner ?? 'root',
            group: args.group ?? 'root',
          })
          const r = await ctx.conn.run(`${checkCommand(candidate)}; rc=$?; rm -f -- ${sh`${candidate}`}; exit $rc`)
          if (r.code !== 0)
            throw new Error(
              `${checker} rejects the new ${path}: ${(r.stdout + r.stderr).trim().split('\n').slice(-5).join(' ')}`,
            )
          return { changed: false }
        },
      }
    }),
  )
  return h.do(file({ path, content, ...fileArgs }))
}
