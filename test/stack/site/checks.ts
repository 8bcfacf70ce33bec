/**
 * The site suite's checks, in the order they run against the one converged lab: every
 * non-destructive check first, then the ones that break and restore hosts. A new check is a module
 * in this directory and one line here.
 */
import type { SiteCheck } from './context.ts'
import { alerting } from './alerting.ts'
import { backup } from './backup.ts'
import { app } from './app.ts'
import { appBrowser } from './app-browser.ts'
import { appLoad } from './app-load.ts'
import { clients } from './clients.ts'
import { dashboards } from './dashboards.ts'
import { pictures } from './pictures.ts'
import { centralLogs } from './logs.ts'
import { prometheusTargets } from './prometheus-targets.ts'
import { archivingAfterSwitchover, restore, restorePoint } from './restore.ts'
import { status } from './status.ts'
import { day2 } from './day2.ts'
import { siteDrills } from './drills.ts'
import { snapshots } from './snapshots.ts'
import { vip } from './vip.ts'
import { nodes } from './nodes.ts'
import { security } from './security.ts'
import { tlsRedis } from './tls-redis.ts'
import { tlsPostgres } from './tls-postgres.ts'
import { renewal } from './renewal.ts'
import { pgbackrestTls } from './pgbackrest-tls.ts'

// Destructive checks, in this order: alerting first (it asserts that no alert is raised when it is
// done, which the failovers of the later checks would trip for a while), then the rest; the restores
// near the end (they replace the whole cluster's data, and their switchover check relies on the
// restored cluster), and the node added and removed last (it grows and shrinks the cluster).
export const SITE_CHECKS: SiteCheck[] = [
  security,
  tlsPostgres,
  clients,
  tlsRedis,
  renewal,
  prometheusTargets,
  status,
  snapshots,
  dashboards,
  pictures,
  backup,
  pgbackrestTls,
  centralLogs,
  app,
  appBrowser,
  appLoad,
  alerting,
  vip,
  day2,
  ...siteDrills,
  restore,
  archivingAfterSwitchover,
  restorePoint,
  nodes,
]
