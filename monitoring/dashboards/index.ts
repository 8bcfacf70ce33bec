/**
 * Every dashboard of hastack and where its JSON goes (dashboards/<uid without prefix>.json).
 * `npx tsx monitoring/dashboards/index.ts --write` regenerates the JSON; the test in
 * test/unit/dashboards.test.ts fails when the committed JSON differs from the code.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { buildDashboard, type DashboardSpec } from './builder.ts'
import { haOverview } from './ha-overview.ts'
import { hosts } from './hosts.ts'
import { postgres } from './postgres.ts'
import { redis } from './redis.ts'
import { etcd } from './etcd.ts'
import { haproxy } from './haproxy.ts'

export const DASHBOARDS_DIR = fileURLToPath(new URL('../../dashboards/', import.meta.url))

export const dashboards: DashboardSpec[] = [haOverview, postgres, redis, etcd, haproxy, hosts]

/** File name of a dashboard's JSON in dashboards/. */
export function dashboardFile(spec: DashboardSpec): string {
  return `${spec.uid.replace(/^hastack-/, '')}.json`
}

/** The JSON text of a dashboard, as committed. */
export function dashboardJson(spec: DashboardSpec): string {
  return `${JSON.stringify(buildDashboard(spec), null, 2)}\n`
}

/** Dashboards whose committed JSON differs from what the code builds. */
export function staleDashboards(): string[] {
  return dashboards
    .filter((spec) => {
      try {
        return readFileSync(DASHBOARDS_DIR + dashboardFile(spec), 'utf8') !== dashboardJson(spec)
      } catch {
        return true
      }
    })
    .map(dashboardFile)
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  for (const spec of dashboards) writeFileSync(DASHBOARDS_DIR + dashboardFile(spec), dashboardJson(spec))
  console.log(`wrote ${dashboards.map(dashboardFile).join(', ')} in dashboards/`)
}
