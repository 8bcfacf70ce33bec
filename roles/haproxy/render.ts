/**
 * What templates/haproxy/haproxy.cfg.ejs prints, prepared from the host's
 * variables: the PostgreSQL servers (the Patroni group's members), their check
 * options, the stats credentials quoted for HAProxy, the client ports' bind lists
 * (the host's address, and the VIP when one is set) and then the loopback health
 * listener keepalived's track script asks, when the inventory has Redis
 * hosts the Redis endpoint, and when it has app hosts the vote app's servers.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { haproxyWord } from '../../lib/config-quote.ts'
import { redisEndpointView } from '../redis/render.ts'
import { STACK_DEFAULTS, groupMembers, tlsOn } from '../stack.ts'
import { patroniApiCa, tlsFiles } from '../tls.ts'

/**
 * Where a client port listens, as an HAProxy bind list: the host's address, and the VIP too when
 * `vip_address` is set (the backup binds it before holding it: net.ipv4.ip_nonlocal_bind, set by the haproxy role).
 */
export function clientBind(host: HostView, port: number): string {
  const addresses = [host.vars.address, ...(host.vars.vip_address ? [host.vars.vip_address] : [])]
  return addresses.map((a) => `${a}:${port}`).join(',')
}

/**
 * The loopback listener that answers keepalived's track script (with a VIP): `/healthz` in plain HTTP from bash,
 * since a curl process and a TLS handshake a second on each balancer cost more CPU than the rest of its idle work.
 * One place for both ends: this role binds it, keepalived's script asks it.
 */
export function healthListener(vars: Vars): { address: string; port: number } {
  return { address: '127.0.0.1', port: Number(vars.haproxy_stats_port) }
}

export function haproxyView(host: HostView): Vars {
  const v = host.vars
  const inventory = host.inventory
  const members = groupMembers(inventory, String(v.patroni_group ?? STACK_DEFAULTS.patroni_group))
  // Patroni's API over HTTPS: the check verifies the member's certificate and its name (the inventory's).
  const ca = tlsOn(v, 'patroni_api') ? patroniApiCa(v) : undefined
  const inter = Number(v.haproxy_check_interval_ms)
  const fast = Math.max(100, Math.floor(inter / 2))
  // A member that is down is checked at the fast pace too: a newly promoted primary is routed to sooner
  // (a switchover's write pause), and only Patroni's leader answers /primary, so no second one can rise.
  const checks = (rise: number) =>
    [
      `check port ${v.patroni_restapi_port} inter ${inter}ms fastinter ${fast}ms downinter ${fast}ms`,
      `fall ${v.haproxy_check_fall} rise ${rise} on-marked-down shutdown-sessions`,
    ].join(' ')
  const checkTls = (name: string) => (ca ? ` check-ssl verify required ca-file ${ca} verifyhost ${name}` : '')
  const hasRedis = groupMembers(inventory, 'redis').length > 0
  const appHosts = groupMembers(inventory, 'app')
  const health = healthListener(v)
  return {
    // The stats page (and Prometheus' /metrics, its /healthz) over HTTPS with haproxy_stats_tls.
    stats_bind_tls: tlsOn(v, 'haproxy_stats') ? ` ssl crt ${tlsFiles(v, 'haproxy').pem}` : '',
    // keepalived's track script asks it (with a VIP only).
    local_health: v.vip_address ? `${health.address}:${health.port}` : undefined,
    stats_user: haproxyWord(String(v.haproxy_stats_user)),
    stats_password: haproxyWord(String(v.haproxy_stats_password)),
    pg_servers: members.map((name) => {
      return {
        name,
        address: String(host.hostvars(name).address),
        port: v.postgresql_port,
        checks: checks(Number(v.haproxy_check_rise)) + checkTls(name),
        // postgres_rw rises on the first passed check: /primary answers 200 only on the member holding Patroni's
        // leader key, which one member at a time holds, so a second answer would only lengthen a switchover's
        // write pause by fastinter. postgres_ro keeps haproxy_check_rise.
        rw_checks: checks(1) + checkTls(name),
      }
    }),
    replica_check: `/replica?lag=${v.haproxy_replica_max_lag}`,
    binds: {
      pg_rw: clientBind(host, Number(v.haproxy_pg_rw_port)),
      pg_ro: clientBind(host, Number(v.haproxy_pg_ro_port)),
      redis: clientBind(host, Number(v.redis_haproxy_port)),
    },
    redis_endpoint: hasRedis ? redisEndpointView(host) : undefined,
    app_endpoint: appHosts.length > 0 ? appEndpointView(host, appHosts) : undefined,
  }
}

/**
 * The vote app's HTTP section: its two ports bound like the other client ports (the VIP too), and
 * each app host's vote and result program, checked on `/healthz` at the PostgreSQL checks' pace.
 */
export function appEndpointView(host: HostView, appHosts: string[]): Vars {
  const v = host.vars
  const check = [
    `check inter ${v.haproxy_check_interval_ms}ms`,
    `fall ${v.haproxy_check_fall} rise ${v.haproxy_check_rise}`,
  ].join(' ')
  const servers = (portVar: 'app_vote_port' | 'app_result_port') =>
    appHosts.map((name) => {
      const app = host.hostvars(name)
      return { name, address: String(app.address), port: Number(app[portVar]), check }
    })
  return {
    vote_bind: clientBind(host, Number(v.app_http_port)),
    result_bind: clientBind(host, Number(v.app_result_http_port)),
    vote_servers: servers('app_vote_port'),
    result_servers: servers('app_result_port'),
  }
}
