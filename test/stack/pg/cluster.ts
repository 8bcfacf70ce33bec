/**
 * Helpers of the PostgreSQL HA lab tests: run playbooks/postgres.ts on the pg lab
 * (through test/stack/playbook-run.ts, output to a log file), read the cluster
 * through Patroni's REST API from this machine, and a bounded write loop that
 * records every acknowledged write with its time.
 */
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { parse } from 'yaml'
import { isLeader, type PatroniMember } from '../../../roles/patroni/rest.ts'
import { waitUntil } from '../../../lib/tasks/wait.ts'
import { runPlaybook, type PlaybookReport } from '../playbook-run.ts'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const INVENTORY = join(ROOT, 'test/stack/pg/hosts.yml')
export const REPORTS = join(ROOT, 'reports/pg')
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface ConvergeResult {
  code: number
  seconds: number
  report: PlaybookReport
  log: string
}

/**
 * runPlaybook for playbooks/postgres.ts on the pg lab, its report and log under reports/pg/NAME.*;
 * bounded by `timeoutMs`. Kept only for pg.test.ts's calls: new code calls runPlaybook.
 */
export async function converge(name: string, extra: string[] = [], timeoutMs = 900_000): Promise<ConvergeResult> {
  const r = await runPlaybook({
    cwd: ROOT,
    playbook: 'playbooks/postgres.ts',
    inventory: INVENTORY,
    json: join(REPORTS, `${name}.json`),
    log: join(REPORTS, `${name}.log`),
    extra,
    timeoutMs,
  })
  return { code: r.exitCode, seconds: r.seconds, report: r.report, log: r.log! }
}

/** The stored generated secrets of the pg lab inventory. */
export function secrets(): Record<string, string> {
  return parse(readFileSync(join(ROOT, 'test/stack/pg/hosts.secrets.yml'), 'utf8'))
}

/** A member as GET /cluster reports it (the patroni role's type). */
export type Member = PatroniMember
export { isLeader }

/** GET /cluster from the first member that answers. */
export async function cluster(addresses: string[]): Promise<Member[] | undefined> {
  for (const a of addresses) {
    try {
      const r = await fetch(`http://${a}:8008/cluster`, { signal: AbortSignal.timeout(2000) })
      if (r.ok) return ((await r.json()) as { members: Member[] }).members
    } catch {}
  }
  return undefined
}

/** Poll the cluster until `ok` holds (bounded); the last view. */
export async function waitCluster(
  addresses: string[],
  ok: (m: Member[]) => boolean,
  timeoutMs: number,
): Promise<Member[]> {
  let last: Member[] | undefined
  const probe = async () => {
    last = await cluster(addresses)
    return last && ok(last) ? last : undefined
  }
  return waitUntil('the cluster', probe, { timeoutMs, intervalMs: 1000 }).catch(() => {
    throw new Error(`cluster not as expected after ${timeoutMs / 1000}s: ${JSON.stringify(last)}`)
  })
}

export interface PgTarget {
  host: string
  port: number
  user: string
  password: string
  database: string
  /** TLS settings when PostgreSQL requires TLS (test/stack/site/context.ts pgTls). */
  ssl?: pg.ConnectionConfig['ssl']
}

/** Open a client with short timeouts. */
export async function connect(target: PgTarget, timeoutMs = 2000): Promise<pg.Client> {
  const client = new pg.Client({
    ...target,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    keepAlive: true,
  })
  client.on('error', () => {})
  await client.connect()
  return client
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`timeout after ${ms} ms`)), ms)
    p.then(
      (v) => (clearTimeout(t), res(v)),
      (e) => (clearTimeout(t), rej(e)),
    )
  })
}

export interface Write {
  seq: number
  sent: number
  acked?: number
  error?: string
}

export interface LoopOptions {
  target: PgTarget
  /** Label stored with each row (which client wrote it). */
  label: string
  periodMs?: number
  /** Hard bound on the loop's duration. */
  maxMs: number
  /** Per write: connect + insert must finish within this, else it counts as not acknowledged. */
  writeTimeoutMs?: number
  /** Stop early when this returns true (checked every tick). */
  stop?: (writes: Write[]) => boolean
}

/**
 * Insert one row every `periodMs` until `stop` or `maxMs`, reconnecting after any
 * error. A write counts only when the server acknowledged its COMMIT in time; a
 * timed-out client is dropped without a cancel (a cancelled synchronous commit
 * would be reported as committed with a warning).
 */
export async function writeLoop(opts: LoopOptions): Promise<Write[]> {
  const period = opts.periodMs ?? 100
  const timeout = opts.writeTimeoutMs ?? 1000
  const writes: Write[] = []
  const start = Date.now()
  let client: pg.Client | undefined
  const drop = () => {
    const c = client
    client = undefined
    if (c) (c as any).connection?.stream?.destroy?.()
    c?.end().catch(() => {})
  }
  for (let seq = 1; Date.now() - start < opts.maxMs && seq <= Math.ceil(opts.maxMs / period) + 1; seq++) {
    const tick = Date.now()
    const w: Write = { seq, sent: tick }
    writes.push(w)
    try {
      await withTimeout(
        (async () => {
          if (!client) client = await connect(opts.target, timeout)
          await client.query('INSERT INTO hastack_writes (label, seq) VALUES ($1, $2)', [opts.label, seq])
        })(),
        timeout,
      )
      w.acked = Date.now()
    } catch (e) {
      w.error = (e as Error).message
      drop()
    }
    if (opts.stop?.(writes)) break
    const wait = period - (Date.now() - tick)
    if (wait > 0) await sleep(wait)
  }
  drop()
  return writes
}

/** The longest time without an acknowledged write, between the first and the last ack, in seconds. */
export function longestGap(writes: Write[]): { seconds: number; from?: number; to?: number } {
  const acks = writes.filter((w) => w.acked).map((w) => w.acked!)
  let best = { seconds: 0, from: undefined as number | undefined, to: undefined as number | undefined }
  for (let i = 1; i < acks.length; i++) {
    const gap = (acks[i]! - acks[i - 1]!) / 1000
    if (gap > best.seconds) best = { seconds: gap, from: acks[i - 1], to: acks[i] }
  }
  return best
}
