/**
 * The vote app's HTTP answers and configuration, on loopback with fake Redis and PostgreSQL sides:
 * a vote is answered 201 with its id only once the queue accepted it, 503 when the queue refused or
 * timed out, 400/405/413 for bad requests; results come from a replica or else the primary, 503
 * when neither answers; /healthz follows the backing store; a bad environment is refused by name;
 * an env-file value reaches systemd exactly.
 */
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../app/config.ts'
import { httpServer, listen } from '../../app/http.ts'
import { firstAnswer, resultHandler, type CountReader } from '../../app/result-api.ts'
import { retryingQueue, voteHandler, type VoteQueue } from '../../app/vote-api.ts'
import { decodeVote } from '../../app/vote-item.ts'
import { systemdEnvValue } from '../../lib/config-quote.ts'
import type { Handler } from '../../app/http.ts'

/** Serve `handler` on a loopback port for the test; returns a fetch bound to it. */
async function serve(t: Test, handler: Handler) {
  const server = httpServer(handler)
  await listen(server, 0, '127.0.0.1')
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  const { port } = server.address() as AddressInfo
  return (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init)
}

/** A queue that stores what it is given, or fails as told. */
function fakeQueue(fail?: Error): VoteQueue & { items: string[] } {
  const items: string[] = []
  return {
    items,
    async push(item) {
      if (fail) throw fail
      items.push(item)
    },
    healthy: async () => fail === undefined,
  }
}

const post = (body: string) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body })

t.test('a vote is answered 201 with its id once the queue holds it', async (t) => {
  const queue = fakeQueue()
  const get = await serve(
    t,
    voteHandler(queue, () => 1234),
  )
  const r = await get('/vote', post('{"voter":"alice","choice":"b"}'))
  t.equal(r.status, 201)
  const body = (await r.json()) as { ok: boolean; id: string }
  t.equal(body.ok, true)
  t.same(queue.items.map(decodeVote), [{ id: body.id, voter: 'alice', choice: 'b', at: 1234 }])
})

t.test("a vote sent with the client's own id keeps it; an id that is not a UUID is refused with 400", async (t) => {
  const queue = fakeQueue()
  const get = await serve(t, voteHandler(queue))
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e'
  const r = await get('/vote', post(JSON.stringify({ voter: 'bob', choice: 'a', id })))
  t.equal(r.status, 201)
  t.same(await r.json(), { ok: true, id })
  t.equal(decodeVote(queue.items[0]!)?.id, id, 'the queued vote carries it')
  for (const bad of ['x', 42, '0F8FAD5B-D9CB-469F-A165-70867728950E'])
    t.equal((await get('/vote', post(JSON.stringify({ voter: 'bob', choice: 'a', id: bad })))).status, 400)
  t.equal(queue.items.length, 1, 'nothing queued for a refused one')
})

t.test('a vote the queue refused or timed out on is answered 503, never 2xx', async (t) => {
  for (const reason of ['NOREPLICAS Not enough good replicas to write.', 'Command timed out']) {
    const get = await serve(t, voteHandler(fakeQueue(new Error(reason))))
    const r = await get('/vote', post('{"voter":"alice","choice":"a"}'))
    t.equal(r.status, 503, reason)
    t.match(await r.json(), { ok: false })
  }
})

t.test('refuses bad votes with 400, other methods with 405 and large bodies with 413', async (t) => {
  const queue = fakeQueue()
  const get = await serve(t, voteHandler(queue))
  for (const [body, error] of [
    ['not json', /not JSON/],
    ['[1]', /voter must be/],
    ['{"voter":"alice","choice":"c"}', /choice must be "a" or "b"/],
    ['{"voter":"a b","choice":"a"}', /voter must be/],
    [`{"voter":"${'x'.repeat(129)}","choice":"a"}`, /voter must be/],
  ] as const) {
    const r = await get('/vote', post(body))
    t.equal(r.status, 400, body.slice(0, 40))
    t.match(await r.json(), { ok: false, error })
  }
  t.equal((await get('/vote')).status, 405)
  t.equal((await get('/vote', post(`{"voter":"${'x'.repeat(5000)}"}`))).status, 413)
  t.equal((await get('/nothing')).status, 404)
  t.same(queue.items, [], 'nothing was queued')
})

t.test('the vote page has its two buttons, and /healthz follows the queue', async (t) => {
  const get = await serve(t, voteHandler(fakeQueue()))
  const page = await (await get('/')).text()
  t.match(page, /id="vote-a"[\s\S]*id="vote-b"/)
  t.equal((await get('/healthz')).status, 200)
  const down = await serve(t, voteHandler(fakeQueue(new Error('no primary'))))
  t.equal((await down('/healthz')).status, 503)
})

t.test('results come from the first database that answers, 503 when none does', async (t) => {
  const replicaDown = () => Promise.reject(new Error('Connection terminated unexpectedly'))
  const primary = () => Promise.resolve({ a: 2, b: 1, total: 3 })
  t.same(await firstAnswer([replicaDown, primary]), { a: 2, b: 1, total: 3 }, 'the primary when no replica answers')
  let reader: CountReader = { counts: () => firstAnswer([replicaDown, primary]), healthy: async () => true }
  const get = await serve(t, resultHandler({ counts: () => reader.counts(), healthy: () => reader.healthy() }))
  const r = await get('/results')
  t.equal(r.status, 200)
  t.same(await r.json(), { a: 2, b: 1, total: 3 })
  t.match(await (await get('/')).text(), /id="total"/)
  reader = { counts: () => firstAnswer([replicaDown, replicaDown]), healthy: async () => false }
  t.equal((await get('/results')).status, 503)
  t.equal((await get('/healthz')).status, 503)
  const noTable = Object.assign(new Error('relation "votes" does not exist'), { code: '42P01' })
  reader = { counts: () => Promise.reject(noTable), healthy: async () => true }
  const missing = await get('/results')
  t.equal(missing.status, 503)
  t.match(await missing.json(), { error: 'no votes table yet' })
})

