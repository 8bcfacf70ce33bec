/**
 * A pretend Patroni cluster behind the scripted PostgreSQL hosts, for the
 * patroni role test. A member runs while its `patroni` service is active; the
 * first running member bootstraps the cluster: it becomes the leader, seeds the
 * dynamic configuration from `bootstrap.dcs` of its config.yml and creates the
 * users of its `authentication` section, as Patroni does. It answers the REST
 * calls the role makes with `curl -K -` (unsafe ones only with the API's basic
 * auth), the waits for /health and /cluster, and the role's psql on the leader.
 * Installing patroni puts Debian's 3.0.2 etcd3.py in place; the compile check of a new etcd3.py is
 * answered by the real python3.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import type { RunOptions } from '../../lib/types.ts'
import { scramVerifier } from '../../roles/patroni/scram.ts'
import { ETCD3_MODULE } from '../../roles/patroni/etcd3-fix.ts'
import { lastWord, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'

/** Parameters PostgreSQL applies only after a restart (those the tests change). */
const RESTART_PARAMETERS = new Set([
  'max_connections',
  'shared_buffers',
  'max_wal_senders',
  'max_replication_slots',
  'wal_level',
])

type Json = Record<string, any>

/** etcd3.py as Debian 12's patroni 3.0.2-1 installs it (upstream's v3.0.2 file, MIT). */
export const DEBIAN_ETCD3 = readFileSync(new URL('../fixtures/patroni-3.0.2-etcd3.py', import.meta.url), 'utf8')

/** The put's check of a new etcd3.py, answered by compiling the temp file's content with the real python3. */
function compilesAsPython(source: string): { code: number; stderr?: string } {
  const compile = 'import sys; compile(sys.stdin.read(), "etcd3.py", "exec")'
  try {
    execFileSync('python3', ['-c', compile], { input: source, stdio: ['pipe', 'ignore', 'pipe'], timeout: 30_000 })
    return { code: 0 }
  } catch (e) {
    return { code: 1, stderr: String((e as { stderr?: Buffer }).stderr ?? e) }
  }
}

/** Patroni's merge of a PATCH into the dynamic configuration: objects merge, null deletes. */
function mergePatch(target: Json, patch: Json): Json {
  const out = { ...target }
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else if (typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object') out[k] = mergePatch(out[k], v)
    else out[k] = v
  }
  return out
}

/** The `key = "value"` lines of a curl config. */
/** The CA every call of an HTTPS API must verify it with. */
const CA_FILE = '/etc/hastack/tls/ca.crt'

function curlConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^(\S+) = "((?:[^"\\]|\\.)*)"$/.exec(line) ?? /^(\S+) = (\S+)$/.exec(line)
    if (m) out[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
  }
  return out
}

/** A GET's command line (httpGetCommand: `curl -sS -m 10 [--cacert CA] -w ... --url URL`) as a curl config. */
function curlGetConfig(command: string): Record<string, string> {
  const url = /--url (\S+)$/.exec(command)?.[1]
  const cacert = /--cacert (\S+)/.exec(command)?.[1]
  return { url: url ?? '', request: 'GET', ...(cacert ? { cacert } : {}) }
}

export class PatroniCluster {
  leader?: string
  dynamic?: Json
  readonly pending = new Set<string>()
  /** PostgreSQL roles → stored SCRAM verifier. */
  readonly roles = new Map<string, string>()
  /** Databases → owner. */
  readonly databases = new Map<string, string>()
  /** Every PATCH body accepted, every member restarted through the API, every switchover (old leader). */
  readonly patches: Json[] = []
  readonly restarts: string[] = []
  readonly switchovers: string[] = []
  /** SQL the role sent, in order. */
  readonly sql: string[] = []
  /** Unsafe calls refused for want of the API's credentials. */
  refused = 0
  /** Each call's scheme and the CA it verified with (`https /etc/hastack/tls/ca.crt`, `http`). */
  readonly calls: string[] = []

