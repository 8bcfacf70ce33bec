/**
 * Sending the votes: `POST /vote` with a fresh voter id per request (the run's prefix and a
 * sequence number), at the schedule of pacing.ts, with at most `maxInFlight` requests open (a
 * request due while that many are open is not sent and is recorded as failed, `in-flight limit`)
 * and each one ended after `timeoutMs`. Each vote carries its own id (a UUID, the app's idempotency key): a
 * request whose connection was cut or refused before any answer (a VIP moving between the load balancers cuts
 * the connections open at that moment) is sent again once, the same vote with the same id, so the app applies
 * it once; the record says so (`retried`). Returns one record per planned request.
 */
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { dueAtMs, dueBy, plannedRequests } from './pacing.ts'
import type { RequestRecord } from './stats.ts'
import type { HostPort } from './target.ts'

export interface GeneratorOptions {
  target: HostPort
  rate: number
  durationS: number
  /** Voter ids are `<prefix>-<n>`. */
  prefix: string
  timeoutMs: number
  maxInFlight: number
  /** Told about every finished request (progress output, tests). */
  onRecord?: (record: RequestRecord) => void
  /** Sends no more votes once aborted (the run still ends by `durationS` at the latest). */
  stop?: AbortSignal
}

/** A vote's acknowledgement: 201 with `{"ok": true, "id": ...}`. */
function acknowledgedId(status: number, body: string): string | undefined {
  if (status !== 201) return undefined
  try {
    const parsed = JSON.parse(body) as { ok?: unknown; id?: unknown }
    return parsed.ok === true && parsed.id !== undefined && parsed.id !== null ? String(parsed.id) : undefined
  } catch {
    return undefined
  }
}

/** Errors of a connection cut or refused before any answer came: the vote is sent again, once. */
const CUT_BEFORE_ANSWER = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE'])

/** How long after a cut connection the vote is sent again. */
const RESEND_AFTER_MS = 100

/**
 * One vote, never rejecting: the outcome is in the record. A connection cut before any answer sends the same vote
 * (same id) once more, within what is left of `timeoutMs`.
 */
async function sendVote(agent: http.Agent, o: GeneratorOptions, voter: string, choice: string, startMs: number) {
  const payload = JSON.stringify({ voter, choice, id: randomUUID() })
  const began = performance.now()
  const first = await sendOnce(agent, o, payload, o.timeoutMs)
  const left = o.timeoutMs - (performance.now() - began) - RESEND_AFTER_MS
  if (first.outcome !== 'error' || !CUT_BEFORE_ANSWER.has(first.reason ?? '') || left <= 0)
    return { voter, startMs, latencyMs: performance.now() - began, ...first }
  await new Promise((resolve) => setTimeout(resolve, RESEND_AFTER_MS))
  const second = await sendOnce(agent, o, payload, left)
  return { voter, startMs, latencyMs: performance.now() - began, ...second, retried: first.reason }
}

type Attempt = Omit<RequestRecord, 'voter' | 'startMs' | 'latencyMs'>

/** One POST of the payload, bounded by `timeoutMs`, never rejecting. */
function sendOnce(agent: http.Agent, o: GeneratorOptions, payload: string, timeoutMs: number): Promise<Attempt> {
  return new Promise<Attempt>((done) => {
    let finished = false
    const finish = (fields: Attempt) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      done(fields)
    }
    const request = http.request(
      {
        agent,
        host: o.target.host,
        port: o.target.port,
        method: 'POST',
        path: '/vote',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk
        })
        response.on('error', (e) =>
          finish({ outcome: 'error', reason: (e as NodeJS.ErrnoException).code ?? e.message }),
        )
        response.on('end', () => {
          const status = response.statusCode ?? 0
          const id = acknowledgedId(status, body)
          finish(id ? { outcome: 'acknowledged', status, id } : { outcome: 'rejected', status, reason: String(status) })
        })
      },
    )
    const timer = setTimeout(() => {
      finish({ outcome: 'timeout', reason: 'timeout' })
      request.destroy()
    }, timeoutMs)
    request.on('error', (e) => finish({ outcome: 'error', reason: (e as NodeJS.ErrnoException).code ?? e.message }))
    request.end(payload)
  })
}

/** Send the run's votes and wait for every one to end (each bounded by the timeout). */
export async function generateVotes(o: GeneratorOptions): Promise<RequestRecord[]> {
  const total = plannedRequests(o.rate, o.durationS)
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.maxInFlight })
  const records: RequestRecord[] = new Array(total)
  const pending = new Set<Promise<void>>()
  const started = performance.now()
  let next = 0
  const launch = (index: number) => {
    const voter = `${o.prefix}-${index}`
    const startMs = performance.now() - started
    if (pending.size >= o.maxInFlight) {
      records[index] = { voter, startMs, latencyMs: 0, outcome: 'skipped', reason: 'in-flight limit' }
      o.onRecord?.(records[index])
      return
    }
    const sent = sendVote(agent, o, voter, index % 2 === 0 ? 'a' : 'b', startMs).then((record) => {
      records[index] = record
      pending.delete(sent)
      o.onRecord?.(record)
    })
    pending.add(sent)
  }
  const stopped = () => o.stop?.aborted === true
  try {
    while (next < total && !stopped()) {
      const due = dueBy(performance.now() - started, o.rate, total)
      while (next < due) launch(next++)
      if (next < total) {
        const wait = Math.max(0, started + dueAtMs(next, o.rate) - performance.now())
        await new Promise((resolve) => setTimeout(resolve, wait))
      }
    }
    await Promise.all(pending)
  } finally {
    agent.destroy()
  }
  return records.slice(0, next)
}
