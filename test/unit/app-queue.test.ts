/**
 * The vote worker's reliable queue (app/queue.ts) against an in-memory Redis list pair and vote
 * store: a vote leaves the processing list only after it is stored; what a dead worker left there
 * is re-processed at start, after a failed take whose reply may have been lost and after an empty take
 * (a frozen worker's client may have stopped waiting for a vote Redis moved); failures are
 * retried with a bounded backoff, and past its limit the worker stops with the vote still kept.
 */
import t from 'tap'
import { DEFAULT_BACKOFF, VoteWorker, backoffDelay, type QueueStore } from '../../app/queue.ts'
import { encodeVote, type Vote } from '../../app/vote-item.ts'

const vote = (id: string, voter = `voter-${id}`, choice: 'a' | 'b' = 'a'): Vote => ({ id, voter, choice, at: 1 })

/** Redis's two lists in memory, with failures to inject, and a clock that sleeping advances. */
class World implements QueueStore {
  queue: string[] = []
  processing: string[] = []
  rejected: string[] = []
  stored = new Map<string, Vote>()
  /** Votes stored while not in the processing list: a worker that could lose them on a crash. */
  unprotected: string[] = []
  storeFailures = 0
  takeFailures = 0
  /** A take that moves the item and then fails (its reply lost), as BLMOVE on a dropped connection. */
  loseNextTakeReply = false
  /**
   * A take that moves the item but answers "nothing": ioredis's blockingTimeout guard resolving BLMOVE
   * with null once its deadline passed while the worker was frozen, before it read Redis's reply.
   */
  answerNextTakeEmpty = false
  clock = 0
  sleeps: number[] = []
  log: string[] = []
  takes = 0
  onEmptyTake: () => void = () => {}

  async take(): Promise<string | undefined> {
    this.takes++
    if (this.takeFailures > 0) {
      this.takeFailures--
      throw new Error('Connection is closed.')
    }
    const item = this.queue.shift()
    if (item === undefined) {
      this.onEmptyTake()
      return undefined
    }
    this.processing.push(item)
    if (this.answerNextTakeEmpty) {
      this.answerNextTakeEmpty = false
      return undefined
    }
    if (this.loseNextTakeReply) {
      this.loseNextTakeReply = false
      throw new Error('Connection is closed.')
    }
    return item
  }
  async inProcessing(): Promise<string[]> {
    return [...this.processing]
  }
  async done(item: string): Promise<void> {
    const at = this.processing.indexOf(item)
    if (at >= 0) this.processing.splice(at, 1)
  }
  async reject(item: string): Promise<void> {
    this.rejected.push(item)
    await this.done(item)
  }
  store = {
    apply: async (v: Vote) => {
      if (this.storeFailures > 0) {
        this.storeFailures--
        throw new Error('terminating connection due to administrator command')
      }
      if (!this.processing.includes(encodeVote(v))) this.unprotected.push(v.id)
      this.stored.set(v.voter, v)
    },
  }
  worker(backoff = DEFAULT_BACKOFF): VoteWorker {
    return new VoteWorker(this, this.store, {
      backoff,
      sleep: async (ms) => {
        this.sleeps.push(ms)
        this.clock += ms
      },
      now: () => this.clock,
      log: (m) => this.log.push(m),
    })
  }
}

/** Run the worker until both lists are empty, then stop it. */
async function drain(world: World, worker = world.worker()): Promise<VoteWorker> {
  world.onEmptyTake = () => {
    if (world.processing.length === 0) worker.stop()
  }
  await worker.run()
  return worker
}

t.test('a vote is stored, then removed from the processing list', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')), encodeVote(vote('2', 'v2', 'b')))
  const worker = await drain(world)
  t.same([...world.stored.keys()], ['voter-1', 'v2'])
  t.same(world.processing, [])
  t.same(world.unprotected, [], 'every vote was still in the processing list while it was stored')
  t.equal(worker.processed, 2)
})

t.test('what a dead worker left in the processing list is re-processed before new votes', async (t) => {
  const world = new World()
  world.processing.push(encodeVote(vote('left')))
  world.queue.push(encodeVote(vote('new')))
  const order: string[] = []
  const apply = world.store.apply
  world.store.apply = async (v) => {
    order.push(v.id)
    await apply(v)
  }
  await drain(world)
  t.same(order, ['left', 'new'])
  t.same(world.processing, [])
  t.match(world.log, [/re-processing 1 item/])
})

t.test('a PostgreSQL failure is retried with a growing wait and the vote is kept until stored', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')))
  world.storeFailures = 4
  await drain(world)
  t.same(world.sleeps, [100, 200, 400, 800])
  t.ok(world.stored.has('voter-1'))
  t.same(world.processing, [])
})

t.test('a take whose reply was lost leaves the vote in processing, and the worker recovers it', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')))
  world.loseNextTakeReply = true
  await drain(world)
  t.ok(world.stored.has('voter-1'), 'the vote moved by the failed take is stored')
  t.same(world.processing, [])
  t.same(world.sleeps, [100], 'one wait before the take is tried again')
})

t.test('a take answered empty after Redis moved a vote (a frozen worker) does not strand it', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')))
  world.answerNextTakeEmpty = true
  await drain(world)
  t.ok(world.stored.has('voter-1'), 'the vote moved by the take answered empty is stored')
  t.same(world.processing, [], 'nothing is left in the processing list')
  t.match(world.log, [/re-processing 1 item/])
})

t.test('an idle worker finds nothing to re-process and stores nothing twice', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')))
  let empties = 0
  const worker = world.worker()
  world.onEmptyTake = () => {
    if (++empties === 3) worker.stop()
  }
  const applied: string[] = []
  const apply = world.store.apply
  world.store.apply = async (v) => {
    applied.push(v.id)
    await apply(v)
  }
  await worker.run()
  t.same(applied, ['1'], 'the vote was applied once')
  t.same(world.log, [], 'no re-processing was logged')
})

t.test('past the retry limit the worker stops, and the vote stays in the processing list', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')))
  world.storeFailures = 1000
  const worker = world.worker({ firstMs: 100, maxMs: 1000, limitMs: 5000 })
  world.onEmptyTake = () => worker.stop()
  await t.rejects(worker.run(), /storing vote 1: still failing after 5 s/)
  t.same(world.processing, [encodeVote(vote('1'))], 'kept for the next start')
  t.ok(
    world.sleeps.every((ms) => ms <= 1000),
    'no single wait longer than maxMs',
  )
  t.equal(world.stored.size, 0)
})

t.test('an item that is not a vote is set aside, not stored and not lost', async (t) => {
  const world = new World()
  world.queue.push('not json', encodeVote(vote('1')))
  await drain(world)
  t.same(world.rejected, ['not json'])
  t.same([...world.stored.keys()], ['voter-1'])
  t.same(world.processing, [])
})

t.test('asked to stop while waiting to retry, the worker ends with the vote still kept', async (t) => {
  const world = new World()
  world.queue.push(encodeVote(vote('1')))
  world.storeFailures = 1000
  const worker = world.worker()
  world.store.apply = async () => {
    worker.stop()
    throw new Error('no primary')
  }
  await t.rejects(worker.run(), { name: 'Stopped' })
  t.same(world.processing, [encodeVote(vote('1'))])
})

t.test('the backoff doubles from its first wait and never exceeds its cap', async (t) => {
  const backoff = { firstMs: 100, maxMs: 3000, limitMs: 60_000 }
  t.same(
    [0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelay(backoff, n)),
    [100, 200, 400, 800, 1600, 3000, 3000, 3000],
  )
})
