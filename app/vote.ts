/**
 * The vote program: HTTP on APP_VOTE_PORT (see vote-api.ts). A vote is appended to the Redis list
 * the worker reads, on the primary the Sentinels name, and acknowledged (201) only when Redis
 * accepted it and, with APP_REDIS_WAIT_REPLICAS > 0, that many replicas hold it too (WAIT): a
 * failover right after the answer does not lose it. A push refused or cut while the primary changes
 * is tried again, with backoff, for up to APP_VOTE_RETRY_MS before the answer is 503.
 */
import { configOrExit } from './config.ts'
import { drainOnSignal, httpServer, listen } from './http.ts'
import { QUEUE_KEY, answersWithin, closeClient, exitWhenUnanswered, sentinelClient } from './redis.ts'
import { retryingQueue, voteHandler, type VoteQueue } from './vote-api.ts'

const config = configOrExit('vote')
const redis = sentinelClient(config)
const { waitReplicas, waitTimeoutMs } = config.redis
/** Pushes refused or cut by a change of primary are tried again for up to APP_VOTE_RETRY_MS. */
const RETRY = { firstMs: 100, maxMs: 500, limitMs: config.voteRetryMs }
/** How long /healthz waits for Redis to reconnect: under HAProxy's `timeout check` (2 s, haproxy.cfg). */
const HEALTH_READY_WAIT_MS = 1500

const queue: VoteQueue = {
  async push(item) {
    await redis.rpush(QUEUE_KEY, item)
    if (waitReplicas === 0) return
    const copies = await redis.wait(waitReplicas, waitTimeoutMs)
    if (copies < waitReplicas) throw new Error(`${copies} of ${waitReplicas} replica(s) acknowledged in time`)
  },
  healthy: () => answersWithin(redis, HEALTH_READY_WAIT_MS),
}

async function main(): Promise<void> {
  const server = httpServer(voteHandler(retryingQueue(queue, RETRY)))
  await listen(server, config.votePort, config.listenAddress)
  console.log(`vote: listening on ${config.listenAddress}:${config.votePort}`)
  const stopWatchdog = exitWhenUnanswered(redis, 'vote')
  drainOnSignal('vote', [server], async () => {
    stopWatchdog()
    await closeClient(redis)
  })
}

main().catch((error: unknown) => {
  console.error(`vote: ${(error as Error).message}`)
  process.exit(1)
})
