/**
 * The worker's reliable queue, apart from Redis and PostgreSQL so it can be tested with fakes.
 * A vote is moved from the queue to the processing list (BLMOVE), applied to PostgreSQL, and only
 * then removed from the processing list (LREM): a worker that dies between the two leaves it there,
 * and every worker re-processes the processing list when it starts, after any Redis error (a
 * BLMOVE whose reply was lost) and after a take that came back empty (the client's guard on a
 * blocking command answers "nothing" once its deadline passes, even when Redis moved an item and its
 * reply is on the way: a worker frozen or starved past the deadline). Applying a vote twice changes
 * nothing (the upsert is keyed by the vote's id), so re-processing is safe even for an item another
 * worker is handling. Failures are
 * retried with a bounded exponential backoff; past its limit the worker stops (systemd starts it
 * again) and the item stays in the processing list: a vote taken is never dropped.
 */
import { decodeVote, type Vote } from './vote-item.ts'

export interface QueueStore {
  /** Move the oldest queued item to the processing list, waiting up to `timeoutS`; undefined when none came. */
  take(timeoutS: number): Promise<string | undefined>
  /** The items in the processing list, oldest first. */
  inProcessing(): Promise<string[]>
  /** Remove one occurrence of the item from the processing list. */
  done(item: string): Promise<void>
  /** Keep an item that is not a vote aside (for a human to look at) and remove it from the processing list. */
  reject(item: string): Promise<void>
}

export interface VoteStore {
  /** Store the vote (idempotent for one vote id); resolves once committed. */
  apply(vote: Vote): Promise<void>
}

export interface Backoff {
  /** First wait after a failure, ms; doubled after each further failure. */
  firstMs: number
  /** Longest single wait, ms. */
  maxMs: number
  /** Give up once failures have lasted this long, ms. */
  limitMs: number
}

export const DEFAULT_BACKOFF: Backoff = { firstMs: 100, maxMs: 3000, limitMs: 120_000 }

export interface WorkerOptions {
  backoff?: Backoff
  /** How long one BLMOVE waits for a vote, s. */
  takeTimeoutS?: number
  sleep?: (ms: number) => Promise<void>
  now?: () => number
  log?: (message: string) => void
}

/** Thrown when the worker was asked to stop while it waited to retry. */
export class Stopped extends Error {
  override name = 'Stopped'
}

/** The wait before retry number `attempt` (0-based): exponential from firstMs, capped at maxMs. */
export function backoffDelay(backoff: Backoff, attempt: number): number {
  return Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(attempt, 30))
}

export class VoteWorker {
  private stopping = false
  private readonly backoff: Backoff
  private readonly takeTimeoutS: number
  private readonly sleep: (ms: number) => Promise<void>
  private readonly now: () => number
  private readonly log: (message: string) => void
  /** Votes applied and removed from the processing list since the start. */
  processed = 0

  constructor(
    private readonly queue: QueueStore,
    private readonly store: VoteStore,
    options: WorkerOptions = {},
  ) {
    this.backoff = options.backoff ?? DEFAULT_BACKOFF
    this.takeTimeoutS = options.takeTimeoutS ?? 2
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
    this.now = options.now ?? Date.now
    this.log = options.log ?? ((message) => console.log(message))
  }

  /** Ask the loop to end after the item in hand. */
  stop(): void {
    this.stopping = true
  }

  /**
   * Run `fn` until it succeeds, waiting longer after each failure; throws its last error once the
   * failures have lasted `limitMs`, and Stopped when asked to stop in between.
   */
  async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const started = this.now()
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn()
      } catch (error) {
        const message = (error as Error).message
        if (this.now() - started >= this.backoff.limitMs) {
          const seconds = Math.round(this.backoff.limitMs / 1000)
          throw new Error(`${what}: still failing after ${seconds} s: ${message}`, { cause: error })
        }
        const wait = backoffDelay(this.backoff, attempt)
        this.log(`${what} failed (${message}), retrying in ${wait} ms`)
        await this.sleep(wait)
        if (this.stopping) throw new Stopped(`${what}: stopped while retrying`)
      }
    }
  }

  /** Apply one item taken from the queue, then remove it from the processing list. */
  async handle(item: string): Promise<void> {
    const vote = decodeVote(item)
    if (!vote) {
      this.log(`an item that is not a vote was set aside: ${item.slice(0, 200)}`)
      await this.retry('setting an item aside', () => this.queue.reject(item))
      return
    }
    await this.retry(`storing vote ${vote.id}`, () => this.store.apply(vote))
    await this.retry(`removing vote ${vote.id} from the processing list`, () => this.queue.done(item))
    this.processed++
  }

  /** Re-process every item left in the processing list; returns how many there were. */
  async recover(): Promise<number> {
    const left = await this.retry('reading the processing list', () => this.queue.inProcessing())
    if (left.length) this.log(`re-processing ${left.length} item(s) left in the processing list`)
    for (const item of left) {
      if (this.stopping) break
      await this.handle(item)
    }
    return left.length
  }

  /**
   * The main loop: recover, then take and handle votes until stopped. A failed take may have moved
   * an item whose reply was lost, and an empty one may have moved an item its client stopped waiting
   * for, so the processing list is recovered again after either.
   */
  async run(): Promise<void> {
    await this.recover()
    while (!this.stopping) {
      let takeFailed = false
      const item = await this.retry('taking a vote from the queue', async () => {
        try {
          return await this.queue.take(this.takeTimeoutS)
        } catch (error) {
          takeFailed = true
          throw error
        }
      }).catch((error: unknown) => {
        if (error instanceof Stopped) return undefined
        throw error
      })
      if (this.stopping && item === undefined) break
      if (item !== undefined) await this.handle(item)
      if ((takeFailed || item === undefined) && !this.stopping) await this.recover()
    }
  }
}
