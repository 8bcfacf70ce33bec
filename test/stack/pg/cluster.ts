/**
 * Helpers of the PostgreSQL HA lab tests: run the playbook as a child process
 * (its output to a log file, its --json report read back), read the cluster
 * through Patroni's REST API from this machine, and a bounded write loop that
 * records every acknowledged write with its time.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { parse } from 'yaml'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const INVENTORY = join(ROOT, 'test/stack/pg/hosts.yml')
export const REPORTS = join(ROOT, 'reports/pg')
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface ConvergeResult {
  code: number
  seconds: number
  report: { totals: Record<string, number>; hosts: Record<string, { changed: number; failed: number; unreachable: number; tasks: { task: string; status: string; reason?: string }[] }> }
  log: string
}

/** Run playbooks/postgres.ts on the pg lab; bounded by `timeoutMs`. */
export async function converge(name: string, extra: string[] = [], timeoutMs = 900_000): Promise<ConvergeResult> {
  mkdirSync(REPORTS, { recursive: true })
  const json = join(REPORTS, `${name}.json`)
  const log = join(REPORTS, `${name}.log`)
  // A run that writes no report must not be judged by the previous one's.
  rmSync(json, { force: true })
  const out = createWriteStream(log)
  const started = Date.now()
  const child = spawn(process.execPath, ['--import=tsx', join(ROOT, 'playbooks/postgres.ts'), '-i', INVENTORY, '--json', json, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.pipe(out)
  child.stderr.pipe(out)
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
  const code: number = await new Promise((r) => child.on('close', (c) => r(c ?? 1)))
  clearTimeout(timer)
  const seconds = (Date.now() - started) / 1000
  let report: ConvergeResult['report']
  try {
    report = JSON.parse(readFileSync(json, 'utf8'))
  } catch {
    report = { totals: {}, hosts: {} }
  }
  return { code, seconds, report, log }
}

/** The stored generated secrets of the pg lab inventory. */
export function secrets(): Record<string, string> {
  return parse(readFileSync(join(ROOT, 'test/stack/pg/hosts.secrets.yml'), 'utf8'))
}

export interface Member {
  name: string
  role: string
  state: string
  host: string
  timeline?: number
  lag?: number | string
  pending_restart?: boolean
}

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

export const isLeader = (m: Member) => m.role === 'leader' || m.role === 'master'

/** Poll the cluster until `ok` holds (bounded); the last view. */
export async function waitCluster(addresses: string[], ok: (m: Member[]) => boolean, timeoutMs: number): Promise<Member[]> {
  const end = Date.now() + timeoutMs
  let last: Member[] | undefined
  while (Date.now() < end) {
    last = await cluster(addresses)
    if (last && ok(last)) return last
    await sleep(1000)
  }
  throw new Error(`cluster not as expected after ${timeoutMs / 1000}s: ${JSON.stringify(last)}`)
}

export interface PgTarget {
  host: string
  port: number
  user: string
  password: string
  database: string
}

/** Open a client with short timeouts. */
export async function connect(target: PgTarget, timeoutMs = 2000): Promise<pg.Client> {
  const client = new pg.Client({ ...target, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, keepAlive: true })
  client.on('error', () => {})
  await client.connect()
  return client
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`timeout after ${ms} ms`)), ms)
    p.then((v) => (clearTimeout(t), res(v)), (e) => (clearTimeout(t), rej(e)))
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
