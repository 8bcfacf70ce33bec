/**
 * Typed builders for Grafana dashboards (schemaVersion 39 JSON model): stat, time series
 * and table panels over PromQL queries, laid out left to right on Grafana's 24-column grid.
 * The JSON in dashboards/ is generated from these (scripts/dashboards.ts); the code is the source.
 */

/** The Prometheus datasource every panel queries (provisioned with this uid). */
export const DATASOURCE = { type: 'prometheus', uid: 'hastack-prometheus' } as const

export interface Query {
  expr: string
  /** Legend of each series, e.g. "{{host}}". */
  legend?: string
  /** An instant query (stat and table panels) instead of a range. */
  instant?: boolean
}

export type Unit = 'short' | 'bytes' | 'percentunit' | 's' | 'none' | 'reqps' | 'Bps'

interface PanelCommon {
  title: string
  description?: string
  queries: Query[]
  unit?: Unit
  /** Width in grid columns (24 is the full width); height in grid rows. */
  width?: number
  height?: number
}

export interface StatPanel extends PanelCommon {
  kind: 'stat'
  /** Show the series' legend (for example the primary's host name) instead of its value. */
  showName?: boolean
  /** Value at or above which the stat turns red (green below). */
  redFrom?: number
}

export interface TimeseriesPanel extends PanelCommon {
  kind: 'timeseries'
  stack?: boolean
}

export interface TablePanel extends PanelCommon {
  kind: 'table'
}

export type Panel = StatPanel | TimeseriesPanel | TablePanel

export interface Row {
  title: string
  panels: Panel[]
}

export interface DashboardSpec {
  uid: string
  title: string
  description: string
  tags: string[]
  rows: Row[]
  /** Time range shown when the dashboard opens (default the last hour). */
  from?: string
}

type Json = Record<string, unknown>

function target(query: Query, index: number): Json {
  return {
    datasource: DATASOURCE,
    refId: String.fromCharCode(65 + index),
    expr: query.expr,
    legendFormat: query.legend ?? '__auto',
    range: !query.instant,
    instant: Boolean(query.instant),
  }
}

function thresholds(redFrom?: number): Json {
  const steps: Json[] = [{ color: 'green', value: null }]
  if (redFrom !== undefined) steps.push({ color: 'red', value: redFrom })
  return { mode: 'absolute', steps }
}

function panelOptions(panel: Panel): Json {
  switch (panel.kind) {
    case 'stat':
      return {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        textMode: panel.showName ? 'name' : 'auto',
        colorMode: 'background',
        graphMode: 'none',
      }
    case 'timeseries':
      return {
        legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
        tooltip: { mode: 'multi' },
      }
    case 'table':
      return { showHeader: true }
  }
}

function fieldDefaults(panel: Panel): Json {
  const defaults: Json = {
    unit: panel.unit ?? 'short',
    thresholds: thresholds(panel.kind === 'stat' ? panel.redFrom : undefined),
  }
  if (panel.kind === 'timeseries')
    defaults.custom = { stacking: { mode: panel.stack ? 'normal' : 'none' }, fillOpacity: 10 }
  return defaults
}

/** The dashboard JSON: rows of panels, each panel placed after the previous one, wrapping at 24 columns. */
export function buildDashboard(spec: DashboardSpec): Json {
  const panels: Json[] = []
  let id = 1
  let y = 0
  for (const row of spec.rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    })
    y += 1
    let x = 0
    let rowHeight = 0
    for (const panel of row.panels) {
      const w = panel.width ?? 12
      const h = panel.height ?? (panel.kind === 'stat' ? 4 : 8)
      if (x + w > 24) {
        x = 0
        y += rowHeight
        rowHeight = 0
      }
      panels.push({
        id: id++,
        type: panel.kind,
        title: panel.title,
        ...(panel.description ? { description: panel.description } : {}),
        datasource: DATASOURCE,
        gridPos: { h, w, x, y },
        targets: panel.queries.map(target),
        fieldConfig: { defaults: fieldDefaults(panel), overrides: [] },
        options: panelOptions(panel),
      })
      x += w
      rowHeight = Math.max(rowHeight, h)
    }
    y += rowHeight
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: spec.tags,
    editable: false,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: spec.from ?? 'now-1h', to: 'now' },
    timezone: 'utc',
    templating: { list: [] },
    annotations: { list: [] },
    panels,
  }
}
