/**
 * The PromQL a dashboard's panels send, as a client would send it: every target's expression with
 * the dashboard's template variables and Grafana's built-in interval variables substituted, read
 * from the dashboard JSON (dashboards/*.json). The lab check that every panel shows data and the
 * README pictures query Prometheus with these.
 */

type Json = Record<string, unknown>

export interface PanelExpression {
  panel: string
  /** The panel type (stat, timeseries, table). */
  kind: string
  expr: string
  legend: string
  /** Whether the panel asks for an instant value rather than a range. */
  instant: boolean
}

/** Grafana's built-in variables, as they resolve for a 15 s scrape interval over the last hour. */
export const BUILTIN_VARIABLES: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
  __range_s: '3600',
}

/**
 * The value of each template variable of a dashboard: its current value, or for a variable
 * without one every value it can take (a regular expression matching any).
 */
export function templateValues(dashboard: Json): Record<string, string> {
  const list = ((dashboard.templating as Json | undefined)?.list ?? []) as Json[]
  const values: Record<string, string> = {}
  for (const variable of list) {
    const current = (variable.current as Json | undefined)?.value
    const value = Array.isArray(current) ? current.join('|') : current
    values[String(variable.name)] = value === undefined || value === '$__all' ? '.+' : String(value)
  }
  return values
}

/** The expression with every `$name`, `${name}` and `[[name]]` replaced; an unknown variable throws. */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  const all = { ...BUILTIN_VARIABLES, ...values }
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a, b, c) => {
    const name = String(a ?? b ?? c)
    if (!(name in all)) throw new Error(`unknown dashboard variable ${whole} in: ${expr}`)
    return all[name]!
  })
}

/** Every target of every panel of a dashboard JSON, its variables substituted. */
export function panelExpressions(dashboard: Json): PanelExpression[] {
  const values = templateValues(dashboard)
  const panels = ((dashboard.panels ?? []) as Json[]).flatMap((p) =>
    p.type === 'row' ? [...((p.panels ?? []) as Json[])] : [p],
  )
  return panels.flatMap((panel) =>
    ((panel.targets ?? []) as Json[]).map((target) => ({
      panel: String(panel.title),
      kind: String(panel.type),
      expr: substituteVariables(String(target.expr), values),
      legend: String(target.legendFormat ?? ''),
      instant: target.instant === true,
    })),
  )
}
