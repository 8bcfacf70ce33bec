/**
 * Prints where to look after a converge: the client endpoints (on the VIP when the
 * inventory has one), each HAProxy's stats page and where the generated passwords
 * are stored (never the values).
 * `npx tsx scripts/where-to-look.ts -i inventory/lab-small.yml`
 */
import { resolve } from 'node:path'
import { parseCommandLineOrExit } from '../lib/cli/parse.ts'
import { loadInventory, secretsFilePath } from '../lib/inventory/index.ts'
import { allRoles } from '../roles/index.ts'
import { clientAddress, tlsOn } from '../roles/stack.ts'

const { values } = parseCommandLineOrExit(
  process.argv.slice(2),
  {
    inventory: { type: 'string', short: 'i', valueName: 'FILE', description: 'default inventory/lab-small.yml' },
  },
  'usage: npx tsx scripts/where-to-look.ts [-i INVENTORY]',
)
const given = (values.inventory as string | undefined) ?? 'inventory/lab-small.yml'
const file = resolve(given)
const inv = await loadInventory(file, { roles: allRoles })
const lines: string[] = ['', 'Where to look:']
const balancers = inv.groupHosts('haproxy')
const entry = clientAddress(inv)
if (entry) {
  const v = inv.hosts.get(balancers[0]!)!.vars
  if (v.vip_address) lines.push(`  VIP                ${entry}  (keepalived: held by one of ${balancers.join(', ')})`)
  if (inv.groupHosts('postgres').length) {
    const db = String(v.postgresql_app_database)
    lines.push(`  PostgreSQL writes  postgresql://${v.postgresql_app_user}@${entry}:${v.haproxy_pg_rw_port}/${db}`)
    lines.push(`  PostgreSQL reads   postgresql://${v.postgresql_app_user}@${entry}:${v.haproxy_pg_ro_port}/${db}`)
  }
  if (inv.groupHosts('redis').length) {
    const redisScheme = tlsOn(v, 'redis') ? 'rediss' : 'redis'
    lines.push(`  Redis (no Sentinel) ${redisScheme}://${entry}:${v.redis_haproxy_port}`)
  }
}
for (const lb of balancers) {
  const v = inv.hosts.get(lb)!.vars
  const a = v.address
  // With haproxy_stats_tls the page is HTTPS, its certificate from the stack's CA (<inventory>.ca.crt).
  const scheme = tlsOn(v, 'haproxy_stats') ? 'https' : 'http'
  lines.push(
    `  HAProxy stats      ${scheme}://${a}:${v.haproxy_stats_port}/stats  (user ${v.haproxy_stats_user}, password: haproxy_stats_password)`,
  )
  lines.push(`  HAProxy metrics    ${scheme}://${a}:${v.haproxy_stats_port}/metrics`)
}
const sentinels = inv
  .groupHosts('sentinel')
  .map((h) => `${inv.hosts.get(h)!.vars.address}:${inv.hosts.get(h)!.vars.sentinel_port}`)
if (sentinels.length) lines.push(`  Redis Sentinels    ${sentinels.join(', ')}`)
const db = inv.groupHosts('postgres')[0]
const patronictl = `'sudo patronictl -c /etc/patroni/config.yml list'`
if (db) lines.push(`  Patroni            npm run lab -- ssh ${db} -i ${given} ${patronictl}`)
lines.push(`  Passwords          ${secretsFilePath(file)} (mode 0600)`)
console.log(lines.join('\n'))
