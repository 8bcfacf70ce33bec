/**
 * Reading each service's own view, over the connection of the host that runs it: Patroni's REST API,
 * etcd through the etcd role's `hastack-etcdctl` (root's credentials stay on the host), Redis and
 * Sentinel through redis-cli (passwords on standard input), HAProxy's admin socket, the VIP on the
 * interfaces, the backup timestamp in node_exporter's textfile directory, Prometheus's alerts. Each
 * reader returns plain data or an `error` sentence; the parsers are exported for the unit tests.
 */
import type { Connection } from '../../lib/types.ts'
import { quote, sh } from '../../lib/connection/quote.ts'
import { ETCDCTL } from '../../roles/etcd/index.ts'
import { restJson, type PatroniMember } from '../../roles/patroni/rest.ts'
import { cliScript, isError, parseInfo, splitReplies, type Endpoint } from '../../roles/redis/cli.ts'

/** A host's Patroni, as its own API (`GET /patroni`) and the cluster (`GET /cluster`) describe it. */
export interface PatroniReading {
  host: string
  /** The members as this host's Patroni lists them. */
  members?: PatroniMember[]
  /** The replicas this member streams to (filled on the leader): application name and state. */
  replication?: { name: string; state: string }[]
  error?: string
}

/** `caFile`: the CA of an https `api` (roles/tls.ts patroniApiCa). */
export async function readPatroni(
  conn: Connection,
  host: string,
  api: string,
  caFile?: string,
): Promise<PatroniReading> {
  type Own = { replication?: { application_name: string; state: string }[] }
  const [own, cluster] = await Promise.all([
    restJson<Own>(conn, `${api}/patroni`, caFile),
    restJson<{ members: PatroniMember[] }>(conn, `${api}/cluster`, caFile),
  ])
  if (!own || !cluster) return { host, error: `Patroni's REST API at ${api} does not answer` }
  const replication = (own.replication ?? []).map((r) => ({ name: r.application_name, state: r.state }))
  return { host, members: cluster.members, replication }
}

/** One etcd member's health and whom it follows. */
export interface EtcdReading {
  host: string
  healthy: boolean
  /** Its member id and the leader's, as decimal strings (uint64: never through a JavaScript number). */
  memberId?: string
  leaderId?: string
  /** Members the cluster lists as started. */
  started?: number
  error?: string
}

const ETCD_MARK = '---hastack-etcd---'

/**
 * The member's health, status and the cluster's member list, in one round trip: the three etcdctl
 * calls run at once into a private directory, printed in order once all have ended.
 */
export function etcdCommand(url: string): string {
  const e = `${ETCDCTL} --endpoints=${quote(url)} --command-timeout=3s`
  return [
    'out=$(mktemp -d) || exit 1',
    `trap 'rm -rf "$out"' EXIT`,
    `{ if ${e} endpoint health >/dev/null 2>&1; then echo healthy; else echo unhealthy; fi; } >"$out/health" &`,
    `${e} endpoint status -w json >"$out/status" 2>&1 &`,
    `${e} member list >"$out/members" 2>&1 &`,
    'wait',
    `cat "$out/health"; echo ${ETCD_MARK}; cat "$out/status"; echo ${ETCD_MARK}; cat "$out/members"`,
  ].join('\n')
}

export function parseEtcd(host: string, stdout: string): EtcdReading {
  const [health = '', status = '', members = ''] = stdout.split(`${ETCD_MARK}\n`)
  const memberId = /"member_id":(\d+)/.exec(status)?.[1]
  const leaderId = /"leader":(\d+)/.exec(status)?.[1]
  const started = members.split('\n').filter((l) => /,\s*started\s*,/.test(l)).length
  const healthy = health.trim() === 'healthy'
  const reading: EtcdReading = { host, healthy, memberId, leaderId, started }
  if (!healthy) reading.error = `etcd member does not answer healthy: ${status.trim().split('\n')[0] ?? ''}`
  return reading
}

export async function readEtcd(conn: Connection, host: string, url: string): Promise<EtcdReading> {
  const r = await conn.run(etcdCommand(url), { timeoutMs: 20_000 })
  return parseEtcd(host, r.stdout)
}

/** Run Redis or Sentinel commands through redis-cli on the host; one reply per command. */
export async function redisCommands(conn: Connection, ep: Endpoint, commands: (string | number)[][]) {
  const r = await conn.run(['sh', '-s'], { stdin: cliScript(ep, commands), sudo: false, timeoutMs: 20_000 })
  return splitReplies(r.stdout)
}

/** A Redis server's replication state (INFO replication). */
export interface RedisReading {
  host: string
  role?: 'master' | 'slave'
  /** A replica's primary (address) and link. */
  masterHost?: string
  linkUp?: boolean
  syncInProgress?: boolean
  offset?: number
  /** A primary's replicas: address, offset, seconds since their last ack. */
  replicas?: { address: string; offset: number; lag: number }[]
  priority?: number
  error?: string
}

export function parseReplication(host: string, info: string[], priority: string[]): RedisReading {
  if (isError(info) || !info.length) return { host, error: `Redis does not answer: ${info[0] ?? 'no reply'}` }
  const fields = parseInfo(info)
  const role = fields.role === 'master' || fields.role === 'slave' ? fields.role : undefined
  const replicas = Object.entries(fields)
    .filter(([key]) => /^slave\d+$/.test(key))
    .map(([, value]) => Object.fromEntries(value.split(',').map((kv) => kv.split('=') as [string, string])))
    .map((r) => ({ address: r.ip ?? '', offset: Number(r.offset), lag: Number(r.lag) }))
  return {
    host,
    role,
    masterHost: fields.master_host,
    linkUp: role === 'slave' ? fields.master_link_status === 'up' : undefined,
    syncInProgress: role === 'slave' ? fields.master_sync_in_progress === '1' : undefined,
    offset: Number(role === 'slave' ? fields.slave_repl_offset : fields.master_repl_offset),
    replicas: role === 'master' ? replicas : undefined,
    priority: priority[1] === undefined ? undefined : Number(priority[1]),
  }
}