  constructor(private readonly lab: ScriptedLab) {
    for (const name of this.memberNames()) {
      const conn = lab.host(name)
      // The package installs Debian's etcd3.py (a test may install another file instead).
      conn.onInstall('patroni', (c) => void c.writeFile(ETCD3_MODULE, DEBIAN_ETCD3))
      conn.on(/^python3 -c 'import sys; compile\(open\(sys\.argv\[1\]/, (command, _o, c) =>
        compilesAsPython(c.readFile(lastWord(command)) ?? ''),
      )
      conn.on(
        (command) => command === 'curl -K -',
        (_c, options: RunOptions) => this.rest(curlConfig(String(options.stdin ?? ''))),
      )
      conn.on(/^curl -sS -m 10 .*--url \S+$/, (command) => this.rest(curlGetConfig(command)))
      conn.on(/https?:\/\/[\d.]+:\d+\/health/, (command) => {
        const [, scheme = '', address = ''] = /(https?):\/\/([\d.]+):/.exec(command)!
        const member = this.memberAt(address)
        const ca = /cafile=("[^"]*")/.exec(command)?.[1]
        const answered = member !== undefined && this.speaks(member, scheme, ca && JSON.parse(ca))
        return { code: answered && this.running(member) ? 0 : 1 }
      })
      conn.on(/curl -sf .*\/cluster/, () => ({ code: this.bootstrap() ? 0 : 1 }))
      // The role's read of whether config.yml serves the API over HTTPS (sed prints `https`, never the file).
      conn.on(/^sed -n 's\/\^ {2}certfile: /, () => {
        const config = conn.readFile('/etc/patroni/config.yml')
        if (config === undefined) return { code: 2, stderr: "sed: can't read /etc/patroni/config.yml" }
        return { code: 0, stdout: /^ {2}certfile: /m.test(config) ? 'https\n' : '' }
      })
      conn.on(/^\/usr\/lib\/postgresql\/\d+\/bin\/psql /, (_c, options: RunOptions, c) =>
        this.psql(c, String(options.stdin ?? '')),
      )
      // The reads a check starts with: one root command each (psqlReadCommand), the SQL quoted as sh reads it.
      conn.on(/^cd \/ && runuser -u postgres -- \/usr\/lib\/postgresql\/\d+\/bin\/psql .* -c '/, (command, _o, c) =>
        this.psql(c, lastWord(command)),
      )
    }
  }

  private memberNames(): string[] {
    return this.lab.inventory.groupHosts('postgres')
  }

  private memberAt(address: string): string | undefined {
    return this.memberNames().find((n) => this.lab.host(n).address === address)
  }

  /**
   * Whether a call reaches the member's API: with a certificate in its config.yml only https verified
   * with the stack's CA, else only plain http (the API speaks one or the other).
   */
  speaks(name: string, scheme: string, caFile: string | undefined): boolean {
    const tls = /^ {2}certfile: /m.test(this.lab.host(name).readFile('/etc/patroni/config.yml') ?? '')
    this.calls.push(`${scheme}${caFile ? ` ${caFile}` : ''}`)
    return tls ? scheme === 'https' && caFile === CA_FILE : scheme === 'http'
  }

  running(name: string | undefined): boolean {
    return name !== undefined && this.lab.host(name).service('patroni').active
  }

  /** The leader, bootstrapping the cluster on the first running member when there is none. */
  bootstrap(): string | undefined {
    if (this.leader) return this.leader
    const first = this.memberNames().find((n) => this.running(n))
    if (!first) return undefined
    const config = parse(this.lab.host(first).readFile('/etc/patroni/config.yml') ?? '') as Json
    this.leader = first
    this.dynamic = structuredClone(config.bootstrap.dcs)
    for (const user of Object.values(
      config.postgresql.authentication as Record<string, { username: string; password: string }>,
    ))
      this.roles.set(user.username, scramVerifier(user.password))
    return first
  }

  private members(): Json[] {
    return this.memberNames()
      .filter((n) => this.running(n))
      .map((n) => ({
        name: n,
        role: n === this.leader ? 'leader' : 'replica',
        state: n === this.leader ? 'running' : 'streaming',
        host: this.lab.host(n).address,
        api_url: `http://${this.lab.host(n).address}:8008/patroni`,
        pending_restart: this.pending.has(n) || undefined,
      }))
  }

  private rest(cfg: Record<string, string>): { code: number; stdout: string } {
    const url = new URL(cfg.url!)
    const member = this.memberAt(url.hostname)
    const reply = (status: number, body: unknown = '') => ({
      code: 0,
      stdout: `${typeof body === 'string' ? body : JSON.stringify(body)}\n${status}`,
    })
    if (!this.running(member) || !this.bootstrap()) return { code: 7, stdout: '\n000' }
    if (!this.speaks(member!, url.protocol.slice(0, -1), cfg.cacert)) return { code: 35, stdout: '\n000' }
    const route = `${cfg.request ?? 'GET'} ${url.pathname}`
    const vars = this.lab.inventory.hosts.get(member!)!.vars
    const authorized = cfg.user === `${vars.patroni_restapi_user}:${vars.patroni_restapi_password}`
    if (!route.startsWith('GET ') && !authorized) return (this.refused++, reply(401, 'no auth header received'))
    const conn = this.lab.host(member!)
    switch (route) {
      case 'GET /config':
        return reply(200, this.dynamic)
      case 'GET /cluster':
        return reply(200, { members: this.members() })
      case 'GET /primary':
        return reply(member === this.leader ? 200 : 503, { role: member === this.leader ? 'primary' : 'replica' })
      case 'PATCH /config': {
        const patch = JSON.parse(cfg.data!) as Json
        this.patches.push(patch)
        this.dynamic = mergePatch(this.dynamic!, patch)
        conn.mutated('PATCH /config')
        if (Object.keys(patch.postgresql?.parameters ?? {}).some((p) => RESTART_PARAMETERS.has(p)))
          for (const m of this.memberNames()) if (this.running(m)) this.pending.add(m)
        return reply(200, this.dynamic)
      }
      case 'POST /restart':
        this.pending.delete(member!)
        this.restarts.push(member!)
        conn.mutated('POST /restart')
        return reply(200, 'restarted successfully')
      case 'POST /switchover': {
        const old = (JSON.parse(cfg.data!) as Json).leader as string
        const candidate = this.memberNames().find((n) => n !== old && this.running(n))
        if (old !== this.leader || !candidate) return reply(412, 'no candidate')
        this.switchovers.push(old)
        this.leader = candidate
        // The demoted leader restarts as a replica: its pending settings take effect.
        this.pending.delete(old)
        conn.mutated('POST /switchover')
        return reply(200, `Successfully switched over to "${candidate}"`)
      }
      default:
        return reply(404, 'not found')
    }
  }

  /** The role's SQL as the postgres user: answered on the leader only. */
  private psql(conn: ScriptedConnection, sql: string): { code: number; stdout?: string; stderr?: string } {
    if (conn.host !== this.bootstrap()) return { code: 2, stderr: 'psql: error: not the leader' }
    this.sql.push(sql)
    let m: RegExpExecArray | null
    if ((m = /FROM pg_authid WHERE rolname IN \((.*)\);$/.exec(sql))) {
      const names = [...m[1]!.matchAll(/'([^']*)'/g)].map((n) => n[1]!)
      const rows = names.filter((n) => this.roles.has(n)).map((n) => `${n}|${this.roles.get(n)}\n`)
      return { code: 0, stdout: rows.join('') }
    }
    if ((m = /FROM pg_authid WHERE rolname = '([^']*)'/.exec(sql)))
      return { code: 0, stdout: `${this.roles.get(m[1]!) ?? ''}\n` }
    if ((m = /FROM pg_roles WHERE rolname = '([^']*)'/.exec(sql)))
      return { code: 0, stdout: this.roles.has(m[1]!) ? '1\n' : '' }
    if ((m = /^(?:CREATE|ALTER) ROLE "([^"]+)".* PASSWORD '([^']+)';$/.exec(sql))) {
      this.roles.set(m[1]!, m[2]!)
      conn.mutated(`${sql.split(' ')[0]} ROLE ${m[1]}`)
      return { code: 0 }
    }
    if ((m = /FROM pg_database WHERE datname = '([^']*)'/.exec(sql)))
      return { code: 0, stdout: `${this.databases.get(m[1]!) ?? ''}\n` }
    if ((m = /^(?:CREATE DATABASE "([^"]+)" OWNER|ALTER DATABASE "([^"]+)" OWNER TO) "([^"]+)";$/.exec(sql))) {
      this.databases.set(m[1] ?? m[2]!, m[3]!)
      conn.mutated(`${sql.split(' ')[0]} DATABASE ${m[1] ?? m[2]}`)
      return { code: 0 }
    }
    if (/^REVOKE ALL ON DATABASE/.test(sql)) return { code: 0 }
    return { code: 3, stderr: `ERROR: the pretend cluster does not know: ${sql}` }
  }
}
