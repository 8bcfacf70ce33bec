/**
 * Every panel of every dashboard shows data: each PromQL expression of dashboards/*.json (every
 * target of every panel, its variables substituted as Grafana would) returns a non-empty result
 * from the lab's Prometheus. A rate over 5 minutes needs two scrapes, so each expression gets a
 * bounded wait before it counts as empty.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { panelExpressions } from '../../../monitoring/dashboards/expressions.ts'
import { prometheusGet } from '../prometheus.ts'
import { until } from '../until.ts'
import type { SiteCheck } from './context.ts'

interface QueryResult {
  resultType: string
  result: unknown[]
}

export const dashboards: SiteCheck = {
  name: 'dashboards: every PromQL expression of every panel returns data from the lab',
  destructive: false,
  async run(t, ctx) {
    const [monitor] = ctx.hosts('monitoring')
    const prometheus = `http://${ctx.lab.host(monitor).address}:9090`
    const dir = join(ctx.repo, 'dashboards')
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
    t.ok(files.length > 0, `${files.length} dashboards`)
    const series = async (expr: string) =>
      (await prometheusGet<QueryResult>(prometheus, `query?${new URLSearchParams({ query: expr })}`)).result.length
    let count = 0
    const started = Date.now()
    for (const file of files.sort()) {
      for (const { panel, expr } of panelExpressions(JSON.parse(readFileSync(join(dir, file), 'utf8')))) {
        count++
        // The whole check is bounded: the waits share 3 minutes, then each expression is asked once.
        const left = Math.max(1000, 180_000 - (Date.now() - started))
        const found = await until(`${file} "${panel}" returns data`, left, () => series(expr), 2000).catch(() => 0)
        t.ok(found > 0, `${file}: "${panel}" returns ${found} series: ${expr.replace(/\s+/g, ' ')}`)
      }
    }
    t.comment(
      `${count} expressions in ${files.length} dashboards asked in ${((Date.now() - started) / 1000).toFixed(0)} s`,
    )
  },
}
