/**
 * Issue 15's full-site no-op (`npm run bench -- site-noop`; needs root, boots a lab of its own: take the
 * lab lock first): on a copy of inventory/lab-small.yml, converge `playbooks/site.ts` once, then time
 * NOOP_RUNS more runs, each of which must change nothing. Prints each run's wall time (the command as a
 * user types it, start-up included), the start-up before the first connection and the time from the
 * first connection to the recap (both from the --json report), and where the last no-op run spent its
 * time: per play, and the slowest tasks. The lab is removed at the end.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Lab } from '../lab/lab.ts'
import { runPlaybook, type PlaybookRun, type ReportTask } from '../test/stack/playbook-run.ts'
import { playSpans, playSpanTable } from './site-profile.ts'
import type { JsonReport } from '../lib/output/json-report.ts'

const REPO = resolve(import.meta.dirname, '..')
const NOOP_RUNS = 3
/** Where the last no-op run's --json report is kept. */
const LAST_REPORT = join(REPO, 'reports/site-noop-last.json')

const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)

/** Milliseconds as seconds with two decimals, `?` when the report has none. */
const seconds = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(2)} s`)

/** The bench, start to end; returns the exit code (0: measured). */
export async function siteNoopBench(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-bench-site-'))
  const inventory = join(dir, 'lab-small.yml')
  const source = readFileSync(join(REPO, 'inventory/lab-small.yml'), 'utf8')
  writeFileSync(inventory, source.replace('ssh_key: ../.lab/ssh/id_ed25519', `ssh_key: ${REPO}/.lab/ssh/id_ed25519`))
  const lab = new Lab({ inventory, name: 'bench-site', log })
  const rows: string[] = []
  let lastNoop: PlaybookRun | undefined
  try {
    await lab.up()
    for (let i = 0; i <= NOOP_RUNS; i++) {
      const label = i === 0 ? 'converge' : `no-op ${i}`
      log(`playbooks/site.ts: ${label}`)
      const run = await runPlaybook({
        cwd: REPO,
        playbook: 'playbooks/site.ts',
        inventory,
        json: join(dir, `site-${i}.json`),
        timeoutMs: 1_800_000,
      })
      if (run.exitCode !== 0) throw new Error(`site.ts ${label} failed (exit ${run.exitCode}):\n${run.tail}`)
      if (i > 0 && run.totals.changed !== 0) throw new Error(`site.ts ${label} changed: ${run.changed.join('; ')}`)
      lastNoop = run
      const tasks = Object.values(run.report.hosts).reduce((n, h) => n + h.tasks.length, 0)
      const { startupMs, durationMs } = run.report as unknown as JsonReport
      const split = `${seconds(startupMs)} | ${seconds(durationMs)}`
      rows.push(`| ${label} | ${tasks} | ${run.totals.changed} | ${run.seconds.toFixed(2)} s | ${split} |`)
    }
    log('playbooks/site.ts --list-tasks: start-up, inventory and roles, no connection')
    const listed = await runPlaybook({
      cwd: REPO,
      playbook: 'playbooks/site.ts',
      inventory,
      json: join(dir, 'site-list.json'),
      extra: ['--list-tasks'],
    })
    if (listed.exitCode !== 0) throw new Error(`site.ts --list-tasks failed:\n${listed.tail}`)
    rows.push(`| --list-tasks (no connection) | – | – | ${listed.seconds.toFixed(2)} s | – | – |`)
  } finally {
    await lab.down().catch((e) => log(`lab down failed: ${e}`))
    // The last no-op run's report stays for a closer look (reports/ is not committed).
    if (lastNoop) {
      mkdirSync(join(REPO, 'reports'), { recursive: true })
      copyFileSync(join(dir, `site-${NOOP_RUNS}.json`), LAST_REPORT)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const load = loadavg().map((n) => n.toFixed(2))
  console.log(`playbooks/site.ts on lab-small (3 hosts); this machine's load average at the end: ${load.join(' ')}\n`)
  console.log(
    '| run | tasks (all hosts) | changed | wall time of the process | start-up to the first connection | first connection to the recap |',
  )
  console.log('|---|---|---|---|---|---|')
  for (const row of rows) console.log(row)
  if (lastNoop) printSlowest(lastNoop)
  if (lastNoop) console.log(`\nThe last no-op run's --json report: ${LAST_REPORT}`)
  return 0
}

/** Where the last no-op run spent its time: the tasks with the largest summed duration over the hosts. */
function printSlowest(run: PlaybookRun, count = 15): void {
  const byTask = new Map<string, { ms: number; hosts: number }>()
  for (const host of Object.values(run.report.hosts)) {
    for (const task of host.tasks as (ReportTask & { durationMs?: number; play?: string })[]) {
      const key = `${task.play ?? ''} | ${task.task}`
      const entry = byTask.get(key) ?? { ms: 0, hosts: 0 }
      byTask.set(key, { ms: entry.ms + (task.durationMs ?? 0), hosts: entry.hosts + 1 })
    }
  }
  const total = [...byTask.values()].reduce((n, e) => n + e.ms, 0)
  const times = Object.values(run.report.hosts).flatMap((h) =>
    (h.tasks as { startedAt?: string; endedAt?: string }[]).flatMap((t) => [t.startedAt ?? '', t.endedAt ?? '']),
  )
  const stamps = times.filter(Boolean).map((t) => Date.parse(t))
  const span = stamps.length ? (Math.max(...stamps) - Math.min(...stamps)) / 1000 : 0
  console.log(`\nFrom the first task's start to the last task's end: ${span.toFixed(2)} s. Per play:\n`)
  for (const line of playSpanTable(playSpans(run.report as unknown as JsonReport))) console.log(line)
  console.log(`\nThe last no-op run's tasks took ${(total / 1000).toFixed(2)} s summed over the hosts; the slowest:\n`)
  console.log('| play \\| task | hosts | summed |')
  console.log('|---|---|---|')
  const slowest = [...byTask.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, count)
  for (const [key, e] of slowest) console.log(`| ${key.replace(' | ', ' \\| ')} | ${e.hosts} | ${e.ms} ms |`)
}
