/**
 * The README's pictures, made from a converged lab: docs/pictures/prometheus-alerts.png (a
 * screenshot of Prometheus' alerts page) and docs/pictures/ha-overview.png (the HA overview
 * dashboard's panels drawn from the lab's data). scripts/pictures.ts runs this from the command
 * line; the site suite's `pictures` check runs it when HASTACK_PICTURES=1.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { alertsPageScreenshot } from './alerts-page.ts'
import { dashboardPicture } from './dashboard-picture.ts'

export const PICTURES_DIR = fileURLToPath(new URL('../../docs/pictures/', import.meta.url))
const HA_OVERVIEW = fileURLToPath(new URL('../../dashboards/ha-overview.json', import.meta.url))

/** Write both pictures into `outDir`; returns their paths. */
export async function makePictures(prometheus: string, outDir = PICTURES_DIR, minutes = 30): Promise<string[]> {
  mkdirSync(outDir, { recursive: true })
  const alerts = join(outDir, 'prometheus-alerts.png')
  const overview = join(outDir, 'ha-overview.png')
  await alertsPageScreenshot(prometheus, alerts)
  await dashboardPicture(prometheus, HA_OVERVIEW, overview, minutes)
  return [alerts, overview]
}
