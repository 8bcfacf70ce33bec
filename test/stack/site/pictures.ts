/**
 * The README's pictures regenerated from this lab (scripts/pictures): only when HASTACK_PICTURES=1,
 * since they need Chromium and change with every run; CI does not depend on them.
 */
import { statSync } from 'node:fs'
import { makePictures } from '../../../scripts/pictures/index.ts'
import type { SiteCheck } from './context.ts'

export const pictures: SiteCheck = {
  name: 'pictures: the README pictures from the lab (HASTACK_PICTURES=1)',
  destructive: false,
  async run(t, ctx) {
    if (process.env.HASTACK_PICTURES !== '1') return void t.plan(0, 'set HASTACK_PICTURES=1 to regenerate them')
    const [monitor] = ctx.hosts('monitoring')
    const written = await makePictures(`http://${ctx.lab.host(monitor!).address}:9090`)
    for (const file of written) t.ok(statSync(file).size > 10_000, `${file} written`)
  },
}
