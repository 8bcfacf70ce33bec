/**
 * `npm run build:app`: bundles the vote app's programs into app/dist/ (vote.cjs, worker.cjs,
 * result.cjs), as the app role does on every run, for a look at what would be deployed.
 */
import { appBundles, DIST_DIR } from '../roles/app/bundles.ts'

const bundles = await appBundles()
for (const [program, text] of Object.entries(bundles)) {
  console.log(`${DIST_DIR}/${program}.cjs  ${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB`)
}
