/**
 * A pretend Redis and Sentinel deployment behind the scripted hosts, for the
 * redis and sentinel role tests. It answers the redis-cli scripts the roles
 * send (`sh -s`, or a check's bounded `timeout 15 sh -s`, with the script on standard input): a server loads its
 * settings from the files on its host when its service (re)starts (its `save`
 * lines add up only before the include, as in Redis 7.0), answers
 * CONFIG GET/SET/REWRITE; a Sentinel loads its monitor from sentinel.conf and
 * answers SENTINEL MASTER/MONITOR/SET/get-master-addr-by-name; a server answers ROLE. `failover`
 * moves the primary the way Sentinel would.
 */
import type { RunOptions } from '../../lib/types.ts'
import { memoryBytes } from '../../roles/redis/settings.ts'
import { shellTokens, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'

const REDIS_PORT = 6379
const SENTINEL_PORT = 26379
const SEPARATOR = '---hastack-next---'

interface Loaded {
  /** The service's restart count when the files were read. */
  restarts: number
}

interface RedisServer extends Loaded {
  config: Record<string, string>
  replicaof?: string
}

/** Settings as a Redis 7.0 server reports them when no file sets them. */
const REDIS_DEFAULTS: Record<string, string> = { 'repl-ping-replica-period': '10' }

interface SentinelState extends Loaded {
  masters: Map<string, { ip: string; port: string; settings: Record<string, string> }>
}

/** `key value...` lines of a config file (comments and blank lines skipped). */
function directives(text: string): [string, string][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const at = l.indexOf(' ')
      return at < 0 ? [l, ''] : [l.slice(0, at), l.slice(at + 1).trim()]
    })
}

export class RedisWorld {
  private readonly servers = new Map<string, RedisServer>()
  private readonly sentinels = new Map<string, SentinelState>()
  /** Every command a Redis or Sentinel process received, as `address:port WORDS`. */
  readonly received: string[] = []

  constructor(private readonly lab: ScriptedLab) {
    const hosts = new Set([...lab.inventory.groupHosts('redis'), ...lab.inventory.groupHosts('sentinel')])
    for (const name of hosts) {
      lab.host(name).on(
        (command: string, options: RunOptions) =>
          /^(timeout 15 )?sh -s$/.test(command) && String(options.stdin ?? '').includes('redis-cli'),
        (_command, options, conn) => ({ code: 0, stdout: this.script(conn, String(options.stdin)) }),
      )
      // The roles' waits for a port: open while the process behind it runs.
      lab.host(name).on(/\/dev\/tcp\/[\d.]+\/\d+/, (command) => {
        const [, address = '', port] = /\/dev\/tcp\/([\d.]+)\/(\d+)/.exec(command)!
        const up = Number(port) === SENTINEL_PORT ? this.sentinel(address) : this.server(address)
        return { code: up ? 0 : 1 }
      })
    }
  }

  /** The host whose cluster address this is. */
  private hostAt(address: string): ScriptedConnection | undefined {
    for (const name of this.lab.inventory.hosts.keys()) {
      const conn = this.lab.host(name)
      if (conn.address === address) return conn
    }
    return undefined
  }

  /** The running server at an address (its settings read from its files at the last start), or undefined when down. */
  server(address: string): RedisServer | undefined {
    const conn = this.hostAt(address)
    const svc = conn?.service('redis-server')
    if (!conn || !svc?.active) return undefined
    let s = this.servers.get(address)
    if (!s || s.restarts !== svc.restarts) {
      // Redis's own defaults for what the role reads but does not write in a file.
      const config: Record<string, string> = { ...REDIS_DEFAULTS }
      for (const [k, v] of directives(conn.readFile('/etc/redis/hastack.conf') ?? ''))
        config[k] = k === 'maxmemory' ? String(memoryBytes(v)) : v
      let replicaof: string | undefined
      let included = false
      let save: string[] | undefined
      for (const [k, v] of directives(conn.readFile('/etc/redis/redis.conf') ?? '')) {
        if (k === 'include') included = true
        // Redis 7.0 adds up the `save` lines read before an include; after one, each line replaces the rules.
        const rules = v === '""' ? [] : [v]
        if (k === 'save') save = included || save === undefined || !rules.length ? rules : [...save, ...rules]
        if (k === 'replicaof') replicaof = v.split(' ')[0]
      }
      if (save) config.save = save.join(' ')
      this.servers.set(address, (s = { restarts: svc.restarts, config, replicaof }))
    }
    return s
  }

  /** The running Sentinel at an address (its monitor read from sentinel.conf at the last start), or undefined. */
  sentinel(address: string): SentinelState | undefined {
    const conn = this.hostAt(address)
    const svc = conn?.service('redis-sentinel')
    if (!conn || !svc?.active) return undefined
    let s = this.sentinels.get(address)
    if (!s || s.restarts !== svc.restarts) {
      s = { restarts: svc.restarts, masters: new Map() }
      for (const [k, v] of directives(conn.readFile('/etc/redis/sentinel.conf') ?? '')) {
        if (k !== 'sentinel') continue
        const [what, name = '', ...rest] = v.split(' ')
        if (what === 'monitor') s.masters.set(name, { ip: rest[0]!, port: rest[1]!, settings: { quorum: rest[2]! } })
        else if (['down-after-milliseconds', 'failover-timeout', 'parallel-syncs'].includes(what!))
          s.masters.get(name)!.settings[what!] = rest[0]!
      }
      this.sentinels.set(address, s)
    }
    return s
  }

