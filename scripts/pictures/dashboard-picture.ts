/**
 * A dashboard drawn from live data without Grafana (which cannot run in the lab): each time
 * series panel's expressions are asked of Prometheus over the last minutes and drawn as a
 * Vega-Lite line chart, rendered to SVG in Node by Vega; stat panels become tiles with their
 * value (or the series' name, as Grafana's "name" text mode shows the primary's host). The
 * panels are laid out on the dashboard's own 24-column grid in an HTML page that Chromium
 * turns into a PNG.
 */
import { readFileSync } from 'node:fs'
import type { TopLevelSpec } from 'vega-lite'
import { panelExpressions } from '../../monitoring/dashboards/expressions.ts'
import { withPage } from './browser.ts'
import { instantQuery, legendOf, rangeQuery } from './prometheus-api.ts'
import { renderSvg } from './vega-svg.ts'

type Json = Record<string, unknown>

/** Pixels of one grid row and the page width (24 columns). */
const ROW_PX = 34
const PAGE_PX = 1600

export interface Point {
  time: Date
  value: number
  series: string
}

const AXIS_FORMAT: Record<string, string> = { percentunit: '.0%', bytes: '~s', Bps: '~s', reqps: '~s', s: '~s' }

/** A Vega-Lite line chart of the points, sized to fit its grid cell. */
export function lineChartSpec(title: string, points: Point[], unit: string, width: number, height: number) {
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, anchor: 'start', fontSize: 14, color: '#d8d9da' },
    width,
    height,
    background: '#181b1f',
    data: { values: points.map((p) => ({ ...p, time: p.time.toISOString() })) },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
    encoding: {
      x: { field: 'time', type: 'temporal', title: null, axis: { format: '%H:%M', tickCount: 6 } },
      y: {
        field: 'value',
        type: 'quantitative',
        title: unit === 'short' || unit === 'none' ? null : unit,
        axis: { format: AXIS_FORMAT[unit] ?? '~s' },
        // A flat zero line would leave Vega an empty domain (axis labels NaN): always show 0 to 1 at least.
        scale: { domain: { unionWith: [0, 1] } },
      },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 4 } },
    },
    config: {
      axis: { labelColor: '#ccccdc', titleColor: '#ccccdc', gridColor: '#2c3235', domainColor: '#555' },
      legend: { labelColor: '#ccccdc', labelLimit: 240 },
      view: { stroke: null },
      range: { category: { scheme: 'tableau10' } },
    },
  }
  return spec
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function statText(panel: Json, series: { legend: string; value: number }[]): string {
  if (series.length === 0) return 'no data'
  const byName = (panel.options as Json | undefined)?.textMode === 'name'
  return series.map((s) => (byName ? s.legend : String(Number(s.value.toFixed(2))))).join(', ')
}

function statColor(panel: Json, value: number): string {
  const steps = (((panel.fieldConfig as Json).defaults as Json).thresholds as Json).steps as { value: number | null }[]
  const red = steps.find((s) => s.value !== null)?.value
  return red !== undefined && red !== null && value >= red ? '#c4162a' : '#37872d'
}

/** One panel as an HTML cell of the grid (a stat tile or a chart's SVG). */
async function panelCell(prometheus: string, dashboard: Json, panel: Json, minutes: number): Promise<string> {
  const grid = panel.gridPos as { x: number; y: number; w: number; h: number }
  const place = `grid-column: ${grid.x + 1} / span ${grid.w}; grid-row: ${grid.y + 1} / span ${grid.h};`
  const exprs = panelExpressions({ ...dashboard, panels: [panel] })
  const title = escapeHtml(String(panel.title))
  if (panel.type === 'stat') {
    const series = (await Promise.all(exprs.map((e) => instantQuery(prometheus, e.expr)))).flatMap((result, i) =>
      result.map((s) => ({ legend: legendOf(exprs[i]!.legend, s.metric), value: Number(s.values[0]![1]) })),
    )
    const color = series.length ? statColor(panel, Math.max(...series.map((s) => s.value))) : '#3d4148'
    const text = escapeHtml(statText(panel, series))
    return `<div class="cell stat" style="${place} background:${color}"><h2>${title}</h2><p>${text}</p></div>`
  }
  const points: Point[] = []
  for (const e of exprs)
    for (const s of await rangeQuery(prometheus, e.expr, minutes))
      for (const [t, v] of s.values)
        points.push({ time: new Date(t * 1000), value: Number(v), series: legendOf(e.legend, s.metric) })
  const unit = String(((panel.fieldConfig as Json).defaults as Json).unit ?? 'short')
  const width = Math.round((grid.w / 24) * PAGE_PX) - 60
  const height = grid.h * ROW_PX - 110
  const svg = await renderSvg(lineChartSpec(String(panel.title), points, unit, width, height))
  return `<div class="cell" style="${place}">${svg}</div>`
}

/** The whole dashboard as an HTML page of its panels (row headers included). */
export async function dashboardHtml(prometheus: string, dashboardFile: string, minutes: number): Promise<string> {
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Json
  const cells: string[] = []
  for (const panel of dashboard.panels as Json[]) {
    if (panel.type === 'row') {
      const y = (panel.gridPos as { y: number }).y + 1
      const style = `grid-column: 1 / span 24; grid-row: ${y};`
      cells.push(`<div class="row" style="${style}">${escapeHtml(String(panel.title))}</div>`)
    } else cells.push(await panelCell(prometheus, dashboard, panel, minutes))
  }
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, ' UTC')
  const title = `${escapeHtml(String(dashboard.title))} <small>last ${minutes} min, lab data of ${stamp}</small>`
  return `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin: 0; padding: 16px; background: #111217; color: #d8d9da; font: 14px sans-serif; width: ${PAGE_PX}px; }
    h1 { font-size: 20px; margin: 0 0 12px; } small { color: #8e8e8e; font-weight: normal; font-size: 13px; }
    .grid { display: grid; grid-template-columns: repeat(24, 1fr); grid-auto-rows: ${ROW_PX}px; gap: 6px; }
    .cell { background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; padding: 6px; overflow: hidden; }
    .row { font-weight: bold; font-size: 15px; align-self: end; }
    .stat h2 { font-size: 14px; margin: 0; font-weight: normal; } .stat p { font-size: 32px; margin: 8px 0 0; }
  </style></head><body><h1>${title}</h1><div class="grid">${cells.join('\n')}</div></body></html>`
}

/** Render the dashboard's panels from the lab's data to a PNG file. */
export async function dashboardPicture(prometheus: string, dashboardFile: string, out: string, minutes = 30) {
  const html = await dashboardHtml(prometheus, dashboardFile, minutes)
  await withPage({ width: PAGE_PX + 32, height: 900 }, async (page) => {
    await page.setContent(html)
    await page.screenshot({ path: out, fullPage: true })
  })
}