export async function readRedis(conn: Connection, host: string, ep: Endpoint): Promise<RedisReading> {
  const [info = [], priority = []] = await redisCommands(conn, ep, [
    ['INFO', 'replication'],
    ['CONFIG', 'GET', 'replica-priority'],
  ])
  return parseReplication(host, info, priority)
}

/** One Sentinel's view: the primary it names and how many other Sentinels it knows. */
export interface SentinelReading {
  host: string
  primary?: string
  otherSentinels?: number
  error?: string
}

export function parseSentinel(host: string, addr: string[], master: string[]): SentinelReading {
  if (isError(addr) || addr.length < 2) return { host, error: `Sentinel does not name a primary: ${addr[0] ?? ''}` }
  const fields: Record<string, string> = {}
  for (let i = 0; i + 1 < master.length; i += 2) fields[master[i]!] = master[i + 1]!
  return { host, primary: addr[0], otherSentinels: Number(fields['num-other-sentinels'] ?? NaN) }
}

export async function readSentinel(conn: Connection, host: string, ep: Endpoint, name: string) {
  const [addr = [], master = []] = await redisCommands(conn, ep, [
    ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name],
    ['SENTINEL', 'MASTER', name],
  ])
  return parseSentinel(host, addr, master)
}

/** HAProxy's servers per backend, up or not (`show stat` on the admin socket). */
export interface HaproxyReading {
  host: string
  backends?: Record<string, { up: string[]; down: string[] }>
  error?: string
}

/** Sends its first argument to HAProxy's admin socket and prints the whole answer. */
const ADMIN = `import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect('/run/haproxy/admin.sock')
s.sendall(sys.argv[1].encode() + b'\\n')
d = b''
while True:
    c = s.recv(65536)
    if not c: break
    d += c
print(d.decode())`

const runAdmin = (conn: Connection, command: string) =>
  conn.run(sh`python3 -c ${ADMIN} ${command}`, { timeoutMs: 15_000 })

/** The last line of a failed admin-socket run's error output. */
const adminError = (stderr: string) => stderr.trim().split('\n').pop()

/** One command on the host's HAProxy admin socket; its answer (throws when the socket does not answer). */
export async function adminCommand(conn: Connection, command: string): Promise<string> {
  const r = await runAdmin(conn, command)
  if (r.code !== 0) throw new Error(`HAProxy's admin socket on ${conn.host}: ${adminError(r.stderr)}`)
  return r.stdout
}

export function parseShowStat(host: string, csv: string): HaproxyReading {
  const lines = csv.split('\n').filter(Boolean)
  const head = (lines[0] ?? '').replace(/^# /, '').split(',')
  const status = head.indexOf('status')
  if (status < 0) return { host, error: `HAProxy's admin socket gave no statistics: ${lines[0] ?? 'no output'}` }
  const backends: Record<string, { up: string[]; down: string[] }> = {}
  for (const line of lines.slice(1)) {
    const f = line.split(',')
    if (f[1] === 'FRONTEND' || f[1] === 'BACKEND' || f.length <= status) continue
    const b = (backends[f[0]!] ??= { up: [], down: [] })
    ;(f[status]!.startsWith('UP') ? b.up : b.down).push(f[1]!)
  }
  return { host, backends }
}

export async function readHaproxy(conn: Connection, host: string): Promise<HaproxyReading> {
  const r = await runAdmin(conn, 'show stat')
  if (r.code !== 0) return { host, error: `HAProxy's admin socket does not answer: ${adminError(r.stderr)}` }
  return parseShowStat(host, r.stdout)
}

/** Whether the host holds the address on one of its interfaces. */
export async function holdsAddress(conn: Connection, address: string): Promise<boolean> {
  const r = await conn.run(['ip', '-o', 'addr', 'show'], { sudo: false, timeoutMs: 10_000 })
  return r.stdout.split('\n').some((l) => l.includes(` ${address}/`))
}

/** node_exporter's textfile directory on Debian, where the backup role leaves its timestamp. */
export const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
export const BACKUP_METRIC = 'hastack_backup_last_success_timestamp_seconds'

/** The newest backup success timestamp (Unix seconds) in the host's textfiles; undefined when none. */
export async function readBackupTimestamp(conn: Connection): Promise<number | undefined> {
  const r = await conn.run(sh`cat ${TEXTFILE_DIR}/*.prom 2>/dev/null || true`, { sudo: false, timeoutMs: 10_000 })
  return parseBackupTimestamp(r.stdout)
}

export function parseBackupTimestamp(text: string): number | undefined {
  const stamps = text
    .split('\n')
    .filter((l) => l.startsWith(BACKUP_METRIC))
    .map((l) => Number(l.trim().split(/\s+/).pop()))
    .filter((n) => Number.isFinite(n) && n > 0)
  return stamps.length ? Math.max(...stamps) : undefined
}

/** Alerts firing on Prometheus (`/api/v1/alerts`), by name and host label. */
export async function readAlerts(conn: Connection, prometheus: string): Promise<string[] | undefined> {
  type Alerts = { data: { alerts: { state: string; labels: Record<string, string> }[] } }
  const body = await restJson<Alerts>(conn, `${prometheus}/api/v1/alerts`)
  if (!body) return undefined
  return body.data.alerts
    .filter((a) => a.state === 'firing')
    .map((a) => `${a.labels.alertname}${a.labels.host ? ` on ${a.labels.host}` : ''}`)
}
