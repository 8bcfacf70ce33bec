/**
 * The Redis settings hastack applies at run time, as `CONFIG GET` reports them,
 * computed from a host's variables. The role compares these with the running
 * server and, on a difference, applies them with CONFIG SET + CONFIG REWRITE,
 * so a change never needs a restart and the copies CONFIG REWRITE keeps in
 * redis.conf never go stale.
 */
import type { Vars } from '../../lib/types.ts'

const UNITS: Record<string, number> = { '': 1, k: 1000, kb: 1024, m: 1000 ** 2, mb: 1024 ** 2, g: 1000 ** 3, gb: 1024 ** 3 }

/** Redis's memory notation (`256mb`, `1gb`, `100000`) in bytes, as CONFIG GET prints it. */
export function memoryBytes(value: string | number): number {
  const m = /^(\d+)\s*([kmg]b?)?$/i.exec(String(value).trim())
  if (!m) throw new Error(`not a Redis memory size: ${JSON.stringify(value)}`)
  return Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!
}

/** Settings by CONFIG name, with values as CONFIG GET returns them. */
export function runtimeSettings(vars: Vars): Record<string, string> {
  return {
    bind: `${vars.address} 127.0.0.1`,
    'replica-announce-ip': String(vars.address),
    requirepass: String(vars.redis_password),
    masterauth: String(vars.redis_password),
    appendonly: 'yes',
    appendfsync: String(vars.redis_appendfsync),
    save: String(vars.redis_save).trim().split(/\s+/).filter(Boolean).join(' '),
    maxmemory: String(memoryBytes(vars.redis_maxmemory as string)),
    'maxmemory-policy': String(vars.redis_maxmemory_policy),
    'min-replicas-to-write': String(vars.redis_min_replicas_to_write),
    'min-replicas-max-lag': String(vars.redis_min_replicas_max_lag),
    'replica-priority': String(vars.redis_replica_priority),
  }
}

/** Names of the settings whose running value differs from the wanted one. */
export function differing(wanted: Record<string, string>, running: Record<string, string>): string[] {
  return Object.keys(wanted).filter((k) => running[k] !== wanted[k])
}
