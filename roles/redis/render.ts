/**
 * What the Redis templates print, prepared from the host's variables: the
 * bootstrap redis.conf lines and the HAProxy endpoint (templates/haproxy/redis.cfg.ejs)
 * with its backends, servers, checks and HAProxy-quoted AUTH commands.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { haproxyWord } from '../../lib/config-quote.ts'
import { saveLines } from './settings.ts'
import { groupMembers } from '../stack.ts'

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
  servers: { name: string; sentinelAddress: string }[]
}

/** The Redis endpoint of an HAProxy host: one backend per Redis host, one server per Sentinel. */
export function redisEndpointView(host: HostView): Vars {
  const inventory = host.inventory
  const group = (name: string) => groupMembers(inventory, name)
  const v = host.vars
  const port = Number(v.redis_port)
  const backends: RedisBackend[] = group('redis').map((name) => {
    const address = String(host.hostvars(name).address)
    return {
      backend: `redis_${name.replace(/[^A-Za-z0-9_]/g, '_')}`,
      address,
      primaryReply: primaryReplyHex(address, port),
      servers: group('sentinel').map((s) => {
        return { name: `${name}_via_${s}`, sentinelAddress: String(host.hostvars(s).address) }
      }),
    }
  })
  return {
    backends,
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
