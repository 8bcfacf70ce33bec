/**
 * Commands: the escape hatch, made idempotent by guards. `creates` / `removes`
 * test a path, `unless` / `onlyIf` run a read-only probe; without a guard the
 * command always runs and reports changed unless `changedWhen` says otherwise.
 */
import type { ApplyResult, Probe, RunResult } from '../types.ts'
import { CommandError } from '../types.ts'
import { pathTestCommand } from '../facts/files.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'

export interface CommandArgs extends TaskOptions {
  /** A shell command line (string) or words to quote (array). */
  cmd: string | string[]
  /** Skip when this path exists. */
  creates?: string
  /** Skip when this path does not exist. */
  removes?: string
  /** Skip when this read-only probe exits 0. */
  unless?: string | string[]
  /** Skip unless this read-only probe exits 0. */
  onlyIf?: string | string[]
  /** Decide from the result whether the command changed anything (default: it did). */
  changedWhen?: (result: RunResult) => boolean
  /** Decide from the result whether it failed (default: non-zero exit). */
  failedWhen?: (result: RunResult) => boolean
  sudo?: boolean
  user?: string
  env?: Record<string, string>
  cwd?: string
  stdin?: string | Buffer
  timeoutMs?: number
}

/** Run a command when its guards say it is needed. Its output is in the outcome's stdout. */
export function command(args: CommandArgs) {
  const shown = Array.isArray(args.cmd) ? args.cmd.join(' ') : args.cmd
  // The guards are read-only: those run as a plain command (no user, env, cwd) can be gathered as probes.
  const plain = args.sudo === undefined && !args.user && !args.env && !args.cwd
  const exists = (path: string | undefined): Probe[] => (path ? [{ kind: 'test', test: 'exists', path }] : [])
  const guards = [
    plain && typeof args.unless === 'string' && args.unless,
    plain && typeof args.onlyIf === 'string' && args.onlyIf,
  ]
  const probes: Probe[] = [
    ...exists(args.creates),
    ...exists(args.removes),
    ...guards.flatMap((g): Probe[] => (typeof g === 'string' ? [{ kind: 'run', command: g }] : [])),
  ]
  const name = `Run ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`
  return defineTask(name, { ...args, probes }, async (ctx) => {
    const probeOpts = { sudo: args.sudo, user: args.user, env: args.env, cwd: args.cwd }
    if (args.creates && (await ctx.conn.run(pathTestCommand('exists', args.creates))).code === 0)
      return noChange(`${args.creates} exists`)
    if (args.removes && (await ctx.conn.run(pathTestCommand('exists', args.removes))).code !== 0)
      return noChange(`${args.removes} is absent`)
    if (args.unless && (await ctx.conn.run(args.unless, probeOpts)).code === 0)
      return noChange('the unless probe passed')
    if (args.onlyIf && (await ctx.conn.run(args.onlyIf, probeOpts)).code !== 0)
      return noChange('the onlyIf probe failed')
    return {
      change: true,
      reason: args.creates
        ? `${args.creates} is missing`
        : args.unless
          ? 'the unless probe failed'
          : 'command runs every time',
      apply: async (): Promise<ApplyResult> => {
        const result = await ctx.conn.run(args.cmd, { ...probeOpts, stdin: args.stdin, timeoutMs: args.timeoutMs })
        const failed = args.failedWhen ? args.failedWhen(result) : result.code !== 0
        if (failed) throw new CommandError(ctx.host.name, shown, result)
        return {
          changed: args.changedWhen ? args.changedWhen(result) : true,
          stdout: result.stdout,
          stderr: result.stderr,
        }
      },
    }
  })
}
