/**
 * Redis for the vote app: a client of the primary the Sentinels name (ioredis in Sentinel mode,
 * authenticated to Sentinels and Redis, over TLS checked against the stack's CA when the configuration
 * names its file), which follows a failover by itself (told by the Sentinels' `+switch-master`,
 * reconnecting every 300 ms at most meanwhile). Commands are never
 * queued while disconnected: they fail at once, so the vote program answers 503 instead of waiting.
 * A client that ioredis ends by itself is connected again (`connectAgainWhenEnded`). A health check waits a
 * moment for a reconnect (`answersWithin`). A program whose client has not had a PONG
 * for a minute exits, so systemd starts it with a fresh client (`exitWhenUnanswered`): the last resort for a
 * client stuck where ioredis never retries. The queue's key names live here too.
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
    // A Sentinel that took the connection but does not answer (a host stopping) must not hold the
    // reconnect forever: ioredis sets no timeout on the Sentinel's commands otherwise.
    sentinelCommandTimeout: 2000,
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
  connectAgainWhenEnded(client)
  return client
}

/** Clients this program is closing (`closeClient`): their end is asked for. */
const closing = new WeakSet<object>()

/** Close a client for good (`QUIT`, or a disconnect when that fails): its end is not connected again. */
export async function closeClient(client: { quit(): Promise<unknown>; disconnect(): void }): Promise<void> {
  closing.add(client)
  await client.quit().catch(() => client.disconnect())
}

/** How long after an unasked end the client connects again. */
export const CONNECT_AGAIN_MS = 100

/**
 * ioredis 5 ends a Sentinel-mode client for good when a failover is announced (`+switch-master`, its failover
 * detector) while the client is asking the Sentinels during a reconnect: the detector closes the connector, the
 * resolve in flight fails with "Connection is closed." and the client goes to `end`, never to reconnect.
 * Measured in the lab (a Redis primary killed under load: the vote program stopped asking at once and stayed
 * down). Any end this program did not ask for (`closeClient`) is followed by a new connect.
 */
export function connectAgainWhenEnded(
  client: { on(event: 'end', listener: () => void): unknown; connect(): Promise<void> },
  log = console.error,
): void {
  client.on('end', () => {
    if (closing.has(client)) return
    log(`redis: the client ended without being closed (a failover announced during its reconnect): connecting again`)
    setTimeout(() => {
      if (!closing.has(client)) client.connect().catch(() => undefined)
    }, CONNECT_AGAIN_MS).unref()
  })
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

/** How often the watchdog pings, and how long without a PONG before the program exits. */
export const WATCHDOG = { intervalMs: 5000, deadMs: 60_000 }

/**
 * The liveness watchdog: PING the client every `intervalMs` (one at a time); when no PONG came for `deadMs`
 * (a client stuck connecting, or connected to a peer that never answers), log why and call `exit`, so that
 * systemd (`Restart=always`) starts the program with a fresh client. A Redis down for a minute only restarts the
 * program, which answers 503 either way. Returns the stop function (the timer does not keep the process alive).
 */
export function exitWhenUnanswered(
  client: Pick<Pingable, 'ping'>,
  program: string,
  exit: (reason: string) => void = (reason) => {
    console.error(`${program}: ${reason}; exiting so that systemd starts it again with a fresh Redis client`)
    process.exit(1)
  },
  { intervalMs, deadMs } = WATCHDOG,
  now: () => number = Date.now,
): () => void {
  let lastPong = now()
  let asking = false
  const timer = setInterval(() => {
    // Checked on every tick, so a PING that never settles counts as silence too.
    const silentMs = now() - lastPong
    if (silentMs >= deadMs) {
      clearInterval(timer)
      exit(`no PONG from Redis for ${Math.round(silentMs / 1000)} s`)
      return
    }
    if (asking) return
    asking = true
    client.ping().then(
      (reply) => {
        asking = false
        if (reply === 'PONG') lastPong = now()
      },
      () => {
        asking = false
      },
    )
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
