/**
 * A screenshot of Prometheus' alerts page (every alerting rule with its state) taken with
 * headless Chromium. Upstream serves it at /alerts; Debian's package, built without the React
 * UI, serves the classic page at /classic/alerts (and answers 404 at /alerts).
 */
import { withPage } from './browser.ts'

const PATHS = ['/alerts', '/classic/alerts']

export async function alertsPageScreenshot(prometheus: string, out: string): Promise<void> {
  await withPage({ width: 1280, height: 900 }, async (page) => {
    for (const path of PATHS) {
      const response = await page.goto(`${prometheus}${path}`, { waitUntil: 'networkidle' })
      if (response?.status() === 404) continue
      if (!response?.ok()) throw new Error(`${prometheus}${path} answered ${response?.status()}`)
      return void (await page.screenshot({ path: out, fullPage: true }))
    }
    throw new Error(`${prometheus} has no alerts page at ${PATHS.join(' or ')}`)
  })
}
