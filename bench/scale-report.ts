/**
 * How the scale bench (`npm run bench -- scale`) shows what it measured: the Markdown table for the
 * README (hosts, boot, memory per host, no-op seconds, seconds per host), issue 15's check (the
 * 50-host no-op run takes less than 5× the 10-host one) and the curve as a Vega-Lite chart.
 */
import type { TopLevelSpec } from 'vega-lite'

/** One measured host count with one `--forks` setting. */
export interface ScaleRow {
  hosts: number
  /** `--forks` of the no-op runs; undefined: the engine's default. */
  forks?: number
  /** `lab up` of exactly this many hosts (undefined when not measured). */
  bootSeconds?: number
  /** The hosts' memory cgroups after boot (page cache included), summed and divided by the count. */
  memoryMiB?: number
  /** Median wall time of the whole no-op command (Node start, inventory, SSH logins, tasks, recap). */
  noopSeconds: number
  /** Median of the run's own duration from its --json report (connections, facts, tasks). */
  runSeconds: number
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const forksLabel = (forks?: number) => (forks === undefined ? 'default' : String(forks))
const fixed = (value: number | undefined, digits: number) => (value === undefined ? '–' : value.toFixed(digits))

/** The README table, one line per row in the given order. */
export function scaleTable(rows: ScaleRow[]): string {
  return [
    '| hosts | forks | boot (s) | memory per host after boot (MiB) | no-op (s) | no-op per host (s) | run alone (s) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.hosts} | ${forksLabel(r.forks)} | ${fixed(r.bootSeconds, 1)} | ${fixed(r.memoryMiB, 1)} ` +
        `| ${r.noopSeconds.toFixed(2)} | ${(r.noopSeconds / r.hosts).toFixed(3)} | ${r.runSeconds.toFixed(2)} |`,
    ),
  ].join('\n')
}

/** Issue 15's Done-when for one `--forks` setting: the 50-host no-op ÷ the 10-host one, when both were measured. */
export function curveRatio(rows: ScaleRow[], forks?: number): { ratio: number; met: boolean } | undefined {
  const at = (hosts: number) => rows.find((r) => r.hosts === hosts && r.forks === forks)
  const ten = at(10)
  const fifty = at(50)
  if (!ten || !fifty) return undefined
  const ratio = fifty.noopSeconds / ten.noopSeconds
  return { ratio, met: ratio < 5 }
}

/**
 * The curve: no-op seconds against hosts and seconds per host, each for the whole command and for the run
 * alone, one line per `--forks` setting.
 */
export function scaleCurveSpec(rows: ScaleRow[], subtitle: string): TopLevelSpec {
  const values = rows.flatMap((r) => {
    const forks = `forks ${forksLabel(r.forks)}`
    return [
      { hosts: r.hosts, measure: 'no-op command (s)', series: `${forks}, whole command`, value: r.noopSeconds },
      { hosts: r.hosts, measure: 'no-op command (s)', series: `${forks}, run alone`, value: r.runSeconds },
      {
        hosts: r.hosts,
        measure: 'seconds per host',
        series: `${forks}, whole command`,
        value: r.noopSeconds / r.hosts,
      },
      { hosts: r.hosts, measure: 'seconds per host', series: `${forks}, run alone`, value: r.runSeconds / r.hosts },
    ]
  })
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'No-op run of common + node_exporter on N lab hosts', subtitle },
    background: 'white',
    data: { values },
    facet: { column: { field: 'measure', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 320,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'hosts', type: 'quantitative', title: 'hosts', axis: { format: 'd' }, scale: { domainMin: 0 } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { domainMin: 0 } },
        color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 320 } },
      },
    },
  }
}
