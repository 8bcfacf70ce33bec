/**
 * The write pause of a planned change, measured as a client sees it: a writer on a stack host writes
 * through HAProxy every 100 ms (PostgreSQL: `SELECT txid_current()`, which only a primary can answer,
 * through the read-write port; Redis: a SET through the Redis endpoint), reconnecting after any error,
 * until told to stop or its time is up. The pause is the longest time between two acknowledged
 * writes. Credentials reach the writer on standard input, never on its command line. With `watch`,
 * a second thread samples every 100 ms what the switch goes through (each Redis server's role and
 * good replicas, the primary each Sentinel names, each Patroni member's role and state, HAProxy's
 * servers up per backend) and records each change on the writer's clock: where the pause went.
 */
import { randomUUID } from 'node:crypto'
import type { Connection, RunResult, Vars } from '../../lib/types.ts'
import { InputError } from '../../lib/types.ts'
import { quote, sh } from '../../lib/connection/quote.ts'
import type { Fleet } from './fleet.ts'
import { patroniApi, redisEndpoint, sentinelEndpoint, stackGroups } from './stack-state.ts'
import { tlsOn } from '../../roles/stack.ts'
import { redisBackendName } from '../../roles/redis/render.ts'
import { patroniApiCa, tlsFiles } from '../../roles/tls.ts'

export interface WriterTarget {
  kind: 'postgres' | 'redis'
  address: string
  port: number
  password: string
  /** PostgreSQL only. */
  user?: string
  database?: string
  /** Redis only: the CA file to check the endpoint's certificate against when it speaks TLS. */
  redisCa?: string
  /** PostgreSQL over TLS: the CA on the writer's host (verify-ca: the name is HAProxy's). */
  sslrootcert?: string
}

/** What the writer's watcher samples during a switch (run as root: HAProxy's admin socket). */
export interface SwitchWatch {
  masterName: string
  sentinels: { name: string; address: string; port: number }[]
  sentinelPassword: string
  /** Redis servers (their role and good replicas). */
  servers: { name: string; address: string; port: number }[]
  redisPassword: string
  /** Patroni members (their role and state, `GET /patroni`); `ca` for an https API. */
  patroni: { name: string; url: string; ca?: string }[]
  /** HAProxy backends whose servers up are listed (the writer's host's own HAProxy). */
  backends: string[]
  /** The CA file Redis and the Sentinels are checked against when they speak TLS. */
  redisCa?: string
}

/** A change the watcher saw: ms on the writer's clock, what changed and its new value. */
export interface WatchEvent {
  ms: number
  what: string
  value: string
}

export interface WriteSummary {
  attempts: number
  /** Acknowledgement times, ms since the writer started. */
  acks: number[]
  failures: number
  lastError?: string
  /** When the writer stopped, ms since it started. */
  endedMs: number
  /** With a watch: every change it saw, in order. */
  events?: WatchEvent[]
}

