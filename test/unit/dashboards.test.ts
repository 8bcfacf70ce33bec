/**
 * Dashboards as code: the committed dashboards/*.json are what the builders in
 * monitoring/dashboards produce, every panel queries something, and every PromQL
 * expression parses (each is wrapped as a recording rule and given to promtool check rules).
 */
import t from 'tap'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { stringify } from 'yaml'
import { tree } from '../fixtures/tree.ts'
import { buildDashboard } from '../../monitoring/dashboards/builder.ts'
import { dashboardFile, dashboards, DASHBOARDS_DIR, staleDashboards } from '../../monitoring/dashboards/index.ts'
import { panelExpressions, substituteVariables, templateValues } from '../../monitoring/dashboards/expressions.ts'

const built = dashboards.map((spec) => ({ spec, json: buildDashboard(spec) }))

t.test('the committed JSON is what the code builds (npx tsx monitoring/dashboards/index.ts --write)', async (t) => {
  t.same(staleDashboards(), [])
  const committed = readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
  t.same(committed, dashboards.map(dashboardFile).sort(), 'no JSON without its code')
})

t.test('the HA overview comes first and every dashboard has a unique uid', async (t) => {
  t.equal(dashboards[0]!.uid, 'hastack-ha-overview')
  const uids = dashboards.map((d) => d.uid)
  t.equal(new Set(uids).size, uids.length)
})

t.test('every panel has a query and panels never overlap', async (t) => {
  for (const { spec, json } of built) {
    const panels = json.panels as {
      type: string
      title: string
      targets?: unknown[]
      gridPos: Record<string, number>
    }[]
    for (const p of panels.filter((p) => p.type !== 'row'))
      t.ok(p.targets?.length, `${spec.uid}: ${p.title} queries something`)
    const cells = new Set<string>()
    for (const { gridPos: g, title } of panels)
      for (let x = g.x!; x < g.x! + g.w!; x++)
        for (let y = g.y!; y < g.y! + g.h!; y++) {
          t.notOk(cells.has(`${x},${y}`), `${spec.uid}: ${title} overlaps at ${x},${y}`)
          cells.add(`${x},${y}`)
        }
  }
})

t.test('promtool parses every PromQL expression of every dashboard', async (t) => {
  const queries = built.flatMap(({ spec, json }) => panelExpressions(json).map((q) => ({ ...q, uid: spec.uid })))
  t.ok(queries.length >= 15, `${queries.length} expressions`)
  const rules = queries.map((q, i) => ({ record: `dashboard:expression_${i}`, expr: q.expr }))
  const dir = await tree({})
  const file = path.join(dir, 'dashboard-expressions.yml')
  writeFileSync(file, stringify({ groups: [{ name: 'dashboard-expressions', rules }] }))
  const run = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 })
  t.notOk(run.error, "promtool runs (Debian's prometheus package)")
  t.equal(run.status, 0, `${run.stdout}${run.stderr}`)
})

t.test('dashboard variables are substituted as Grafana would, and an unknown one is refused', async (t) => {
  const values = templateValues({
    templating: {
      list: [
        { name: 'host', current: { value: ['node1', 'node2'] } },
        { name: 'job', current: { value: '$__all' } },
      ],
    },
  })
  t.same(values, { host: 'node1|node2', job: '.+' })
  t.equal(
    substituteVariables('rate(up{host=~"$host", job=~"${job}"}[$__rate_interval])', values),
    'rate(up{host=~"node1|node2", job=~".+"}[1m])',
  )
  t.throws(() => substituteVariables('up{host="$nothost"}', values), /unknown dashboard variable \$nothost/)
})

t.test('every target of every committed dashboard is extracted, rows included', async (t) => {
  for (const spec of dashboards) {
    const json = JSON.parse(readFileSync(DASHBOARDS_DIR + dashboardFile(spec), 'utf8'))
    const extracted = panelExpressions(json)
    const targets = spec.rows.flatMap((r) => r.panels.flatMap((p) => p.queries))
    t.same(
      extracted.map((e) => e.expr),
      targets.map((q) => q.expr),
      `${spec.uid}: ${targets.length} expressions`,
    )
  }
})
