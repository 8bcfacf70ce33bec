/**
 * The Redis settings hastack applies at run time, as `CONFIG GET` reports them,
 * computed from a host's variables. The role compares these with the running
 * server and, on a difference, applies them with CONFIG SET + CONFIG REWRITE,
 * so a change never needs a restart and the copies CONFIG REWRITE keeps in
 * redis.conf never go stale.
 */
import type { Vars } from '../../lib/types.ts'

const UNITS: Record<string, number> = {
  '': 1,
  k: 1000,
  kb: 1024,
  m: 1000 ** 2,
  mb: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1024 ** 3,
}

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
    save: saveValue(String(vars.redis_save)),
    maxmemory: String(memoryBytes(vars.redis_maxmemory as string)),
    'maxmemory-policy': String(vars.redis_maxmemory_policy),
    'min-replicas-to-write': String(vars.redis_min_replicas_to_write),
    'min-replicas-max-lag': String(vars.redis_min_replicas_max_lag),
    'replica-priority': String(vars.redis_replica_priority),
    // Redis's default. A switchover turns the old primary's PINGs off while its writes are paused
    // (playbooks/day2/redis-handover.ts) and restores them; a run cut off in between is repaired here.
    'repl-ping-replica-period': '10',
  }
}

/** RDB snapshot rules (`3600 1 300 100`) as pairs of seconds and changes, numbers as Redis prints them. */
export function saveRules(text: string): [number, number][] {
  const words = text
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '' && w !== '""')
  const rules: [number, number][] = []
  for (let i = 0; i + 1 < words.length; i += 2) rules.push([Number(words[i]), Number(words[i + 1])])
  return rules
}

/** The rules as `CONFIG GET save` answers them (`%jd %d` pairs joined by spaces; empty when none). */
export function saveValue(text: string): string {
  return saveRules(text)
    .map(([seconds, changes]) => `${seconds} ${changes}`)
    .join(' ')
}

/** The rules as redis.conf lines, one per rule as CONFIG REWRITE writes them (`save ""` when none). */
export function saveLines(text: string): string[] {
  const rules = saveRules(text)
  return rules.length ? rules.map(([seconds, changes]) => `save ${seconds} ${changes}`) : ['save ""']
}

/**
 * redis.conf with every `save` line just before the `include` line. Redis 7.0 stops
 * adding up `save` lines once an include has been read: each later line replaces the
 * rules, so after CONFIG REWRITE (which appends rules beyond the existing lines at the
 * end of the file) and a restart only the last rule is left. Lines placed before the
 * include, one per rule, are rewritten in place and survive. Unchanged without the include.
 */
export function placeSaveRules(conf: string, lines: string[], includeLine: string): string {
  const all = conf.split('\n')
  if (!all.includes(includeLine)) return conf
  const kept = all.filter((line) => !/^\s*save(\s|$)/i.test(line))
  const at = kept.indexOf(includeLine)
  return [...kept.slice(0, at), ...lines, ...kept.slice(at)].join('\n')
}

/** Names of the settings whose running value differs from the wanted one. */
export function differing(wanted: Record<string, string>, running: Record<string, string>): string[] {
  return Object.keys(wanted).filter((k) => running[k] !== wanted[k])
}
