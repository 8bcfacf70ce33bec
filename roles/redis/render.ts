/**
 * What the Redis templates print, prepared from the host's variables: the
 * bootstrap redis.conf lines and the HAProxy endpoint (templates/haproxy/redis.cfg.ejs)
 * with its backends, servers, checks and HAProxy-quoted AUTH commands.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { haproxyWord } from '../../lib/config-quote.ts'
import { saveLines } from './settings.ts'
import { groupMembers, tlsOn } from '../stack.ts'
import { tlsFiles } from '../tls.ts'

/**
 * The TLS files Redis and Sentinel use, from the redis copy the certificates role keeps (group
 * hastack-tls-redis, which the user `redis` joins), or undefined when `tlsOn(vars, 'redis')` is off.
 */
export function redisTlsView(vars: Vars): { tls_files?: { cert: string; key: string; ca: string } } {
  if (!tlsOn(vars, 'redis')) return { tls_files: undefined }
  const files = tlsFiles(vars, 'redis')
  return { tls_files: { cert: files.cert, key: files.key, ca: files.ca } }
}

/** The first-deploy redis.conf: the `save` rules (`""` disables snapshots) and the primary a replica follows. */
export function redisConfView(host: HostView, replicaof: string): Vars {
  return { redis_save_lines: saveLines(String(host.vars.redis_save)), redis_replicaof: replicaof }
}

/** The RESP reply of SENTINEL get-master-addr-by-name naming this address and port, as hex. */
export function primaryReplyHex(address: string, port: number): string {
  const p = String(port)
  return Buffer.from(`*2\r\n$${address.length}\r\n${address}\r\n$${p.length}\r\n${p}\r\n`).toString('hex')
}

/** A Redis inline command sent by `tcp-check send`: HAProxy-quoted, then CRLF (interpreted inside "…"). */
function inlineCommand(command: string): string {
  return `${haproxyWord(command)}"\\r\\n"`
}

export interface RedisBackend {
  backend: string
  address: string
  primaryReply: string
  /** Options of the check's connect to this Redis host: TLS, verified against its host name (SNI). */
  redisConnect: string
  /** `tls`: each entry's traffic and checks (to its Sentinel) options. */
  servers: { name: string; sentinelAddress: string; tls: string }[]
}

/**
 * HAProxy's TLS options towards this stack's Redis and Sentinels, when `tlsOn(vars, 'redis')`: the
 * clients' side (`bind`), a server's traffic to a Redis host and checks to a Sentinel host (verified
 * against the stack's CA and the host's name, sent as SNI), and the check's second connect to Redis.
 * Empty strings in plaintext.
 */
export function haproxyRedisTls(vars: Vars) {
  if (!tlsOn(vars, 'redis'))
    return { bind: '', server: (_redis: string, _sentinel: string) => '', connect: (_redis: string) => '' }
  const ca = tlsFiles(vars, 'haproxy').ca
  return {
    bind: ` ssl crt ${tlsFiles(vars, 'haproxy').pem}`,
    server: (redis: string, sentinel: string) =>
      ` ssl verify required ca-file ${ca} sni str(${redis}) check-ssl check-sni ${sentinel}`,
    connect: (redis: string) => ` ssl sni ${redis}`,
  }
}

/** HAProxy's backend for one Redis host (templates/haproxy/redis.cfg.ejs). */
export function redisBackendName(redis: string): string {
  return `redis_${redis.replace(/[^A-Za-z0-9_]/g, '_')}`
}

/** The server entry, in the Redis host's backend, whose check asks this Sentinel. */
export function redisEntryName(redis: string, sentinel: string): string {
  return `${redis}_via_${sentinel}`
}

/** The Redis endpoint of an HAProxy host: one backend per Redis host, one server per Sentinel. */
export function redisEndpointView(host: HostView): Vars {
  const inventory = host.inventory
  const group = (name: string) => groupMembers(inventory, name)
  const v = host.vars
  const port = Number(v.redis_port)
  const tls = haproxyRedisTls(v)
  const backends: RedisBackend[] = group('redis').map((name) => {
    const address = String(host.hostvars(name).address)
    return {
      backend: redisBackendName(name),
      address,
      primaryReply: primaryReplyHex(address, port),
      redisConnect: tls.connect(name),
      servers: group('sentinel').map((s) => {
        return {
          name: redisEntryName(name, s),
          sentinelAddress: String(host.hostvars(s).address),
          tls: tls.server(name, s),
        }
      }),
    }
  })
  return {
    backends,
    bindTls: tls.bind,
    sentinelConnect: tls.bind ? ' default' : '',
    check: [
      `check inter ${v.redis_haproxy_check_interval_ms}`,
      `fall ${v.redis_haproxy_fall} rise ${v.redis_haproxy_rise} on-marked-down shutdown-sessions`,
    ].join(' '),
    sentinelAuth: inlineCommand(`AUTH ${v.sentinel_password}`),
    askPrimary: inlineCommand(`SENTINEL get-master-addr-by-name ${v.redis_master_name}`),
    redisAuth: inlineCommand(`AUTH ${v.redis_password}`),
    askRole: inlineCommand('INFO replication'),
    quit: inlineCommand('QUIT'),
  }
}
