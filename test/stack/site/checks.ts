/**
 * The site suite's checks, in the order they run against the one converged lab: every
 * non-destructive check first, then the ones that break and restore hosts. A new check is a module
 * in this directory and one line here.
 */
import type { SiteCheck } from './context.ts'
import { app } from './app.ts'
import { appBrowser } from './app-browser.ts'
import { appHostStop, postgresPrimaryKill, redisPrimaryKill } from './app-faults.ts'
import { appLoad } from './app-load.ts'
import { clients } from './clients.ts'
import { prometheusTargets } from './prometheus-targets.ts'

export const SITE_CHECKS: SiteCheck[] = [
  clients,
  prometheusTargets,
  app,
  appBrowser,
  appLoad,
  redisPrimaryKill,
  postgresPrimaryKill,
  appHostStop,
]
