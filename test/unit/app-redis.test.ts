/**
 * The vote program's Redis health probe (app/redis.ts answersWithin): a client that is connected is
 * asked PING at once, one that is reconnecting is given a moment to be ready first, and one that does
 * not come back in time, or does not answer PONG, is unhealthy. The liveness watchdog exits a program whose
 * client has had no PONG for its bound, once, and never one that answers. A client ioredis ends by itself is
 * connected again; one the program closes is not.
 */
import { EventEmitter } from 'node:events'
import t from 'tap'
import {
  CONNECT_AGAIN_MS,
  answersWithin,
  closeClient,
  connectAgainWhenEnded,
  exitWhenUnanswered,
} from '../../app/redis.ts'

/** A client whose status and PING answer the test sets; `ready()` connects it as ioredis would. */
class FakeClient extends EventEmitter {
  pings = 0
  constructor(
    public status: string,
    private readonly reply: () => Promise<string>,
  ) {
    super()
  }
  ready() {
    this.status = 'ready'
    this.emit('ready')
  }
  ping() {
    this.pings++
    return this.reply()
  }
}

const pong = () => Promise.resolve('PONG')

t.test('a connected client that answers PONG is healthy at once', async (t) => {
  const client = new FakeClient('ready', pong)
  t.equal(await answersWithin(client, 500), true)
  t.equal(client.pings, 1)
})

t.test('a reconnecting client is given the moment it takes to be ready', async (t) => {
  const client = new FakeClient('reconnecting', pong)
  setTimeout(() => client.ready(), 50)
  const started = Date.now()
  t.equal(await answersWithin(client, 2000), true)
  t.ok(Date.now() - started < 1000, 'answered once ready, not after the whole wait')
  t.equal(client.listenerCount('ready'), 0, 'no listener left behind')
})

t.test('a client still not ready after the wait is unhealthy and never asked', async (t) => {
  const client = new FakeClient('reconnecting', pong)
  const started = Date.now()
  t.equal(await answersWithin(client, 100), false)
  t.ok(Date.now() - started >= 90, 'it waited')
  t.equal(client.pings, 0)
  t.equal(client.listenerCount('ready'), 0, 'no listener left behind')
})

t.test('a client whose PING fails or answers something else is unhealthy', async (t) => {
  t.equal(await answersWithin(new FakeClient('ready', () => Promise.reject(new Error('NOAUTH'))), 100), false)
  t.equal(await answersWithin(new FakeClient('ready', () => Promise.resolve('LOADING')), 100), false)
})

/** Run the watchdog on a client for `forMs` with a 10 ms tick and a 60 ms bound; the reasons it exited with. */
async function watch(ping: () => Promise<string>, forMs: number): Promise<string[]> {
  const exits: string[] = []
  const stop = exitWhenUnanswered({ ping }, 'test', (reason) => exits.push(reason), { intervalMs: 10, deadMs: 60 })
  await new Promise((resolve) => setTimeout(resolve, forMs))
  stop()
  return exits
}

t.test('the watchdog never exits a program whose client answers PONG', async (t) => {
  t.same(await watch(pong, 200), [])
})

t.test('the watchdog exits once when the client has had no PONG for its bound', async (t) => {
  const exits = await watch(() => Promise.reject(new Error("Stream isn't writeable")), 200)
  t.equal(exits.length, 1, 'exited once')
  t.match(exits[0], /^no PONG from Redis for \d+ s$/)
})

t.test('a PING that never settles counts as silence', async (t) => {
  const exits = await watch(() => new Promise<string>(() => {}), 200)
  t.equal(exits.length, 1)
})

t.test('an answer other than PONG does not count as one', async (t) => {
  t.equal((await watch(() => Promise.resolve('LOADING'), 200)).length, 1)
})

/** A client that counts its connects and ends when told, as ioredis emits `end`. */
class EndingClient extends EventEmitter {
  connects = 0
  connect() {
    this.connects++
    return Promise.resolve()
  }
  quit() {
    this.emit('end')
    return Promise.resolve('OK' as const)
  }
  disconnect() {}
}

const afterReconnectDelay = () => new Promise((resolve) => setTimeout(resolve, CONNECT_AGAIN_MS + 50))

t.test('a client that ends without being closed is connected again, saying why', async (t) => {
  const client = new EndingClient()
  const said: string[] = []
  connectAgainWhenEnded(client, (m: string) => said.push(m))
  client.emit('end')
  await afterReconnectDelay()
  t.equal(client.connects, 1)
  t.match(said, [/ended without being closed/])
})

t.test('a client the program closes is not connected again', async (t) => {
  const client = new EndingClient()
  connectAgainWhenEnded(client, () => {})
  await closeClient(client)
  await afterReconnectDelay()
  t.equal(client.connects, 0)
})