  /** What Sentinel does in a failover: every Sentinel now names the new primary, and the others replicate it. */
  failover(name: string, newPrimary: string): void {
    const address = String(this.lab.inventory.hosts.get(newPrimary)!.vars.address)
    for (const host of this.lab.inventory.groupHosts('sentinel')) {
      const s = this.sentinel(String(this.lab.inventory.hosts.get(host)!.vars.address))
      const m = s?.masters.get(name)
      if (m) m.ip = address
    }
    for (const host of this.lab.inventory.groupHosts('redis')) {
      const a = String(this.lab.inventory.hosts.get(host)!.vars.address)
      const s = this.server(a)
      if (s) s.replicaof = a === address ? undefined : address
    }
  }

  /** Run the redis-cli invocations of one script; replies joined as the roles' parser expects. */
  private script(conn: ScriptedConnection, script: string): string {
    if (!conn.packages.has('redis-tools') && !conn.packages.has('redis-sentinel')) return 'HASTACK_NO_CLI\n'
    const lines = script.split('\n')
    const replies: string[] = []
    for (let i = 0; i < lines.length; i++) {
      const call = /^redis-cli .*-h (\S+) -p (\d+) <</.exec(lines[i]!)
      if (!call) continue
      const words = shellTokens(lines[i + 1] ?? '').flatMap((t) => ('word' in t ? [t.word] : []))
      const host = call[1] === '127.0.0.1' ? conn.address : call[1]!
      this.received.push(`${host}:${call[2]} ${words.join(' ')}`)
      replies.push(this.reply(conn, host, Number(call[2]), words).join('\n') + '\n')
    }
    return replies.join(`${SEPARATOR}\n`)
  }

  private reply(conn: ScriptedConnection, address: string, port: number, words: string[]): string[] {
    const [cmd = '', sub = '', ...args] = words
    if (port === REDIS_PORT) {
      const server = this.server(address)
      if (!server) return [`Could not connect to Redis at ${address}:${port}: Connection refused`]
      if (cmd === 'CONFIG' && sub === 'GET')
        return args.flatMap((k) => (k in server.config ? [k, server.config[k]!] : []))
      if (cmd === 'CONFIG' && sub === 'SET') {
        for (let i = 0; i + 1 < args.length; i += 2) server.config[args[i]!] = args[i + 1]!
        conn.mutated(`CONFIG SET ${args.filter((_, i) => i % 2 === 0).join(' ')}`)
        return ['OK']
      }
      if (cmd === 'CONFIG' && sub === 'REWRITE') return (conn.mutated('CONFIG REWRITE'), ['OK'])
      // ROLE as redis-cli --raw prints it: a primary's offset and replicas, a replica's primary and link.
      if (cmd === 'ROLE')
        return server.replicaof ? ['slave', server.replicaof, String(REDIS_PORT), 'connected', '0'] : ['master', '0']
      return [`ERR unknown command '${cmd}'`]
    }
    if (port === SENTINEL_PORT) {
      const sentinel = this.sentinel(address)
      if (!sentinel) return [`Could not connect to Redis at ${address}:${port}: Connection refused`]
      const [name = ''] = args
      const master = sentinel.masters.get(name)
      if (cmd !== 'SENTINEL') return [`ERR unknown command '${cmd}'`]
      switch (sub) {
        case 'get-master-addr-by-name':
          return master ? [master.ip, master.port] : ['']
        case 'CKQUORUM':
          return master
            ? ['OK 3 usable Sentinels. Quorum and failover authorization can be reached']
            : ['ERR No such master']
        case 'MASTER':
          if (!master) return ['ERR No such master with that name']
          return Object.entries({ name, ip: master.ip, port: master.port, ...master.settings }).flat()
        case 'MONITOR':
          sentinel.masters.set(name, { ip: args[1]!, port: args[2]!, settings: { quorum: args[3]! } })
          conn.mutated(`SENTINEL MONITOR ${name}`)
          return ['OK']
        case 'SET': {
          if (!master) return ['ERR No such master with that name']
          const keys: string[] = []
          for (let i = 1; i + 1 < args.length; i += 2) {
            const [key, value] = [args[i]!, args[i + 1]!]
            keys.push(key)
            if (key === 'auth-pass') this.persistAuthPass(conn, name, value)
            else master.settings[key] = value
          }
          conn.mutated(`SENTINEL SET ${name} ${keys.join(' ')}`)
          return ['OK']
        }
        default:
          return [`ERR unknown sentinel subcommand '${sub}'`]
      }
    }
    return [`Could not connect to Redis at ${address}:${port}: Connection refused`]
  }

  /** Sentinel rewrites its own file after SENTINEL SET auth-pass. */
  private persistAuthPass(conn: ScriptedConnection, name: string, password: string): void {
    const path = '/etc/redis/sentinel.conf'
    const kept = (conn.readFile(path) ?? '')
      .split('\n')
      .filter((l) => l && !l.startsWith(`sentinel auth-pass ${name} `))
    const entry = conn.fs.get(path)
    const own = entry && entry.type === 'file' ? { mode: entry.mode, owner: entry.owner, group: entry.group } : {}
    conn.writeFile(path, [...kept, `sentinel auth-pass ${name} ${password}`].join('\n') + '\n', own)
  }
}
