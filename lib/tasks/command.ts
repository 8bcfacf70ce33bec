/**
 * Commands: the escape hatch, made idempotent by guards. `creates` / `removes`
 * test a path, `unless` / `onlyIf` run a read-only probe (a command, or a typed probe asked as its
 * command, which a batch may answer without a process); without a guard the
 * command always runs and reports changed unless `changedWhen` says otherwise.
 */
import type { ApplyResult, CommandProbe, Probe, RunResult } from '../types.ts'
import { CommandError } from '../types.ts'
import { pathTestCommand } from '../facts/files.ts'
import { probeCommand } from '../facts/probes.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'

export interface CommandArgs extends TaskOptions {
  /** A shell command line (string) or words to quote (array). */
  cmd: string | string[]
  /** Skip when this path exists. */
  creates?: string
  /** Skip when this path does not exist. */
  removes?: string
  /** Skip when this read-only probe exits 0. */
  unless?: Guard
  /** Skip unless this read-only probe exits 0. */
  onlyIf?: Guard
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

/** A guard: a shell command line (string), words to quote (array), or a typed probe asked as its command. */
export type Guard = string | string[] | CommandProbe

/** The guard as `conn.run` takes it. */
const guardCommand = (guard: Guard): string | string[] =>
  typeof guard === 'string' || Array.isArray(guard) ? guard : probeCommand(guard)

/** The guard as a probe a run of tasks may gather, when it is one (a line or a typed probe, run plainly). */
const guardProbe = (guard: Guard | undefined): Probe[] =>
  guard === undefined || Array.isArray(guard)
    ? []
    : typeof guard === 'string'
      ? [{ kind: 'run', command: guard }]
      : [guard]

/** Run a command when its guards say it is needed. Its output is in the outcome's stdout. */
export function command(args: CommandArgs) {
  const shown = Array.isArray(args.cmd) ? args.cmd.join(' ') : args.cmd
  // The guards are read-only: those run as a plain command (no user, env, cwd) can be gathered as probes.
  const plain = args.sudo === undefined && !args.user && !args.env && !args.cwd
  const exists = (path: string | undefined): Probe[] => (path ? [{ kind: 'test', test: 'exists', path }] : [])
  const probes: Probe[] = [
    ...exists(args.creates),
    ...exists(args.removes),
    ...(plain ? [...guardProbe(args.unless), ...guardProbe(args.onlyIf)] : []),
  ]
  const name = `Run ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`
  return defineTask(name, { ...args, probes }, async (ctx) => {
    const probeOpts = { sudo: args.sudo, user: args.user, env: args.env, cwd: args.cwd }
    if (args.creates && (await ctx.conn.run(pathTestCommand('exists', args.creates))).code === 0)
      return noChange(`${args.creates} exists`)
    if (args.removes && (await ctx.conn.run(pathTestCommand('exists', args.removes))).code !== 0)
      return noChange(`${args.removes} is absent`)
    if (args.unless && (await ctx.conn.run(guardCommand(args.unless), probeOpts)).code === 0)
      return noChange('the unless probe passed')
    if (args.onlyIf && (await ctx.conn.run(guardCommand(args.onlyIf), probeOpts)).code !== 0)
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
