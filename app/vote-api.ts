/**
 * The vote program's HTTP answers, apart from Redis so they can be tested with a fake queue:
 * `POST /vote` checks the body, gives the vote an id and answers 201 only once the queue has
 * accepted it (503 when it refused or timed out: never a 2xx for a vote that is not stored);
 * `GET /` the voting page; `GET /healthz` 200 while the queue answers.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BodyTooLarge, pathOf, readBody, sendHtml, sendJson, type Handler } from './http.ts'
import { votePage } from './pages.ts'
import { backoffDelay, type Backoff } from './queue.ts'
import { encodeVote, type Vote } from './vote-item.ts'

/** Where accepted votes go: the Redis list the worker reads. */
export interface VoteQueue {
  /** Resolves once the vote is stored (as the queue defines it); rejects otherwise. */
  push(item: string): Promise<void>
  /** Whether the queue answers now. */
  healthy(): Promise<boolean>
}

/**
 * A queue whose push is retried with backoff until `backoff.limitMs` has passed since the first
 * try: a switchover or failover refuses or cuts a push for a few seconds, and the client should not
 * see that. The vote keeps its id, so a push that did land and is tried again only queues a copy
 * the worker applies once (its upsert is keyed by the id).
 */
export function retryingQueue(
  queue: VoteQueue,
  backoff: Backoff,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  clock: () => number = () => performance.now(),
): VoteQueue {
  return {
    async push(item) {
      const started = clock()
      for (let attempt = 0; ; attempt++) {
        try {
          return await queue.push(item)
        } catch (error) {
          const wait = backoffDelay(backoff, attempt)
          if (clock() - started + wait > backoff.limitMs) throw error
          await sleep(wait)
        }
      }
    },
    healthy: () => queue.healthy(),
  }
}

const VOTER = /^[A-Za-z0-9_.:@-]{1,128}$/
/** A vote id a client may choose (its idempotency key): a UUID, lower-case. */
const VOTE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * The vote in a request body, or the reason it is refused. A client may send the vote's `id` (a UUID): sent again
 * after a cut connection, the same vote is then applied once (the worker's upsert keeps a voter's vote with the
 * same id); without one the program draws it.
 */
export function parseVoteRequest(body: string): { voter: string; choice: 'a' | 'b'; id?: string } | { error: string } {
  let data: unknown
  try {
    data = JSON.parse(body)
  } catch {
    return { error: 'the body is not JSON' }
  }
  if (typeof data !== 'object' || data === null) return { error: 'the body is not a JSON object' }
  const { voter, choice, id } = data as Record<string, unknown>
  if (typeof voter !== 'string' || !VOTER.test(voter))
    return { error: 'voter must be 1 to 128 letters, digits or _ . : @ -' }
  if (choice !== 'a' && choice !== 'b') return { error: 'choice must be "a" or "b"' }
  if (id === undefined) return { voter, choice }
  if (typeof id !== 'string' || !VOTE_ID.test(id)) return { error: 'id must be a lower-case UUID' }
  return { voter, choice, id }
}

async function postVote(req: IncomingMessage, res: ServerResponse, queue: VoteQueue, now: () => number) {
  let body: string
  try {
    body = await readBody(req)
  } catch (error) {
    if (error instanceof BodyTooLarge) return sendJson(res, 413, { ok: false, error: error.message })
    throw error
  }
  const parsed = parseVoteRequest(body)
  if ('error' in parsed) return sendJson(res, 400, { ok: false, error: parsed.error })
  const vote: Vote = { id: parsed.id ?? randomUUID(), voter: parsed.voter, choice: parsed.choice, at: now() }
  try {
    await queue.push(encodeVote(vote))
  } catch (error) {
    console.error(`vote ${vote.id} not stored: ${(error as Error).message}`)
    return sendJson(res, 503, { ok: false, error: 'the vote could not be stored, try again' })
  }
  sendJson(res, 201, { ok: true, id: vote.id })
}

/** The vote program's request handler. */
export function voteHandler(queue: VoteQueue, now: () => number = Date.now): Handler {
  return async (req, res) => {
    const path = pathOf(req)
    if (path === '/vote') {
      if (req.method !== 'POST') return sendJson(res, 405, { ok: false, error: 'use POST' })
      return postVote(req, res, queue, now)
    }
    if (path === '/healthz') {
      const up = await queue.healthy()
      return sendJson(res, up ? 200 : 503, { ok: up })
    }
    if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) return sendHtml(res, votePage())
    sendJson(res, 404, { ok: false, error: 'not found' })
  }
}
