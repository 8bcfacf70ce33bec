/**
 * Makes the README's pictures from a converged lab (Prometheus on the inventory's first
 * monitoring host): `npm run pictures -- -i inventory/lab-small.yml [--out DIR] [--minutes N]`.
 * Needs Debian's chromium (`bash scripts/install-deps.sh --with-pictures`, which npm run pictures
 * calls first).
 */
import { resolve } from 'node:path'
import { parseCommandLineOrExit } from '../lib/cli/parse.ts'
import { loadInventory } from '../lib/inventory/index.ts'
import { allRoles } from '../roles/index.ts'
import { makePictures, PICTURES_DIR } from './pictures/index.ts'

const usage = 'usage: npm run pictures -- [-i INVENTORY] [--out DIR] [--minutes N]'
const { values } = parseCommandLineOrExit(
  process.argv.slice(2),
  {
    inventory: { type: 'string', short: 'i', valueName: 'FILE', description: 'default inventory/lab-small.yml' },
    out: { type: 'string', valueName: 'DIR', description: 'where the PNG files go (default docs/pictures)' },
    minutes: { type: 'number', valueName: 'N', description: 'the time range of the dashboard panels (default 30)' },
  },
  usage,
)
const minutes = Number(values.minutes ?? 30)
if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
  console.error(`--minutes must be a whole number from 1 to 1440, got ${values.minutes}\n${usage}`)
  process.exit(1)
}
const inventory = await loadInventory(resolve(String(values.inventory ?? 'inventory/lab-small.yml')), {
  roles: allRoles,
})
const [monitor] = inventory.groupHosts('monitoring')
if (!monitor) {
  console.error('the inventory has no monitoring host')
  process.exit(1)
}
const vars = inventory.hosts.get(monitor)!.vars
const written = await makePictures(
  `http://${vars.address}:${vars.prometheus_port}`,
  resolve(String(values.out ?? PICTURES_DIR)),
  minutes,
)
console.log(`wrote ${written.join(', ')}`)
