/**
 * Headless Chromium for the README pictures: Debian's /usr/bin/chromium driven by playwright-core,
 * with a fresh profile directory per use (removed afterwards) and every background service off,
 * so it talks to nothing but the pages it is given. Install it with
 * `bash scripts/install-deps.sh --with-pictures`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Run `fn` with a page of a fresh Chromium (viewport in CSS pixels), then close it and its profile. */
export async function withPage<T>(viewport: { width: number; height: number }, fn: (page: Page) => Promise<T>) {
  const profile = mkdtempSync(join(tmpdir(), 'hastack-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
    deviceScaleFactor: 1,
    timeout: 60_000,
  })
  try {
    const page = context.pages()[0] ?? (await context.newPage())
    page.setDefaultTimeout(30_000)
    return await fn(page)
  } finally {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  }
}
