/**
 * What the app role writes, prepared from the host's variables: the programs' environment (the
 * Sentinels, Redis's master name and passwords, HAProxy's PostgreSQL ports and the application
 * user), each value quoted for a systemd EnvironmentFile, and each program's unit.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { systemdEnvValue } from '../../lib/config-quote.ts'
import { groupMembers, tlsOn } from '../stack.ts'
import { tlsFiles } from '../tls.ts'
import type { AppProgram } from './bundles.ts'

/** Where the bundles live on an app host. */
export const APP_DIR = '/opt/hastack-app'
/** The programs' environment file (root only: it holds the passwords). */
export const ENV_FILE = '/etc/hastack-app/app.env'
export const APP_USER = 'hastack-app'

/** The systemd unit of each program, and what it does. */
export const UNITS: Record<AppProgram, { unit: string; description: string }> = {
  vote: { unit: 'hastack-vote', description: 'hastack vote app: takes votes into Redis' },
  worker: { unit: 'hastack-worker', description: 'hastack vote app: moves votes from Redis to PostgreSQL' },
  result: { unit: 'hastack-result', description: 'hastack vote app: serves the results' },
}

/**
 * Where the app reaches PostgreSQL: `app_pg_host`, else the load balancers' VIP when one is set, else the
 * first haproxy host (so a dead load balancer behind the VIP does not cut the app off).
 */
export function databaseEndpoint(host: HostView): { host: string; writePort: number; readPort: number } {
  const v = host.vars
  const [balancer] = groupMembers(host.inventory, 'haproxy')
  if (v.app_pg_host || !balancer) {
    return {
      host: String(v.app_pg_host),
      writePort: Number(v.haproxy_pg_rw_port),
      readPort: Number(v.haproxy_pg_ro_port),
    }
  }
  const lb = host.hostvars(balancer)
  return {
    host: String(lb.vip_address ?? lb.address),
    writePort: Number(lb.haproxy_pg_rw_port),
    readPort: Number(lb.haproxy_pg_ro_port),
  }
}

/** The programs' environment, in file order, unquoted. */
export function appEnvironment(host: HostView): [string, string | number][] {
  const v = host.vars
  const sentinels = groupMembers(host.inventory, 'sentinel').map((name) => {
    const s = host.hostvars(name)
    return `${s.address}:${s.sentinel_port}`
  })
  const db = databaseEndpoint(host)
  return [
    ['APP_LISTEN_ADDRESS', String(v.address)],
    ['APP_VOTE_PORT', Number(v.app_vote_port)],
    ['APP_RESULT_PORT', Number(v.app_result_port)],
    ['APP_VOTE_RETRY_MS', Number(v.app_vote_retry_ms)],
    ['APP_REDIS_SENTINELS', sentinels.join(',')],
    ['APP_REDIS_MASTER_NAME', String(v.redis_master_name)],
    ['APP_REDIS_PASSWORD', String(v.redis_password)],
    ['APP_SENTINEL_PASSWORD', String(v.sentinel_password)],
    ['APP_REDIS_WAIT_REPLICAS', Number(v.app_redis_wait_replicas)],
    ['APP_REDIS_WAIT_TIMEOUT_MS', Number(v.app_redis_wait_timeout_ms)],
    ['APP_REDIS_TLS_CA_FILE', tlsOn(v, 'redis') ? tlsFiles(v).ca : ''],
    ['APP_PG_HOST', db.host],
    ['APP_PG_WRITE_PORT', db.writePort],
    ['APP_PG_READ_PORT', db.readPort],
    ['APP_PG_DATABASE', String(v.postgresql_app_database)],
    ['APP_PG_USER', String(v.postgresql_app_user)],
    ['APP_PG_PASSWORD', String(v.postgresql_app_password)],
    // PostgreSQL over TLS: the CA its certificate is checked with (verify-ca: the name is HAProxy's, not the member's).
    ...(tlsOn(v, 'postgresql') ? [['APP_PG_CA_FILE', tlsFiles(v).ca] as [string, string]] : []),
  ]
}

/** What templates/app/app.env.ejs prints: each line's name and its quoted value. */
export function appEnvView(host: HostView): Vars {
  return { lines: appEnvironment(host).map(([name, value]) => ({ name, value: systemdEnvValue(value) })) }
}
