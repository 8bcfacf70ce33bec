/**
 * haproxy: the clients' entry to PostgreSQL. Port 5000 goes to the Patroni
 * primary (health check GET /primary), port 5001 round-robins over replicas
 * within the lag limit (GET /replica?lag=), with fast checks and
 * `on-marked-down shutdown-sessions` so clients of a lost primary are cut at
 * once. A stats page and the Prometheus endpoint sit behind a password. A new
 * configuration is checked (`haproxy -c`) before it replaces the live file, so
 * an invalid one never reaches the reload; reloads are seamless (Debian's
 * master-worker unit, listeners passed to the new worker), so established
 * connections stay. When the inventory has Redis hosts, their section comes
 * from templates/haproxy/redis.cfg.ejs (the Redis roles' part); when it has app
 * hosts, the vote app's HTTP section from templates/haproxy/app.cfg.ejs. With
 * `vip_address` the client ports listen on the VIP too (the keepalived role moves
 * it between the haproxy hosts), and `/healthz` on the stats port answers
 * keepalived's check.
 */
import type { Role, Vars } from '../../lib/types.ts'
import { service, template } from '../../lib/tasks/index.ts'
import { servesCurrentCertificate } from '../certificates/served.ts'
import { tlsFiles } from '../tls.ts'
import { installWithoutStarting } from '../common/apt.ts'
import {
  APP_PORT_VARS,
  CLIENT_ENTRY_VARS,
  HAPROXY_PG_VARS,
  REDIS_CLIENT_VARS,
  REDIS_ENDPOINT_VARS,
  TLS_VARS,
  failoverProfiles,
  sharedVars,
  tlsOn,
  type StackVars,
} from '../stack.ts'
import { haproxyView } from './render.ts'

/**
 * What HAProxy routes to: Patroni's members and their ports, the Redis hosts as their Sentinels name
 * them, the app hosts' programs; and its own PostgreSQL and app ports, which clients connect to.
 */
const shared = sharedVars(
  'patroni_group',
  'patroni_restapi_port',
  'postgresql_port',
  ...REDIS_CLIENT_VARS,
  ...REDIS_ENDPOINT_VARS,
  'sentinel_quorum',
  ...CLIENT_ENTRY_VARS,
  ...HAPROXY_PG_VARS,
  ...APP_PORT_VARS,
  ...TLS_VARS,
  'failover_profile',
  ...TLS_VARS,
)
const profile = failoverProfiles('haproxy_check_interval_ms', 'haproxy_check_fall')

export interface HaproxyVars extends Vars, Pick<StackVars, keyof typeof shared.schema> {
  haproxy_stats_port: number
  haproxy_stats_user: string
  haproxy_stats_password: string
  haproxy_replica_max_lag: string
  haproxy_check_interval_ms: number
  haproxy_check_fall: number
  haproxy_check_rise: number
  haproxy_maxconn: number
  haproxy_client_timeout: string
}

export const haproxyRole: Role<HaproxyVars> = {
  name: 'haproxy',
  description: 'HAProxy routing PostgreSQL clients to the Patroni primary (5000) and healthy replicas (5001).',
  defaults: {
    ...shared.defaults,
    haproxy_stats_port: 7000,
    haproxy_stats_user: 'admin',
    haproxy_stats_password: '',
    haproxy_replica_max_lag: '1MB',
    ...profile.defaults,
    haproxy_check_rise: 2,
    haproxy_maxconn: 2000,
    haproxy_client_timeout: '30m',
  },
  profiles: profile.profiles,
  schema: {
    ...shared.schema,
    haproxy_stats_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Stats page (`/stats`) and Prometheus endpoint (`/metrics`), password protected.',
    },
    haproxy_stats_user: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]+$',
      description: 'User of the stats page and metrics.',
    },
    haproxy_stats_password: {
      type: 'string',
      format: 'one-line',
      minLength: 16,
      secret: true,
      description: 'Password of the stats page and metrics (generated).',
    },
    haproxy_replica_max_lag: {
      type: 'string',
      pattern: '^\\d+(B|kB|MB|GB)?$',
      description: 'Replicas lagging more than this leave the read-only pool (Patroni `/replica?lag=`).',
    },
    haproxy_check_interval_ms: { type: 'integer', minimum: 100, description: 'Health check interval, ms.' },
    haproxy_check_fall: { type: 'integer', minimum: 1, description: 'Failed checks before a server is marked down.' },
    haproxy_check_rise: { type: 'integer', minimum: 1, description: 'Passed checks before a server is marked up.' },
    haproxy_maxconn: { type: 'integer', minimum: 1, description: 'Maximum concurrent connections.' },
    haproxy_client_timeout: {
      type: 'string',
      pattern: '^\\d+(ms|s|m|h)?$',
      description: 'Idle timeout of client and server connections.',
    },
  },
  handlers: {
    'Reload HAProxy': async (h) => {
      await h.do(service({ service: 'haproxy', state: 'reloaded', name: 'Reload HAProxy' }))
    },
  },
  async tasks(h) {
    await installWithoutStarting(h, ['haproxy'], 'HAProxy')
    await h.doAll([
      template({
        src: 'haproxy/haproxy.cfg.ejs',
        dest: '/etc/haproxy/haproxy.cfg',
        vars: { haproxy: haproxyView(h) },
        owner: 'root',
        group: 'haproxy',
        mode: '0640',
        validate: 'haproxy -c -f %s',
        notify: 'Reload HAProxy',
        name: 'Ensure the HAProxy configuration is current',
      }),
      service({ service: 'haproxy', enabled: true, state: 'started', name: 'Ensure HAProxy is enabled and started' }),
    ])
    // A renewed certificate: HAProxy's hitless reload (new workers read host.pem, old ones finish their
    // connections) picks it up on the stats page and the Redis endpoint alike.
    if (tlsOn(h.vars, 'haproxy_stats')) {
      const stats = { address: String(h.vars.address), port: Number(h.vars.haproxy_stats_port) }
      const endpoint = { service: "HAProxy's stats page", ...stats, certFile: tlsFiles(h.vars).cert }
      await h.do(
        servesCurrentCertificate(endpoint, 'a hitless reload of HAProxy', async () => {
          await h.conn.run('systemctl reload haproxy', { check: true })
        }),
      )
    }
  },
}
