/**
 * `npm run drills` (long, not in CI, needs root and the lab lock): issue 13's failover figures on a lab of
 * its own. Boots a copy of inventory/lab-small.yml, converges site.ts with the default failover profile,
 * switches the copy to `failover_profile: fast` and converges twice (the switch changes Patroni's dynamic
 * configuration, the Sentinels and HAProxy; the second run must change nothing), then runs drill.ts's
 * drills in-process with the fast profile: the PostgreSQL primary killed and the Redis primary killed,
 * `--repeat` times each (default 5; the primary first moved to the host that is neither a load balancer
 * nor an app host, so each kill breaks one thing), one load balancer (the VIP holder) killed and one etcd
 * member frozen. Prints a Markdown table (median and worst) with the goals (PostgreSQL write gap <= ttl + 3 s
 * with 0 lost, Redis <= 4 s), writes every report and picture under reports/drills-<time>/, removes the lab.
 * Exit 0 when every drill ran and recovered with nothing lost, 2 otherwise (a goal missed is printed, not
 * an error: the figures are the point).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { $ } from 'zx'
import { Lab } from '../lab/lab.ts'
import { parseCommandLineOrExit } from '../lib/cli/parse.ts'
import { loadInventory } from '../lib/inventory/index.ts'
import { registerSecrets } from '../lib/output/mask.ts'
import { secretValues } from '../lib/inventory/index.ts'
import { allRoles } from '../roles/index.ts'
import type { DrillOptions } from '../playbooks/drill/options.ts'
import { drillExitCode, drillText, type DrillReport } from '../playbooks/drill/report.ts'
import { placePrimary, runDrill } from '../playbooks/drill/run.ts'
import { liveFleet } from '../playbooks/drill/stack.ts'
import { runPlaybook } from '../test/stack/playbook-run.ts'
import { inventoryGroups } from '../test/stack/prometheus.ts'

const REPO = resolve(import.meta.dirname, '..')
const log = (message: string) => console.error(`[drills ${new Date().toISOString().slice(11, 19)}] ${message}`)

const parsed = parseCommandLineOrExit(
  process.argv.slice(2),
  { repeat: { type: 'number', valueName: 'N', description: 'repetitions of each primary kill (default 5)' } },
  'usage: npm run drills -- [--repeat N]   (root; take the lab lock first)',
)
const repeat = (parsed.values.repeat as number | undefined) ?? 5
if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) {
  process.stderr.write(`ERROR: --repeat must be a whole number from 1 to 20, got ${repeat}\n`)
  process.exit(1)
}

async function converge(inventory: string, label: string): Promise<number> {
  const run = await runPlaybook({
    cwd: REPO,
    launcher: 'zx',
    playbook: 'playbooks/site.ts',
    inventory,
    json: join(REPO, `reports/drills-${label}.json`),
    timeoutMs: 1_800_000,
  })
  if (run.exitCode !== 0) throw new Error(`site.ts (${label}) failed (exit ${run.exitCode}):\n${run.tail}`)
  log(
    `site.ts ${label}: ${run.seconds.toFixed(0)} s, changed ${run.totals.changed}` +
      (run.totals.changed && run.totals.changed < 30 ? ` (${run.changed.join(', ')})` : ''),
  )
  return run.totals.changed
}

const dir = mkdtempSync(join(tmpdir(), 'hastack-drills-'))
const inventoryFile = join(dir, 'lab-small.yml')
const source = readFileSync(join(REPO, 'inventory/lab-small.yml'), 'utf8')
writeFileSync(inventoryFile, source.replace('ssh_key: ../.lab/ssh/id_ed25519', `ssh_key: ${REPO}/.lab/ssh/id_ed25519`))
const groups = inventoryGroups(source)
const busy = new Set([...(groups.get('haproxy') ?? []), ...(groups.get('app') ?? [])])
const quiet = [...(groups.get('postgres') ?? [])].find((h) => !busy.has(h) && groups.get('redis')?.has(h))
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase()
const out = join(REPO, `reports/drills-${stamp}`)
const lab = new Lab({ inventory: inventoryFile, name: 'drills', log: (m) => log(`lab: ${m}`) })
const reports: DrillReport[] = []
let switchChanged = 0
let secondRunChanged = -1
let failure: unknown
try {
  await lab.up()
  await converge(inventoryFile, 'default')
  writeFileSync(
    inventoryFile,
    readFileSync(inventoryFile, 'utf8').replace('  vars:\n', '  vars:\n    failover_profile: fast\n'),
  )
  switchChanged = await converge(inventoryFile, 'to-fast')
  secondRunChanged = await converge(inventoryFile, 'fast-again')
  const inventory = await loadInventory(inventoryFile, { roles: allRoles, writeSecrets: false })
  registerSecrets(secretValues(inventory))
  const plan: Omit<DrillOptions, 'out' | 'rate' | 'faultAtS'>[] = [
    { fault: 'kill', target: 'postgres-primary', durationS: 32, repeat, on: quiet },
    { fault: 'kill', target: 'redis-primary', durationS: 15, repeat, on: quiet },
    { fault: 'kill', target: 'lb', durationS: 15, repeat: 1 },
    { fault: 'freeze', target: 'etcd-member', durationS: 15, repeat: 1 },
    { fault: 'stop', target: 'app', durationS: 15, repeat: 1 },
  ]
  /** A drill in this process, on the inventory loaded once. */
  const drillInProcess = async (options: DrillOptions) => {
    const { report, file } = await runDrill({ inventory, lab, options, say: log })
    log(`report ${file}`)
    return report
  }
  /** The last drill the way a user runs it: `npx zx playbooks/drill.ts` with the lab's name and --json. */
  const drillCommand = async (o: DrillOptions): Promise<DrillReport> => {
    const json = join(out, `command-${o.target}-${o.fault}.json`)
    const args = ['-i', inventoryFile, '--lab-name', 'drills', '--fault', o.fault, '--target', o.target]
    const more = ['--duration', String(o.durationS), '--out', out, '--json', json]
    const run = await $({
      cwd: REPO,
      nothrow: true,
      quiet: true,
      timeout: '15m',
    })`npx zx playbooks/drill.ts ${args} ${more}`
    log(`playbooks/drill.ts exit ${run.exitCode}:\n${run.stdout}${run.stderr}`)
    return JSON.parse(readFileSync(json, 'utf8')) as DrillReport
  }
  for (const p of plan) {
    const options: DrillOptions = { ...p, out, rate: 30, faultAtS: 5 }
    log(`drill: ${p.fault} ${p.target} x${p.repeat}`)
    if (!p.on && quiet) {
      // Both primaries on the quiet host, so the load balancer or etcd member broken carries neither.
      const live = liveFleet(inventory, log)
      try {
        await placePrimary(live, 'postgres-primary', quiet, log)
        await placePrimary(live, 'redis-primary', quiet, log)
      } finally {
        await live.close()
      }
    }
    const report = p.target === 'etcd-member' ? await drillCommand(options) : await drillInProcess(options)
    console.log(drillText(report))
    reports.push(report)
  }
} catch (error) {
  failure = error
  log(`stopped: ${error instanceof Error ? error.message : String(error)}`)
} finally {
  await lab.down().catch((e) => log(`lab down failed: ${e}`))
  rmSync(dir, { recursive: true, force: true })
}