const WRITER = `
import json, os, socket, ssl, sys, time
cfg = json.loads(sys.stdin.readline())
end = time.time() + cfg['max_seconds']; stop = cfg['stop_file']; start = time.time()
out = {'attempts': 0, 'acks': [], 'failures': 0}
def pg_client():
    import psycopg2
    tls = {'sslmode': 'verify-ca', 'sslrootcert': cfg['sslrootcert']} if cfg.get('sslrootcert') else {}
    c = psycopg2.connect(host=cfg['address'], port=cfg['port'], user=cfg['user'], password=cfg['password'],
        dbname=cfg['database'], connect_timeout=1, options='-c statement_timeout=1000', **tls)
    c.autocommit = True
    return c
def pg_write(c):
    cur = c.cursor(); cur.execute('SELECT txid_current()'); cur.fetchone()
def resp(*words):
    return b''.join([b'*%d\\r\\n' % len(words)] + [b'$%d\\r\\n%s\\r\\n' % (len(w), w) for w in words])
def redis_socket(address, port, timeout, ca):
    s = socket.create_connection((address, port), timeout=timeout)
    if not ca: return s
    import ssl
    return ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=address)
def redis_client():
    s = redis_socket(cfg['address'], cfg['port'], 1, cfg.get('redisCa'))
    s.sendall(resp(b'AUTH', cfg['password'].encode()))
    if not s.recv(256).startswith(b'+OK'): raise Exception('AUTH refused')
    return s
def redis_write(s):
    s.sendall(resp(b'SET', b'hastack:day2:writer', str(time.time()).encode()))
    reply = s.recv(256)
    if not reply.startswith(b'+OK'): raise Exception(reply.decode(errors='replace').strip()[:100])
def ask(address, port, password, *commands, ca=None):
    s = redis_socket(address, port, 0.3, ca)
    f = s.makefile('rb')
    s.sendall(resp(b'AUTH', password.encode()) + b''.join(resp(*[w.encode() for w in c]) for c in commands))
    def reply():
        line = f.readline()
        if line[:1] == b'$':
            n = int(line[1:]); data = f.read(n + 2)[:-2]; return data.decode(errors='replace')
        if line[:1] == b'*': return [reply() for _ in range(int(line[1:]))]
        return line.decode(errors='replace').strip()
    answers = [reply() for _ in range(len(commands) + 1)][1:]
    s.close()
    return answers
def sample(w):
    seen = {}
    by_address = {r['address']: r['name'] for r in w['servers']}
    for r in w['servers']:
        try:
            info = dict(l.split(':', 1) for l in ask(r['address'], r['port'], w['redisPassword'],
                ['INFO', 'replication'], ca=w.get('redisCa'))[0].split('\\r\\n') if ':' in l)
            value = info.get('role', '?')
            if value == 'master': value += ' good-replicas=' + info.get('min_slaves_good_slaves', '?')
            else: value += ' of ' + by_address.get(info.get('master_host'), '?') + ' link ' + info.get('master_link_status', '?')
        except Exception as e: value = 'no answer'
        seen['redis ' + r['name']] = value
    for s in w['sentinels']:
        try:
            named = ask(s['address'], s['port'], w['sentinelPassword'], ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', w['masterName']], ca=w.get('redisCa'))[0]
            seen['sentinel ' + s['name'] + ' names'] = by_address.get(named[0], named[0]) if isinstance(named, list) else str(named)
        except Exception: seen['sentinel ' + s['name'] + ' names'] = 'no answer'
    for p in w['patroni']:
        try:
            context = ssl.create_default_context(cafile=p['ca']) if p.get('ca') else None
            body = json.loads(urllib.request.urlopen(p['url'] + '/patroni', timeout=0.3, context=context).read())
            value = str(body.get('role', '?')) + ' ' + str(body.get('state', '?'))
        except Exception: value = 'no answer'
        seen['patroni ' + p['name']] = value
    try:
        a = socket.socket(socket.AF_UNIX); a.settimeout(0.3); a.connect('/run/haproxy/admin.sock'); a.sendall(b'show stat\\n')
        d = b''
        while True:
            c = a.recv(65536)
            if not c: break
            d += c
        rows = [l.split(',') for l in d.decode().split('\\n') if l and not l.startswith('#')]
        for b in w['backends']:
            up = [x[1] for x in rows if x[0] == b and x[1] not in ('FRONTEND', 'BACKEND') and x[17].startswith('UP')]
            seen['haproxy ' + b + ' up'] = ','.join(up) or 'none'
    except Exception: seen['haproxy'] = 'no answer'
    return seen
def watch():
    last = {}
    out['events'] = []
    while time.time() < end and not os.path.exists(stop) and len(out['events']) < 2000:
        tick = time.time()
        for what, value in sample(cfg['watch']).items():
            if last.get(what) != value:
                out['events'].append({'ms': round((tick - start) * 1000), 'what': what, 'value': value})
                last[what] = value
        time.sleep(max(0, 0.1 - (time.time() - tick)))
if cfg.get('watch'):
    import threading, urllib.request
    watcher = threading.Thread(target=watch, daemon=True); watcher.start()
connect, write = (pg_client, pg_write) if cfg['kind'] == 'postgres' else (redis_client, redis_write)
client = None
while time.time() < end and not os.path.exists(stop):
    tick = time.time(); out['attempts'] += 1
    try:
        if client is None: client = connect()
        write(client)
        out['acks'].append(round((time.time() - start) * 1000))
    except Exception as e:
        out['failures'] += 1; out['lastError'] = str(e).strip()[:160]
        try: client.close()
        except Exception: pass
        client = None
    time.sleep(max(0, cfg['period'] - (time.time() - tick)))
out['endedMs'] = round((time.time() - start) * 1000)
if cfg.get('watch'): watcher.join(2)
try: os.remove(stop)
except OSError: pass
print(json.dumps(out))
`

/** The longest time (ms) without an acknowledged write: between two acks, or from the writer's start or to its end. */
export function longestPause(summary: WriteSummary): number {
  const times = [0, ...summary.acks, summary.endedMs]
  let longest = 0
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!)
  return longest
}

export interface RunningWriter {
  /** Stop the writer and read what it saw (it keeps no state readable while it runs). */
  stop(): Promise<WriteSummary>
}

/** Start a writer on the host's connection; it stops by itself after maxSeconds. */
export function startWriter(
  conn: Connection,
  target: WriterTarget,
  maxSeconds: number,
  watch?: SwitchWatch,
): RunningWriter {
  const stopFile = `/tmp/hastack-writer-${randomUUID()}.stop`
  const config = { ...target, max_seconds: maxSeconds, stop_file: stopFile, period: 0.1, watch }
  const running: Promise<RunResult> = conn.run(sh`python3 -c ${WRITER}`, {
    sudo: watch !== undefined,
    stdin: JSON.stringify(config) + '\n',
    timeoutMs: (maxSeconds + 30) * 1000,
  })
  running.catch(() => undefined)
  return {
    async stop() {
      await conn.run(`touch ${quote(stopFile)}`, { sudo: false })
      const r = await running
      const line = r.stdout.trim().split('\n').pop() ?? ''
      if (r.code !== 0 || !line.startsWith('{'))
        throw new Error(`the writer on ${conn.host} failed (exit ${r.code}): ${r.stderr.trim().split('\n').pop()}`)
      return JSON.parse(line) as WriteSummary
    },
  }
}

