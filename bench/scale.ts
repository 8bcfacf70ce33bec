/**
 * Issue 15's scale curve (`npm run bench -- scale [--sizes 1,10,30,50] [--rounds 3] [--forks 10,50]`;
 * needs root and the lab lock, not in CI): for every size but the largest, `lab up` of that many light
 * hosts alone (boot seconds, memory per host after boot) and `lab down`; then one lab of the largest
 * size, converged once with bench/scale-playbook.ts (common + node_exporter), and the no-op run of
 * each size timed `--rounds` times (`--limit first<N>`, `changed: 0` asserted, sizes interleaved so
 * that the machine's load drifts over all of them alike). Prints the Markdown table and issue 15's
 * check, and draws the curve to docs/pictures/scale-curve.svg. Every lab it boots is removed again.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Lab } from '../lab/lab.ts'
import { runPlaybook, type PlaybookRun } from '../test/stack/playbook-run.ts'
import { renderSvg } from '../scripts/pictures/vega-svg.ts'
import { scaleInventory, sizeGroup } from './scale-inventory.ts'
import { curveRatio, median, scaleCurveSpec, scaleTable, type ScaleRow } from './scale-report.ts'

const REPO = resolve(import.meta.dirname, '..')
const PLAYBOOK = 'bench/scale-playbook.ts'
/** The lab instance every boot of the bench uses, one at a time. */
const LAB_NAME = 'scale'
export const CURVE_PICTURE = join(REPO, 'docs/pictures/scale-curve.svg')
const BOOT_TIMEOUT_MS = 300_000
const CONVERGE_TIMEOUT_MS = 1_800_000
const NOOP_TIMEOUT_MS = 600_000

export interface ScaleBenchOptions {
  /** Distinct host counts, ascending. */
  sizes: number[]
  /** No-op runs per size and forks setting (the median is reported). */
  rounds: number
  /** `--forks` settings of the no-op runs; undefined: the engine's default. */
  forks: (number | undefined)[]
}

const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)
const load = () => loadavg()[0]!.toFixed(1)

interface Boot {
  bootSeconds: number
  /** Per host, after boot: the memory cgroups' whole usage and their anonymous part. */
  memoryMiB: number
  anonymousMiB: number
}

/** Memory per host of a running lab: the hosts' memory cgroups summed, divided by their count. */
function memoryPerHost(lab: Lab): { memoryMiB: number; anonymousMiB: number } {
  const hosts = lab.status()
  const sum = (pick: (h: (typeof hosts)[number]) => number | undefined) =>
    hosts.reduce((total, h) => total + (pick(h) ?? NaN), 0)
  return {
    memoryMiB: sum((h) => h.memoryUsageMiB) / hosts.length,
    anonymousMiB: sum((h) => h.memoryMiB) / hosts.length,
  }
}

async function boot(lab: Lab): Promise<Boot> {
  const up = await lab.up({ bootTimeoutMs: BOOT_TIMEOUT_MS })
  const notRunning = Object.entries(up.hosts).filter(([, state]) => state !== 'running')
  if (notRunning.length) log(`not "running" after boot: ${notRunning.map(([h, s]) => `${h} ${s}`).join(', ')}`)
  return { bootSeconds: up.bootMs / 1000, ...memoryPerHost(lab) }
}

async function converge(inventory: string, label: string, extra: string[], timeoutMs: number): Promise<PlaybookRun> {
  const run = await runPlaybook({
    cwd: REPO,
    playbook: PLAYBOOK,
    inventory,
    json: join(REPO, `reports/bench-scale-${label}.json`),
    extra,
    timeoutMs,
  })
  if (run.exitCode !== 0) throw new Error(`${PLAYBOOK} ${extra.join(' ')} failed (exit ${run.exitCode}):\n${run.tail}`)
  return run
}