const GOALS: Record<string, (r: DrillReport) => string> = {
  'postgres-primary': (r) => {
    const ttl = r.drill.failoverProfile === 'fast' ? 20 : 30
    return `write gap <= ttl + 3 s = ${ttl + 3} s, 0 lost: ${(r.summary.recoverS?.worst ?? Infinity) <= ttl + 3 && r.summary.lost === 0 ? 'met' : 'MISSED'}`
  },
  'redis-primary': (r) => `write gap <= 4 s: ${(r.summary.recoverS?.worst ?? Infinity) <= 4 ? 'met' : 'MISSED'}`,
}
const cell = (s: { median: number; worst: number } | undefined) => (s ? `${s.median} / ${s.worst}` : '-')
console.log(`\nprofile switch default -> fast: changed ${switchChanged}; second run changed ${secondRunChanged}\n`)
console.log(
  '| drill | runs | detect s (median / worst) | write gap s (median / worst) | failed requests (median / worst) | lost / duplicated | goal |',
)
console.log('|---|---|---|---|---|---|---|')
for (const r of reports) {
  const s = r.summary
  const goal = GOALS[r.drill.target]?.(r) ?? '-'
  console.log(
    `| ${r.drill.fault} ${r.drill.target} | ${r.repetitions.length} | ${cell(s.detectS)} | ${cell(s.recoverS)} | ` +
      `${cell(s.failed)} | ${s.lost} / ${s.duplicated} | ${goal} |`,
  )
}
console.log(`\nreports and pictures: ${out}`)
const ok = !failure && secondRunChanged === 0 && reports.length === 4 && reports.every((r) => drillExitCode(r) === 0)
process.exitCode = ok ? 0 : 2