/** The longest pause's bounds, ms on the writer's clock: the last ack before it and the first after. */
export function pauseWindow(summary: WriteSummary): { from: number; to: number } {
  const times = [0, ...summary.acks, summary.endedMs]
  let window = { from: 0, to: 0 }
  for (let i = 1; i < times.length; i++)
    if (times[i]! - times[i - 1]! > window.to - window.from) window = { from: times[i - 1]!, to: times[i]! }
  return window
}

/**
 * Where the pause went: the watcher's changes from a second before the pause to a second after it,
 * each as seconds after the last acknowledged write before the pause, then the first write after it.
 */
export function timelineLines(summary: WriteSummary): string[] {
  const { from, to } = pauseWindow(summary)
  const at = (ms: number) => `${ms >= from ? '+' : '-'}${(Math.abs(ms - from) / 1000).toFixed(2)} s`
  const lines = [`${at(from)} the last write acknowledged before the pause`]
  for (const e of summary.events ?? [])
    if (e.ms >= from - 1000 && e.ms <= to + 1000) lines.push(`${at(e.ms)} ${e.what}: ${e.value}`)
  lines.push(`${at(to)} the first write acknowledged after it`)
  return lines.sort((a, b) => parseFloat(a) - parseFloat(b))
}

/** One line for the operator: the pause and how many writes were acknowledged. */
export function pauseLine(component: string, summary: WriteSummary): string {
  const pause = (longestPause(summary) / 1000).toFixed(2)
  const failed = summary.failures ? `, ${summary.failures} write(s) refused or timed out` : ''
  return `${component}: write pause ${pause} s (${summary.acks.length} of ${summary.attempts} writes acknowledged${failed})`
}

/** `redisCa`, the CA file on the stack's hosts, when Redis speaks TLS (`tlsOn(vars, 'redis')`). */
function redisCa(vars: Vars): { redisCa?: string } {
  return tlsOn(vars, 'redis') ? { redisCa: tlsFiles(vars).ca } : {}
}

/** Where the writer runs and what it writes to: the first HAProxy host's endpoint of the component. */
export function writerPlacement(fleet: Fleet, component: 'postgres' | 'redis'): { host: string; target: WriterTarget } {
  const [balancer] = fleet.members('haproxy')
  if (!balancer) throw new InputError('the inventory has no haproxy host: there is no endpoint to measure through')
  const lb = fleet.vars(balancer)
  if (component === 'redis') {
    const target = { kind: component, address: String(lb.address), port: Number(lb.redis_haproxy_port) }
    return { host: balancer, target: { ...target, password: String(lb.redis_password), ...redisCa(lb) } }
  }
  // psycopg2 comes with Patroni: the writer runs on a PostgreSQL host and connects to HAProxy's write port.
  const [member] = fleet.members(stackGroups(fleet).postgres)
  const target = { kind: component, address: String(lb.address), port: Number(lb.haproxy_pg_rw_port) }
  const app = { user: String(lb.postgresql_app_user), database: String(lb.postgresql_app_database) }
  const tls = tlsOn(lb, 'postgresql') ? { sslrootcert: tlsFiles(fleet.vars(member!)).ca } : {}
  return { host: member!, target: { ...target, ...app, password: String(lb.postgresql_app_password), ...tls } }
}

/**
 * What the watcher samples during a switch: for Redis every Sentinel and Redis server and HAProxy's
 * Redis backends, for PostgreSQL every Patroni member and HAProxy's read-write backend.
 */
export function switchWatch(fleet: Fleet, component: 'postgres' | 'redis'): SwitchWatch {
  const g = stackGroups(fleet)
  const none = { masterName: '', sentinels: [], sentinelPassword: '', servers: [], redisPassword: '', patroni: [] }
  if (component === 'postgres') {
    const patroni = fleet.members(g.postgres).map((name) => {
      const ca = patroniApiCa(fleet.vars(name))
      return { name, url: patroniApi(fleet, name), ...(ca ? { ca } : {}) }
    })
    return { ...none, patroni, backends: ['postgres_rw'] }
  }
  const sentinels = fleet.members(g.sentinel).map((name) => ({ name, ...sentinelEndpoint(fleet, name) }))
  const servers = fleet.members(g.redis).map((name) => ({ name, ...redisEndpoint(fleet, name) }))
  const [first] = servers
  return {
    ...none,
    masterName: String(fleet.vars(first!.name).redis_master_name),
    sentinels: sentinels.map((s) => ({ name: s.name, address: s.host, port: s.port })),
    sentinelPassword: sentinels[0]?.password ?? '',
    servers: servers.map((r) => ({ name: r.name, address: r.host, port: r.port })),
    redisPassword: first?.password ?? '',
    backends: servers.map((r) => redisBackendName(r.name)),
    ...redisCa(fleet.vars(first!.name)),
  }
}
