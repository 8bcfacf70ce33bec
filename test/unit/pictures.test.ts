/**
 * The README pictures' pure parts: legends written as Grafana writes them, and a panel's points
 * drawn by Vega-Lite into an SVG in Node (no browser).
 */
import t from 'tap'
import { legendOf } from '../../scripts/pictures/prometheus-api.ts'
import { lineChartSpec, type Point } from '../../scripts/pictures/dashboard-picture.ts'
import { renderSvg } from '../../scripts/pictures/vega-svg.ts'

t.test('a legend fills in the labels of its format, or lists the labels for __auto', async (t) => {
  const metric = { __name__: 'up', job: 'redis', host: 'node2' }
  t.equal(legendOf('{{job}} on {{ host }}', metric), 'redis on node2')
  t.equal(legendOf('__auto', metric), 'job=redis, host=node2')
  t.equal(legendOf('', { __name__: 'up' }), 'up')
})

t.test('a time series panel becomes an SVG line chart with one line per series', async (t) => {
  const start = Date.parse('2026-11-30T05:00:00Z')
  const points: Point[] = ['node1', 'node2'].flatMap((series, s) =>
    Array.from({ length: 20 }, (_, i) => ({ time: new Date(start + i * 15_000), value: i * (s + 1), series })),
  )
  const svg = await renderSvg(lineChartSpec('Replica lag', points, 'bytes', 600, 200))
  t.match(svg, /^<svg/)
  t.match(svg, /Replica lag/)
  t.equal((svg.match(/class="mark-line/g) ?? []).length, 2, 'one line per series')
  t.ok(svg.includes('node1') && svg.includes('node2'), 'both series in the legend')
})
