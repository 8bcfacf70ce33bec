/**
 * Issue 15's full-site no-op (`npm run bench -- site-noop`; needs root, boots a lab of its own: take the
 * lab lock first): on a copy of inventory/lab-small.yml, converge `playbooks/site.ts` once, then time
 * NOOP_RUNS more runs, each of which must change nothing. Prints each run's wall time (the command as a
 * user types it, start-up included), the start-up before the first connection and the time from the
 * first connection to the recap (both from the --json report; the first and last no-op's stay in
 * reports/), and where the last no-op run spent its time: outside the tasks (the report's phases), per
 * play, and the slowest tasks. The no-op runs start the way `node bin/play.mjs` does (the bundled
 * playbook, plain node); one more no-op and the --list-tasks runs are timed with tsx's loader too, for
 * the start-up's share. It converges and times with the defaults (TLS and the firewall on);
 * `--plaintext` sets `tls_enabled: false`. The lab is removed at the end.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Lab } from '../lab/lab.ts'
import { runPlaybook, type PlaybookRun, type PlaybookRunOptions, type ReportTask } from '../test/stack/playbook-run.ts'
import { phaseTables, playSpans, playSpanTable } from './site-profile.ts'
import type { JsonReport } from '../lib/output/json-report.ts'
import { probePlanFile, readProbePlan } from '../lib/play/probe-plan.ts'
import { loadInventory } from '../lib/inventory/index.ts'
import { SshConnection } from '../lib/connection/ssh.ts'
import { planProfileLines, profilePlan } from './plan-profile.ts'

const REPO = resolve(import.meta.dirname, '..')
const NOOP_RUNS = 3
/** Where the last no-op run's --json report is kept. */
const LAST_REPORT = join(REPO, 'reports/site-noop-last.json')

/** Where the first no-op run's --json report is kept (the one right after the converge). */
const FIRST_REPORT = join(REPO, 'reports/site-noop-first.json')

/** Where the probe plan the last no-op run left is kept (the questions only, never a secret). */
const PLAN_COPY = join(REPO, 'reports/site-noop-plan.json')

/** Where the --json report of a run that failed is kept. */
const FAILED_REPORT = join(REPO, 'reports/site-noop-failed.json')

/** Keep a run's --json report in reports/ (not committed), when it wrote one. */
function keepReport(json: string, to: string): void {
  mkdirSync(join(REPO, 'reports'), { recursive: true })
  if (existsSync(json)) copyFileSync(json, to)
}

const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)

