/**
 * Prints where to look after a converge: the client endpoints, the HAProxy
 * stats page and where the generated passwords are stored (never the values).
 * `npx tsx scripts/where-to-look.ts -i inventory/lab-small.yml`
 */
import { resolve } from 'node:path'
import { parseCommandLineOrExit } from '../lib/cli/parse.ts'
import { loadInventory, secretsFilePath } from '../lib/inventory/index.ts'
import { allRoles } from '../roles/index.ts'

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
for (const lb of inv.groupHosts('haproxy')) {
  const v = inv.hosts.get(lb)!.vars
  const a = v.address
  lines.push(
    `  HAProxy stats      http://${a}:${v.haproxy_stats_port}/stats  (user ${v.haproxy_stats_user}, password: haproxy_stats_password)`,
  )
  lines.push(`  HAProxy metrics    http://${a}:${v.haproxy_stats_port}/metrics`)
  if (inv.groupHosts('postgres').length) {
    lines.push(
      `  PostgreSQL writes  postgresql://${v.postgresql_app_user}@${a}:${v.haproxy_pg_rw_port}/${v.postgresql_app_database}`,
    )
    lines.push(
      `  PostgreSQL reads   postgresql://${v.postgresql_app_user}@${a}:${v.haproxy_pg_ro_port}/${v.postgresql_app_database}`,
    )
  }
  if (inv.groupHosts('redis').length) lines.push(`  Redis (no Sentinel) redis://${a}:${v.redis_haproxy_port}`)
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
