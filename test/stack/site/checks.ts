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
import { appHostStop, postgresPrimaryKill, redisPrimaryKill } from './app-faults.ts'
import { appLoad } from './app-load.ts'
import { clients } from './clients.ts'
import { dashboards } from './dashboards.ts'
import { pictures } from './pictures.ts'
import { centralLogs } from './logs.ts'
import { prometheusTargets } from './prometheus-targets.ts'
import { status } from './status.ts'
import { day2 } from './day2.ts'
import { snapshots } from './snapshots.ts'
import { vip } from './vip.ts'
import { restore } from './restore.ts'

export const SITE_CHECKS: SiteCheck[] = [
  clients,
  prometheusTargets,
  status,
  snapshots,
  day2,
  dashboards,
  pictures,
  alerting,
  vip,
  backup,
  restore,
  centralLogs,
  app,
  appBrowser,
  appLoad,
  redisPrimaryKill,
  postgresPrimaryKill,
  appHostStop,
]