/** The bench, start to end; returns the rows it measured (also printed). */
export async function scaleBench(options: ScaleBenchOptions): Promise<ScaleRow[]> {
  const { sizes, rounds, forks } = options
  const largest = sizes[sizes.length - 1]!
  const key = join(REPO, '.lab/ssh/id_ed25519')
  const dir = mkdtempSync(join(tmpdir(), 'hastack-bench-scale-'))
  const boots = new Map<number, Boot>()
  const started = new Date()
  const loadAtStart = load()
  let lab: Lab | undefined
  try {
    for (const size of sizes.slice(0, -1)) {
      const inventory = join(dir, `scale-${size}.yml`)
      writeFileSync(inventory, scaleInventory([size], key))
      lab = new Lab({ inventory, name: LAB_NAME, log })
      log(`${size} host(s): lab up (load ${load()})`)
      boots.set(size, await boot(lab))
      await lab.down()
      lab = undefined
    }
    const inventory = join(dir, 'scale.yml')
    writeFileSync(inventory, scaleInventory(sizes, key))
    lab = new Lab({ inventory, name: LAB_NAME, log })
    log(`${largest} hosts: lab up (load ${load()})`)
    boots.set(largest, await boot(lab))
    log(`converging ${largest} hosts (load ${load()})`)
    const first = await converge(inventory, 'converge', [], CONVERGE_TIMEOUT_MS)
    log(`converged in ${first.seconds.toFixed(1)} s: ${JSON.stringify(first.totals)}`)
    const converged = memoryPerHost(lab)
    const times = new Map<string, { noop: number[]; run: number[] }>()
    for (let round = 1; round <= rounds; round++) {
      for (const f of forks) {
        for (const size of sizes) {
          const extra = ['--limit', sizeGroup(size), ...(f === undefined ? [] : ['--forks', String(f)])]
          const run = await converge(inventory, `noop-${size}`, extra, NOOP_TIMEOUT_MS)
          if (run.totals.changed !== 0) throw new Error(`the no-op run on ${size} hosts changed: ${run.changed}`)
          const id = `${size}/${f}`
          const entry = times.get(id) ?? { noop: [], run: [] }
          entry.noop.push(run.seconds)
          entry.run.push(Number((run.report as { durationMs?: number }).durationMs) / 1000)
          times.set(id, entry)
          log(`round ${round}, ${size} hosts, forks ${f ?? 'default'}: ${run.seconds.toFixed(2)} s (load ${load()})`)
        }
      }
    }
    const rows: ScaleRow[] = forks.flatMap((f) =>
      sizes.map((size) => {
        const t = times.get(`${size}/${f}`)!
        const b = boots.get(size)
        return {
          hosts: size,
          forks: f,
          bootSeconds: b?.bootSeconds,
          memoryMiB: b?.memoryMiB,
          noopSeconds: median(t.noop),
          runSeconds: median(t.run),
        }
      }),
    )
    const stamp = started.toISOString().slice(0, 16).replace('T', ' ')
    const machine = `2 cores shared with other work; load ${loadAtStart} at the start, ${load()} at the end`
    console.log(`Measured ${stamp} UTC (${machine}); median of ${rounds} no-op run(s).\n`)
    console.log(scaleTable(rows))
    const after = boots.get(largest)!
    console.log(
      `\nMemory per host, ${largest} hosts: ${after.memoryMiB.toFixed(1)} MiB after boot ` +
        `(${after.anonymousMiB.toFixed(1)} MiB anonymous), ${converged.memoryMiB.toFixed(1)} MiB after the converge ` +
        `(${converged.anonymousMiB.toFixed(1)} MiB anonymous; node_exporter and dbus running).`,
    )
    console.log(`First converge of ${largest} hosts: ${first.seconds.toFixed(1)} s.`)
    const verdicts = forks.map((f) => [f, curveRatio(rows, f)] as const).filter(([, r]) => r)
    for (const [f, r] of verdicts)
      console.log(
        `50 hosts ÷ 10 hosts, forks ${f ?? 'default'}: ${r!.ratio.toFixed(2)}× (issue 15: under 5×: ${r!.met ? 'yes' : 'no'})`,
      )
    const subtitle = `${stamp} UTC, ${machine}`
    writeFileSync(CURVE_PICTURE, await renderSvg(scaleCurveSpec(rows, subtitle)))
    log(`wrote ${CURVE_PICTURE}`)
    return rows
  } finally {
    await lab?.down().catch((e) => log(`lab down failed: ${e}`))
    rmSync(dir, { recursive: true, force: true })
  }
}
