/**
 * The two Prometheus HTTP API calls the README pictures make: an instant query and a range query,
 * each bounded to 10 s. Series come back with their labels and [unix seconds, "value"] samples.
 */

export interface Series {
  metric: Record<string, string>
  values: [number, string][]
}

async function get<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  const body = (await response.json()) as { status: string; data: T; error?: string }
  if (body.status !== 'success') throw new Error(`Prometheus: ${body.error ?? response.status} (${url})`)
  return body.data
}

/** The value of each series now, as a one-sample series. */
export async function instantQuery(prometheus: string, expr: string): Promise<Series[]> {
  const data = await get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
    `${prometheus}/api/v1/query?${new URLSearchParams({ query: expr })}`,
  )
  return data.result.map((r) => ({ metric: r.metric, values: [r.value] }))
}

/** The series over the last `minutes`, one sample per `stepSeconds`. */
export async function rangeQuery(prometheus: string, expr: string, minutes: number, stepSeconds = 15) {
  const end = Math.floor(Date.now() / 1000)
  const params = { query: expr, start: String(end - minutes * 60), end: String(end), step: String(stepSeconds) }
  const data = await get<{ result: Series[] }>(`${prometheus}/api/v1/query_range?${new URLSearchParams(params)}`)
  return data.result
}

/** A series' legend as Grafana writes it: `{{label}}` replaced, `__auto` (or none) as the label set. */
export function legendOf(format: string, metric: Record<string, string>): string {
  if (format && format !== '__auto') return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l: string) => metric[l] ?? '')
  const labels = Object.entries(metric).filter(([k]) => k !== '__name__')
  return labels.length ? labels.map(([k, v]) => `${k}=${v}`).join(', ') : (metric.__name__ ?? 'value')
}
