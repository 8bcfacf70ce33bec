/**
 * The vote program's Redis health probe (app/redis.ts answersWithin): a client that is connected is
 * asked PING at once, one that is reconnecting is given a moment to be ready first, and one that does
 * not come back in time, or does not answer PONG, is unhealthy.
 */
import { EventEmitter } from 'node:events'
import t from 'tap'
import { answersWithin } from '../../app/redis.ts'

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
