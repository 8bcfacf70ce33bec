/**
 * The one way tests run a playbook: as a child process the way a user does, with --json, bounded in
 * time, its output kept (and written to a log file when asked), its report read back. The report
 * of an earlier run is deleted first, so a run that writes none is never judged by a stale one.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

export interface ReportTask {
  task: string
  status: string
  reason?: string
}

/** The parts of a --json report the tests read. */
export interface PlaybookReport {
  totals: { ok: number; changed: number; failed: number; skipped: number; unreachable: number }
  hosts: Record<string, { changed: number; failed: number; unreachable: number; tasks: ReportTask[] }>
}

export interface PlaybookRunOptions {
  /** The playbook, relative to `cwd` (for example `playbooks/postgres.ts`). */
  playbook: string
  inventory: string
  /** Where the --json report goes (deleted before the run). */
  json: string
  extra?: string[]
  /** The repository to run in (default: this repository). */
  cwd?: string
  /**
   * `tsx` (default): node with tsx's loader; `zx`: `npx zx`, as the README shows; `bundle`: `node bin/play.mjs`,
   * the playbook bundled by esbuild and run with plain node (the fast start).
   */
  launcher?: 'zx' | 'tsx' | 'bundle'
  /** Also write stdout and stderr to this file. */
  log?: string
  /** Kill the run after this long (default 15 minutes). */
  timeoutMs?: number
}

export interface PlaybookRun {
  exitCode: number
  seconds: number
  /** The --json report; empty totals and hosts when the run wrote none. */
  report: PlaybookReport
  /** The report's totals (shorthand). */
  totals: PlaybookReport['totals']
  /** "host: task (reason)" for every task reported changed. */
  changed: string[]
  stdout: string
  /** The last 40 lines of stdout plus stderr, for a failure's comment. */
  tail: string
  log?: string
}

/** Every run's output and report text, in order: the site suite scans them for secrets at its end. */
export const runOutputs: { source: string; text: string }[] = []

const EMPTY_TOTALS = { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0 }

function readReport(json: string): PlaybookReport {
  try {
    return JSON.parse(readFileSync(json, 'utf8')) as PlaybookReport
  } catch {
    return { totals: { ...EMPTY_TOTALS }, hosts: {} }
  }
}

/** The command and arguments that start a playbook with `args` the way `launcher` does. */
function launcherCommand(launcher: 'zx' | 'tsx' | 'bundle', args: string[]): [string, string[]] {
  if (launcher === 'zx') return ['npx', ['zx', ...args]]
  if (launcher === 'bundle') return [process.execPath, ['bin/play.mjs', ...args]]
  return [process.execPath, ['--import=tsx', ...args]]
}

/** Run `playbook -i inventory --json json ...extra`; never throws for a failed run (look at exitCode). */
export async function runPlaybook(opts: PlaybookRunOptions): Promise<PlaybookRun> {
  const cwd = opts.cwd ?? ROOT
  rmSync(opts.json, { force: true })
  mkdirSync(dirname(opts.json), { recursive: true })
  const args = [opts.playbook, '-i', opts.inventory, '--json', opts.json, ...(opts.extra ?? [])]
  const [command, argv] = launcherCommand(opts.launcher ?? 'tsx', args)
  const started = Date.now()
  // The bundle needs no TypeScript loader; inherited from a tsx parent (NODE_OPTIONS=--import=tsx), the loader
  // would transform the whole 2 MB bundle on every start (1.1 s more, measured on 2026-12-01).
  const env = opts.launcher === 'bundle' ? { ...process.env, NODE_OPTIONS: '' } : process.env
  const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 900_000)
  const exitCode: number = await new Promise((done) => child.on('close', (code) => done(code ?? 1)))
  clearTimeout(timer)
  const seconds = (Date.now() - started) / 1000
  if (opts.log) writeFileSync(opts.log, stdout + stderr)
  const report = readReport(opts.json)
  runOutputs.push({ source: `${opts.playbook} ${opts.extra?.join(' ') ?? ''}`.trim(), text: stdout + stderr })
  // A day-2 playbook's --json document has no per-host tasks (the audit's `hosts` is a list of findings).
  const changed = Object.entries(report.hosts ?? {}).flatMap(([host, s]) =>
    (Array.isArray(s?.tasks) ? s.tasks : [])
      .filter((x) => x.status === 'changed')
      .map((x) => `${host}: ${x.task} (${x.reason})`),
  )
  const tail = stdout.split('\n').slice(-40).join('\n') + stderr
  return { exitCode, seconds, report, totals: report.totals, changed, stdout, tail, log: opts.log }
}