/** Milliseconds as seconds with two decimals, `?` when the report has none. */
const seconds = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(2)} s`)

/** The runs, in order: the converge, the timed no-op runs (bundled), one no-op with tsx's loader. */
const RUNS: { label: string; launcher: PlaybookRunOptions['launcher'] }[] = [
  { label: 'converge (tsx)', launcher: 'tsx' },
  ...Array.from({ length: NOOP_RUNS }, (_, i) => ({ label: `no-op ${i + 1} (bundle)`, launcher: 'bundle' as const })),
  { label: 'no-op (tsx)', launcher: 'tsx' },
]

/** The options of a `site.ts --list-tasks` run: start-up, inventory and roles, no connection. */
const listTasks = (dir: string, inventory: string): PlaybookRunOptions => ({
  cwd: REPO,
  playbook: 'playbooks/site.ts',
  inventory,
  json: join(dir, 'site-list.json'),
  extra: ['--list-tasks'],
})

/** The bench, start to end; returns the exit code (0: measured). `plaintext`: the copy sets `tls_enabled: false`. */
export async function siteNoopBench(options: { plaintext?: boolean } = {}): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-bench-site-'))
  const inventory = join(dir, 'lab-small.yml')
  const source = readFileSync(join(REPO, 'inventory/lab-small.yml'), 'utf8')
  const key = `ssh_key: ${REPO}/.lab/ssh/id_ed25519${options.plaintext ? '\n    tls_enabled: false' : ''}`
  writeFileSync(inventory, source.replace('ssh_key: ../.lab/ssh/id_ed25519', key))
  const lab = new Lab({ inventory, name: 'bench-site', log })
  const rows: string[] = []
  let lastNoop: PlaybookRun | undefined
  let lastNoopJson: string | undefined
  let planLines: string[] | undefined
  try {
    // The bundle is built (when stale) before any timed run, so no timed run pays for the build.
    const warm = await runPlaybook({ ...listTasks(dir, inventory), launcher: 'bundle' })
    if (warm.exitCode !== 0) throw new Error(`bin/play.mjs playbooks/site.ts --list-tasks failed:\n${warm.tail}`)
    await lab.up()
    for (const [i, { label, launcher }] of RUNS.entries()) {
      log(`playbooks/site.ts: ${label}`)
      const json = join(dir, `site-${i}.json`)
      const run = await runPlaybook({
        cwd: REPO,
        playbook: 'playbooks/site.ts',
        inventory,
        json,
        launcher,
        timeoutMs: 1_800_000,
      })
      if (run.exitCode !== 0) {
        keepReport(json, FAILED_REPORT)
        throw new Error(`site.ts ${label} failed (exit ${run.exitCode}; its report: ${FAILED_REPORT}):\n${run.tail}`)
      }
      if (i > 0 && run.totals.changed !== 0) throw new Error(`site.ts ${label} changed: ${run.changed.join('; ')}`)
      if (launcher === 'bundle') [lastNoop, lastNoopJson] = [run, json]
      if (i === 1) keepReport(json, FIRST_REPORT)
      const tasks = Object.values(run.report.hosts).reduce((n, h) => n + h.tasks.length, 0)
      const { startupMs, durationMs } = run.report as unknown as JsonReport
      const split = `${seconds(startupMs)} | ${seconds(durationMs)}`
      rows.push(`| ${label} | ${tasks} | ${run.totals.changed} | ${run.seconds.toFixed(2)} s | ${split} |`)
    }
    for (const launcher of ['bundle', 'tsx'] as const) {
      log(`playbooks/site.ts --list-tasks (${launcher}): start-up, inventory and roles, no connection`)
      const listed = await runPlaybook({ ...listTasks(dir, inventory), launcher })
      if (listed.exitCode !== 0) throw new Error(`site.ts --list-tasks failed:\n${listed.tail}`)
      rows.push(`| --list-tasks (${launcher}, no connection) | – | – | ${listed.seconds.toFixed(2)} s | – | – |`)
    }
    log(`what the probe plan's early reads cost on ${PROFILED_HOST}`)
    planLines = await planCost(inventory).catch((error) => [`(the plan's cost was not measured: ${error})`])
  } finally {
    await lab.down().catch((e) => log(`lab down failed: ${e}`))
    // The last no-op run's report stays for a closer look (reports/ is not committed).
    if (lastNoopJson) keepReport(lastNoopJson, LAST_REPORT)
    keepReport(probePlanFile(inventory), PLAN_COPY)
    rmSync(dir, { recursive: true, force: true })
  }
  const load = loadavg().map((n) => n.toFixed(2))
  const tls = options.plaintext ? 'tls_enabled: false' : 'TLS on'
  console.log(
    `playbooks/site.ts on lab-small (3 hosts, ${tls}); this machine's load average at the end: ${load.join(' ')}\n`,
  )
  console.log(
    '| run | tasks (all hosts) | changed | wall time of the process | start-up to the first connection | first connection to the recap |',
  )
  console.log('|---|---|---|---|---|---|')
  for (const row of rows) console.log(row)
  if (lastNoop) printSlowest(lastNoop)
  if (planLines?.length) console.log(`\n${planLines.join('\n')}`)
  if (lastNoop) console.log(`\nThe --json reports of the first and the last no-op run: ${FIRST_REPORT}, ${LAST_REPORT}`)
  return 0
}

/** The host whose probe plan is timed probe by probe (the one with the most roles on lab-small). */
const PROFILED_HOST = 'node1'

/** The plan's cost on PROFILED_HOST (bench/plan-profile.ts), as Markdown lines. */
async function planCost(inventoryFile: string): Promise<string[]> {
  const inventory = await loadInventory(inventoryFile, { writeSecrets: false, listing: true })
  const probes = (await readProbePlan(probePlanFile(inventoryFile))).get(PROFILED_HOST) ?? []
  const conn = await SshConnection.connect(inventory.hosts.get(PROFILED_HOST)!.connection)
  try {
    return planProfileLines(await profilePlan(conn, probes))
  } finally {
    await conn.close()
  }
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
  const trips = Object.entries(run.report.hosts).map(([host, h]) => `${host} ${(h as { commands?: number }).commands}`)
  console.log(`\nRound trips over each host's connection: ${trips.join(', ')}.`)
  console.log(`\nOutside the tasks (the --json report's phases):\n`)
  for (const line of phaseTables(run.report as unknown as JsonReport)) console.log(line)
  console.log(`\nFrom the first task's start to the last task's end: ${span.toFixed(2)} s. Per play:\n`)
  for (const line of playSpanTable(playSpans(run.report as unknown as JsonReport))) console.log(line)
  console.log(`\nThe last no-op run's tasks took ${(total / 1000).toFixed(2)} s summed over the hosts; the slowest:\n`)
  console.log('| play \\| task | hosts | summed |')
  console.log('|---|---|---|')
  const slowest = [...byTask.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, count)
  for (const [key, e] of slowest) console.log(`| ${key.replace(' | ', ' \\| ')} | ${e.hosts} | ${e.ms} ms |`)
}
