/**
 * A drill repetition's picture, drawn by Vega-Lite (rendered to SVG by scripts/pictures/vega-svg.ts):
 * on top every request's latency over time (votes and PostgreSQL probe writes, coloured by outcome, a
 * failure drawn at the time it took to fail); below, the outcomes per second, stacked. The fault, the
 * moment the stack noticed it, the end of the write gap and the lab's restore are vertical rules, and
 * the write gap is shaded.
 */
import type { TopLevelSpec } from 'vega-lite'
import type { Gap, Sample } from './timeline.ts'

export interface ChartMarks {
  title: string
  faultMs: number
  detectedMs?: number
  gap: Gap
  restoredMs?: number
}

const OUTCOMES = ['vote acknowledged', 'vote failed', 'PostgreSQL write acknowledged', 'PostgreSQL write failed']
const COLOURS = ['#4c78a8', '#e45756', '#54a24b', '#b279a2']

function outcomeOf(s: Sample): string {
  return `${s.stream === 'vote' ? 'vote' : 'PostgreSQL write'} ${s.ok ? 'acknowledged' : 'failed'}`
}

/** The Vega-Lite spec of a repetition's picture. */
export function drillChartSpec(samples: Sample[], marks: ChartMarks, width = 900): TopLevelSpec {
  const points = samples.map((s) => ({
    t: Math.round(s.startMs) / 1000,
    second: Math.floor(s.startMs / 1000),
    secondEnd: Math.floor(s.startMs / 1000) + 1,
    latency: Math.max(0.5, Math.round((s.endMs - s.startMs) * 10) / 10),
    outcome: outcomeOf(s),
    reason: s.reason ?? '',
  }))
  const marked = [
    { t: marks.faultMs / 1000, label: 'fault', colour: '#d62728' },
    ...(marks.detectedMs === undefined ? [] : [{ t: marks.detectedMs / 1000, label: 'detected', colour: '#ff7f0e' }]),
    ...(marks.gap.recovered ? [{ t: marks.gap.toMs / 1000, label: 'writes again', colour: '#2ca02c' }] : []),
    ...(marks.restoredMs === undefined
      ? []
      : [{ t: marks.restoredMs / 1000, label: 'lab restored', colour: '#7f7f7f' }]),
  ]
  // Labels alternate between two heights so that marks close together stay readable.
  const events = marked.map((e, i) => ({ ...e, y: 8 + 14 * (i % 2) }))
  const x = { field: 't', type: 'quantitative' as const, title: 'seconds after the first vote' }
  const colour = {
    field: 'outcome',
    type: 'nominal' as const,
    title: null,
    scale: { domain: OUTCOMES, range: COLOURS },
    legend: { orient: 'bottom' as const, columns: 4, labelLimit: 300 },
  }
  const gapBand = {
    data: { values: [{ from: marks.gap.fromMs / 1000, to: marks.gap.toMs / 1000 }] },
    mark: { type: 'rect' as const, color: '#d62728', opacity: 0.08 },
    encoding: { x: { field: 'from', type: 'quantitative' as const }, x2: { field: 'to' } },
  }
  const rules = {
    data: { values: events },
    layer: [
      {
        mark: { type: 'rule' as const, strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: {
          x: { field: 't', type: 'quantitative' as const },
          color: { field: 'colour', type: 'nominal' as const, scale: null },
        },
      },
      {
        mark: { type: 'text' as const, align: 'left' as const, dx: 3, dy: -4, fontSize: 11 },
        encoding: {
          x: { field: 't', type: 'quantitative' as const },
          y: { field: 'y', type: 'quantitative' as const, scale: null },
          text: { field: 'label' },
          color: { field: 'colour', type: 'nominal' as const, scale: null },
        },
      },
    ],
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: marks.title, anchor: 'start', fontSize: 13 },
    background: 'white',
    vconcat: [
      {
        width,
        height: 260,
        layer: [
          gapBand,
          {
            data: { values: points },
            mark: { type: 'point', filled: true, size: 14, opacity: 0.7 },
            encoding: {
              x,
              y: { field: 'latency', type: 'quantitative', title: 'latency (ms, log)', scale: { type: 'log' } },
              color: colour,
              tooltip: [{ field: 'outcome' }, { field: 'reason' }, { field: 'latency' }],
            },
          },
          rules,
        ],
      },
      {
        width,
        height: 120,
        layer: [
          gapBand,
          {
            data: { values: points },
            mark: { type: 'bar', binSpacing: 0 },
            encoding: {
              x: {
                field: 'second',
                type: 'quantitative',
                bin: { binned: true, step: 1 },
                title: 'seconds after the first vote',
              },
              x2: { field: 'secondEnd' },
              y: { aggregate: 'count', type: 'quantitative', title: 'requests per second' },
              color: colour,
            },
          },
          rules,
        ],
      },
    ],
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec
}
