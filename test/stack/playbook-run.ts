/**
 * Runs a playbook the way a user does (a child process with --json), bounded
 * in time, and reads its report back: totals, every changed task with its
 * reason, the exit code, the last lines of output and how long it took.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { $ } from 'zx'

export interface PlaybookRun {
  exitCode: number
  totals: { ok: number; changed: number; failed: number; skipped: number; unreachable: number }
  /** "host: task (reason)" for every task reported changed. */
  changed: string[]
  seconds: number
  stdout: string
  /** The last 40 lines of stdout plus stderr, for a failure's comment. */
  tail: string
}

/**
 * Run `launcher playbook -i inventory --json json ...extra` in `cwd`. The previous report is deleted
 * first, so a run that writes none (bad input, --list-hosts) reports zero totals, never a stale file's.
 */
export async function runPlaybook(opts: { cwd: string; launcher: 'zx' | 'tsx'; playbook: string; inventory: string; json: string; extra?: string[]; timeoutMs?: number }): Promise<PlaybookRun> {
  rmSync(opts.json, { force: true })
  const started = Date.now()
  const r = await $({ cwd: opts.cwd, nothrow: true, quiet: true, timeout: opts.timeoutMs ?? 900_000 })`npx ${opts.launcher} ${opts.playbook} -i ${opts.inventory} --json ${opts.json} ${opts.extra ?? []}`
  const seconds = (Date.now() - started) / 1000
  const report = existsSync(opts.json)
    ? JSON.parse(readFileSync(opts.json, 'utf8'))
    : { totals: { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0 }, hosts: {} }
  const changed = Object.entries(report.hosts as Record<string, { tasks: { task: string; status: string; reason?: string }[] }>).flatMap(([h, s]) =>
    s.tasks.filter((x) => x.status === 'changed').map((x) => `${h}: ${x.task} (${x.reason})`),
  )
  const exitCode = r.exitCode ?? 1
  return { exitCode, totals: report.totals, changed, seconds, stdout: r.stdout, tail: r.stdout.split('\n').slice(-40).join('\n') + r.stderr }
}
