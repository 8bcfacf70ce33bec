/**
 * The vote and result pages in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) opens the vote page through HAProxy, clicks a vote button, sees it recorded, then
 * opens the result page and waits until the vote is counted there. Saves both pages as screenshots:
 * into reports/browser/, or, with HASTACK_PICTURES=1 (as the pictures check), over the README's
 * docs/pictures/vote.png and result.png, so a test run leaves the committed pictures alone.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { withPage } from '../../../scripts/pictures/browser.ts'
import { appEndpoints } from '../../../playbooks/load/run.ts'
import type { SiteCheck } from './context.ts'

interface Counts {
  a: number
  b: number
  total: number
}

async function results(url: string): Promise<Counts> {
  const response = await fetch(`${url}/results`, { signal: AbortSignal.timeout(5000) })
  if (!response.ok) throw new Error(`GET /results answered ${response.status}`)
  return (await response.json()) as Counts
}

export const appBrowser: SiteCheck = {
  name: 'browser: a vote clicked on the vote page is counted on the result page (headless Chromium)',
  destructive: false,
  async run(t, ctx) {
    const { vote, results: result } = await appEndpoints(ctx.inventory)
    const voteUrl = `http://${vote.host}:${vote.port}`
    const resultUrl = `http://${result.host}:${result.port}`
    const before = await results(resultUrl)
    const pictures = join(ctx.repo, process.env.HASTACK_PICTURES === '1' ? 'docs/pictures' : 'reports/browser')
    mkdirSync(pictures, { recursive: true })
    await withPage({ width: 800, height: 500 }, async (page) => {
      const errors: string[] = []
      page.on('pageerror', (error) => errors.push(error.message))
      await page.goto(voteUrl, { timeout: 15_000 })
      await page.click('#vote-a', { timeout: 10_000 })
      const answered = await page
        .waitForFunction(() => /recorded/.test(document.querySelector('#answer')?.textContent ?? ''), null, {
          timeout: 15_000,
        })
        .then(() => true)
        .catch(() => false)
      t.same(errors, [], 'the vote page runs without script errors')
      t.ok(answered, 'the vote page answers the click')
      t.match(await page.textContent('#answer'), /^Vote A recorded \(.+\)$/, 'the vote page says the vote was recorded')
      if (!answered) return
      await page.screenshot({ path: join(pictures, 'vote.png') })

      await page.goto(resultUrl, { timeout: 15_000 })
      const wanted = before.a + 1
      // The worker moves the vote into PostgreSQL and the result page reads a replica: allow for both.
      await page.waitForFunction((n) => Number(document.querySelector('#a')?.textContent) >= n, wanted, {
        timeout: 30_000,
        polling: 500,
      })
      const shown = Number(await page.textContent('#a'))
      t.ok(shown >= wanted, `the result page counts the vote (A: ${before.a} before, ${shown} now)`)
      t.equal(await page.textContent('#status'), '', 'the result page shows no error')
      await page.screenshot({ path: join(pictures, 'result.png') })
    })
  },
}
