/**
 * Redis for the vote app: a client of the primary the Sentinels name (ioredis in Sentinel mode,
 * authenticated to Sentinels and Redis, over TLS checked against the stack's CA when the configuration
 * names its file), which follows a failover by itself (told by the Sentinels' `+switch-master`,
 * reconnecting every 300 ms at most meanwhile). Commands are never
 * queued while disconnected: they fail at once, so the vote program answers 503 instead of waiting.
 * A health check waits a moment for a reconnect (`answersWithin`). The queue's key names live here too.
 */
import type { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import type { AppConfig } from './config.ts'

/** The list the vote program appends to and the worker takes from. */
export const QUEUE_KEY = 'votes'
/** The worker's processing list: votes taken but not yet committed to PostgreSQL. */
export const PROCESSING_KEY = 'votes:processing'
/** Items that were not votes, kept for a human to look at. */
export const REJECTED_KEY = 'votes:rejected'

export interface ClientOptions {
  /** For a client that runs blocking commands (BLMOVE): no command timeout, a socket guard instead. */
  blocking?: boolean
}

/** ioredis' TLS options for Sentinel mode: the Sentinels and the primary they name, both over TLS. */
function tlsOptions(caFile: string | undefined): Partial<RedisOptions> {
  if (caFile === undefined) return {}
  const ca = readFileSync(caFile)
  return { tls: { ca }, sentinelTLS: { ca }, enableTLSForSentinelMode: true }
}

export function sentinelClient(config: AppConfig, options: ClientOptions = {}): Redis {
  const r = config.redis
  const client = new Redis({
    sentinels: r.sentinels,
    name: r.masterName,
    role: 'master',
    password: r.password,
    sentinelPassword: r.sentinelPassword,
    ...tlsOptions(r.tlsCaFile),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    ...(options.blocking ? { blockingTimeout: 1000 } : { commandTimeout: r.waitTimeoutMs + 2000 }),
    // While the primary is down (a failover takes 2-4 s) reconnecting every 300 ms at most, so the new
    // primary is reached soon after the Sentinels name it, not after a back-off grown to seconds.
    retryStrategy: (times) => Math.min(100 * times, 300),
    sentinelRetryStrategy: (times) => Math.min(100 * times, 2000),
    // Subscribed to the Sentinels' +switch-master: a failover drops the connection (or a connect hanging
    // on a dead primary) at once, and the reconnect asks the Sentinels for the new primary.
    failoverDetector: true,
    // A primary demoted under us answers READONLY: reconnect, which asks the Sentinels again.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  })
  client.on('error', (error: Error) => console.error(`redis: ${error.message}`))
  return client
}

/** What `answersWithin` needs of a client: its connection status, its `ready` event and PING. */
export interface Pingable extends Pick<EventEmitter, 'once' | 'off'> {
  readonly status: string
  ping(): Promise<string>
}

/**
 * Whether the client answers PING, waiting up to `waitMs` for it to be connected first. A change of
 * primary makes it reconnect, twice in a planned switchover (each Sentinel's `+switch-master`, about
 * a second apart); a health check that caught it in between called a working program down, and since
 * HAProxy's checks are a second apart too, it took two checks in a row on every app host at once: no
 * vote server left, votes answered 503 by HAProxy before the app's own retry could ride it out.
 */
export async function answersWithin(client: Pingable, waitMs: number): Promise<boolean> {
  if (client.status !== 'ready') {
    const ready = await new Promise<boolean>((resolve) => {
      const onReady = () => settle(true)
      const timer = setTimeout(() => settle(false), waitMs)
      function settle(value: boolean) {
        clearTimeout(timer)
        client.off('ready', onReady)
        resolve(value)
      }
      client.once('ready', onReady)
    })
    if (!ready) return false
  }
  return client.ping().then(
    (reply) => reply === 'PONG',
    () => false,
  )
}
