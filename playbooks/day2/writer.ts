/**
 * The write pause of a planned change, measured as a client sees it: a writer on a stack host writes
 * through HAProxy every 100 ms (PostgreSQL: `SELECT txid_current()`, which only a primary can answer,
 * through the read-write port; Redis: a SET through the Redis endpoint), reconnecting after any error,
 * until told to stop or its time is up. The pause is the longest time between two acknowledged
 * writes. Credentials reach the writer on standard input, never on its command line.
 */
import { randomUUID } from 'node:crypto'
import type { Connection, RunResult } from '../../lib/types.ts'
import { InputError } from '../../lib/types.ts'
import { quote, sh } from '../../lib/connection/quote.ts'
import type { Fleet } from './fleet.ts'
import { stackGroups } from './stack-state.ts'

export interface WriterTarget {
  kind: 'postgres' | 'redis'
  address: string
  port: number
  password: string
  /** PostgreSQL only. */
  user?: string
  database?: string
}

export interface WriteSummary {
  attempts: number
  /** Acknowledgement times, ms since the writer started. */
  acks: number[]
  failures: number
  lastError?: string
  /** When the writer stopped, ms since it started. */
  endedMs: number
}

const WRITER = `
import json, os, socket, sys, time
cfg = json.loads(sys.stdin.readline())
end = time.time() + cfg['max_seconds']; stop = cfg['stop_file']; start = time.time()
out = {'attempts': 0, 'acks': [], 'failures': 0}
def pg_client():
    import psycopg2
    c = psycopg2.connect(host=cfg['address'], port=cfg['port'], user=cfg['user'], password=cfg['password'],
        dbname=cfg['database'], connect_timeout=1, options='-c statement_timeout=1000')
    c.autocommit = True
    return c
def pg_write(c):
    cur = c.cursor(); cur.execute('SELECT txid_current()'); cur.fetchone()
def resp(*words):
    return b''.join([b'*%d\\r\\n' % len(words)] + [b'$%d\\r\\n%s\\r\\n' % (len(w), w) for w in words])
def redis_client():
    s = socket.create_connection((cfg['address'], cfg['port']), timeout=1)
    s.sendall(resp(b'AUTH', cfg['password'].encode()))
    if not s.recv(256).startswith(b'+OK'): raise Exception('AUTH refused')
    return s
def redis_write(s):
    s.sendall(resp(b'SET', b'hastack:day2:writer', str(time.time()).encode()))
    reply = s.recv(256)
    if not reply.startswith(b'+OK'): raise Exception(reply.decode(errors='replace').strip()[:100])
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
export function startWriter(conn: Connection, target: WriterTarget, maxSeconds: number): RunningWriter {
  const stopFile = `/tmp/hastack-writer-${randomUUID()}.stop`
  const config = { ...target, max_seconds: maxSeconds, stop_file: stopFile, period: 0.1 }
  const running: Promise<RunResult> = conn.run(sh`python3 -c ${WRITER}`, {
    sudo: false,
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

/** One line for the operator: the pause and how many writes were acknowledged. */
export function pauseLine(component: string, summary: WriteSummary): string {
  const pause = (longestPause(summary) / 1000).toFixed(2)
  const failed = summary.failures ? `, ${summary.failures} write(s) refused or timed out` : ''
  return `${component}: write pause ${pause} s (${summary.acks.length} of ${summary.attempts} writes acknowledged${failed})`
}

/** Where the writer runs and what it writes to: the first HAProxy host's endpoint of the component. */
export function writerPlacement(fleet: Fleet, component: 'postgres' | 'redis'): { host: string; target: WriterTarget } {
  const [balancer] = fleet.members('haproxy')
  if (!balancer) throw new InputError('the inventory has no haproxy host: there is no endpoint to measure through')
  const lb = fleet.vars(balancer)
  if (component === 'redis') {
    const target = { kind: component, address: String(lb.address), port: Number(lb.redis_haproxy_port) }
    return { host: balancer, target: { ...target, password: String(lb.redis_password) } }
  }
  // psycopg2 comes with Patroni: the writer runs on a PostgreSQL host and connects to HAProxy's write port.
  const [member] = fleet.members(stackGroups(fleet).postgres)
  const target = { kind: component, address: String(lb.address), port: Number(lb.haproxy_pg_rw_port) }
  const app = { user: String(lb.postgresql_app_user), database: String(lb.postgresql_app_database) }
  return { host: member!, target: { ...target, ...app, password: String(lb.postgresql_app_password) } }
}