/** A queue that refuses its first `failures` pushes, then stores; with a clock the sleeps advance. */
function flakyQueue(failures: number) {
  const clock = { now: 0, sleeps: [] as number[] }
  const inner = fakeQueue()
  let tries = 0
  const queue: VoteQueue = {
    async push(item) {
      tries++
      if (tries <= failures) throw new Error(`READONLY try ${tries}`)
      await inner.push(item)
    },
    healthy: () => inner.healthy(),
  }
  const sleep = async (ms: number) => {
    clock.sleeps.push(ms)
    clock.now += ms
  }
  return { queue, inner, clock, sleep, tries: () => tries }
}

t.test('a push refused while the primary changes is tried again with backoff and stored once', async (t) => {
  const f = flakyQueue(3)
  const retrying = retryingQueue(f.queue, { firstMs: 100, maxMs: 500, limitMs: 4000 }, f.sleep, () => f.clock.now)
  await retrying.push('vote-1')
  t.same(f.inner.items, ['vote-1'])
  t.same(f.clock.sleeps, [100, 200, 400], 'exponential waits between the tries')
})

t.test('a push still refused when the retry time is spent fails with the last reason, bounded', async (t) => {
  const f = flakyQueue(1000)
  const retrying = retryingQueue(f.queue, { firstMs: 100, maxMs: 500, limitMs: 2000 }, f.sleep, () => f.clock.now)
  await t.rejects(retrying.push('vote-1'), /READONLY try \d+/)
  t.ok(f.clock.now <= 2000, `gave up within the limit (${f.clock.now} ms waited)`)
  t.ok(f.tries() >= 5 && f.tries() < 10, `${f.tries()} tries`)
  t.same(f.inner.items, [])
})

t.test('with no retry time a refused push fails at once', async (t) => {
  const f = flakyQueue(1)
  const retrying = retryingQueue(f.queue, { firstMs: 100, maxMs: 500, limitMs: 0 }, f.sleep, () => f.clock.now)
  await t.rejects(retrying.push('vote-1'), /READONLY try 1/)
  t.same(f.clock.sleeps, [])
})

t.test('the vote program answers 201 for a vote whose first push was refused', async (t) => {
  const f = flakyQueue(1)
  const get = await serve(t, voteHandler(retryingQueue(f.queue, { firstMs: 1, maxMs: 5, limitMs: 1000 })))
  const res = await get('/vote', { method: 'POST', body: JSON.stringify({ voter: 'v1', choice: 'a' }) })
  t.equal(res.status, 201)
  t.equal(f.inner.items.length, 1)
})

const ENV = {
  APP_LISTEN_ADDRESS: '10.0.0.51',
  APP_VOTE_PORT: '8080',
  APP_RESULT_PORT: '8081',
  APP_VOTE_RETRY_MS: '4000',
  APP_REDIS_SENTINELS: '10.0.0.31:26379,10.0.0.32:26379',
  APP_REDIS_MASTER_NAME: 'hastack-redis',
  APP_REDIS_PASSWORD: 'redis-secret-value',
  APP_SENTINEL_PASSWORD: 'sentinel-secret-value',
  APP_REDIS_WAIT_REPLICAS: '1',
  APP_REDIS_WAIT_TIMEOUT_MS: '1000',
  APP_PG_HOST: '10.0.0.20',
  APP_PG_WRITE_PORT: '5000',
  APP_PG_READ_PORT: '5001',
  APP_PG_DATABASE: 'app',
  APP_PG_USER: 'app',
  APP_PG_PASSWORD: 'pg "secret" $HOME',
}

t.test('the configuration is read from the environment, typed', async (t) => {
  const config = loadConfig(ENV)
  t.same(config.redis.sentinels, [
    { host: '10.0.0.31', port: 26379 },
    { host: '10.0.0.32', port: 26379 },
  ])
  t.equal(config.postgres.password, 'pg "secret" $HOME')
  t.equal(config.votePort, 8080)
})

t.test('refuses a missing or bad setting by its name, never showing a value', async (t) => {
  t.throws(() => loadConfig({ ...ENV, APP_PG_PASSWORD: '' }), new ConfigError('APP_PG_PASSWORD is not set'))
  t.throws(() => loadConfig({ ...ENV, APP_VOTE_PORT: '80x' }), /APP_VOTE_PORT must be an integer from 1 to 65535/)
  t.throws(() => loadConfig({ ...ENV, APP_REDIS_SENTINELS: '10.0.0.31' }), /APP_REDIS_SENTINELS must be a comma/)
  t.throws(() => loadConfig({ ...ENV, APP_PG_HOST: 'db;rm -rf' }), /APP_PG_HOST must be a host name/)
})

t.test('an EnvironmentFile value escapes exactly what systemd unescapes inside double quotes', async (t) => {
  t.equal(systemdEnvValue('plain'), '"plain"')
  t.equal(systemdEnvValue(8080), '"8080"')
  t.equal(systemdEnvValue('a"b\\c`d$e #f \'g'), '"a\\"b\\\\c\\`d\\$e #f \'g"')
  t.throws(() => systemdEnvValue('two\nlines'), /control character/)
})
