/**
 * The worker program: moves votes from the Redis queue into PostgreSQL through HAProxy's write
 * port, one row per voter, with the reliable-queue loop of queue.ts (BLMOVE to a processing list,
 * upsert, LREM; the processing list re-processed at start). Creates the votes table at start when
 * it is missing. SIGTERM ends the loop after the vote in hand.
 */
import { configOrExit } from './config.ts'
import { applyVote, ensureSchema, pool } from './db.ts'
import { PROCESSING_KEY, QUEUE_KEY, REJECTED_KEY, closeClient, exitWhenUnanswered, sentinelClient } from './redis.ts'
import { Stopped, VoteWorker, type QueueStore } from './queue.ts'

const config = configOrExit('worker')
const redis = sentinelClient(config)
const blocking = sentinelClient(config, { blocking: true })
const postgres = pool(config, config.postgres.writePort, 2)
// Both clients watched: the blocking one answers PING between two BLMOVEs (each at most a few seconds).
const stopWatchdogs = [exitWhenUnanswered(redis, 'worker'), exitWhenUnanswered(blocking, 'worker')]

const queue: QueueStore = {
  async take(timeoutS) {
    const item = await blocking.blmove(QUEUE_KEY, PROCESSING_KEY, 'LEFT', 'RIGHT', timeoutS)
    return item ?? undefined
  },
  inProcessing: () => redis.lrange(PROCESSING_KEY, 0, -1),
  async done(item) {
    await redis.lrem(PROCESSING_KEY, 1, item)
  },
  async reject(item) {
    await redis.rpush(REJECTED_KEY, item)
    await redis.lrem(PROCESSING_KEY, 1, item)
  },
}

const worker = new VoteWorker(queue, { apply: (vote) => applyVote(postgres, vote) })

async function close(): Promise<void> {
  for (const stop of stopWatchdogs) stop()
  await Promise.allSettled([closeClient(redis), closeClient(blocking), postgres.end()])
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    console.log(`worker: ${signal}, stopping after the vote in hand`)
    worker.stop()
    setTimeout(() => process.exit(1), 10_000).unref()
  })
}

async function main(): Promise<number> {
  try {
    await worker.retry('creating the votes table', () => ensureSchema(postgres))
    console.log('worker: votes table ready, taking votes')
    await worker.run()
    console.log(`worker: stopped after ${worker.processed} vote(s)`)
    await close()
    return 0
  } catch (error) {
    if (error instanceof Stopped) {
      console.log(`worker: ${error.message}; what is in hand stays in the processing list`)
      await close()
      return 0
    }
    console.error(`worker: ${(error as Error).message}`)
    await close()
    return 1
  }
}

main().then((code) => process.exit(code))
