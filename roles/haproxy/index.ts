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
 * `vip_address` the client ports listen on the VIP too (the keepalived role, run
 * after this one, moves it between the haproxy hosts; `net.ipv4.ip_nonlocal_bind`
 * lets HAProxy bind it before holding it), and a loopback listener on the stats
 * port answers keepalived's check on `/healthz`.
 */
import type { Role, Vars } from '../../lib/types.ts'
import { command, file, service, template } from '../../lib/tasks/index.ts'
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

/** With a VIP: HAProxy on the hosts that do not hold it binds it too (net.ipv4.ip_nonlocal_bind). */
const VIP_SYSCTL_FILE = '/etc/sysctl.d/60-hastack-vip.conf'

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
    const vip = h.vars.vip_address !== undefined
    if (vip)
      await h.doAll([
        file({
          path: VIP_SYSCTL_FILE,
          content:
            '# Managed by hastack: local changes are overwritten on the next run.\n' +
            '# HAProxy binds the VIP on every haproxy host, also while keepalived holds it elsewhere.\n' +
            'net.ipv4.ip_nonlocal_bind = 1\n',
          name: 'Ensure HAProxy may bind the VIP before holding it (sysctl file)',
        }),
        command({
          cmd: 'sysctl -q -w net.ipv4.ip_nonlocal_bind=1',
          unless: { kind: 'sysctl', key: 'net.ipv4.ip_nonlocal_bind', value: '1' },
          name: 'Ensure HAProxy may bind the VIP before holding it (running kernel)',
        }),
      ])
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
    // keepalived's role comes next: its track script asks the health listener a reload adds, so the reload first.
    if (vip) await h.flushHandlers()
  },
}
