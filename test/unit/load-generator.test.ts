/**
 * The load generator's sender against small HTTP servers of this test on 127.0.0.1 (they stand in
 * for nothing but an HTTP peer: what the app does is checked in the lab, test/stack/site/): it keeps
 * the rate, sends one unique voter per request, reads 201 + id as acknowledged and anything else as
 * failed, ends a request at its timeout and never has more than its limit of requests open; a connection
 * cut before any answer sends the same vote, with the same id, once more.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { generateVotes } from '../../playbooks/load/generator.ts'

type Tap = Test

async function serve(t: Tap, handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler)
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((done) => server.close(() => done()))
  })
  return (server.address() as AddressInfo).port
}

function body(request: http.IncomingMessage): Promise<{ voter: string; choice: string; id?: string }> {
  return new Promise((done) => {
    let text = ''
    request.on('data', (chunk) => (text += chunk))
    request.on('end', () => done(JSON.parse(text)))
  })
}

t.test('sends rate × duration unique votes at the rate; 201 with an id is acknowledged, 503 failed', async (t) => {
  const seen: { voter: string; choice: string; at: number }[] = []
  const port = await serve(t, async (request, response) => {
    const vote = await body(request)
    seen.push({ ...vote, at: Date.now() })
    const n = Number(vote.voter.split('-').pop())
    if (n % 4 === 3) response.writeHead(503).end('{"ok":false}')
    else response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id: `v${n}` }))
  })
  const started = Date.now()
  const records = await generateVotes({
    target: { host: '127.0.0.1', port },
    rate: 40,
    durationS: 1,
    prefix: 'load-test',
    timeoutMs: 2000,
    maxInFlight: 50,
  })
  const elapsed = Date.now() - started
  t.equal(records.length, 40)
  t.equal(new Set(seen.map((v) => v.voter)).size, 40, 'every request its own voter')
  t.ok(
    seen.every((v) => v.voter.startsWith('load-test-') && ['a', 'b'].includes(v.choice)),
    'voters carry the prefix',
  )
  t.ok(elapsed >= 950 && elapsed < 3000, `paced over about a second (${elapsed} ms)`)
  t.equal(records.filter((r) => r.outcome === 'acknowledged').length, 30)
  t.same(records[1], { ...records[1], outcome: 'acknowledged', status: 201, id: 'v1' })
  t.same(records[3], { ...records[3], outcome: 'rejected', status: 503, reason: '503' })
  t.ok(records[39]!.startMs >= 950, 'the last one is sent at 39/40 s')
})

t.test('a server that never answers: each request ends at the timeout, never more than the limit open', async (t) => {
  let open = 0
  let mostOpen = 0
  const port = await serve(t, (request) => {
    open++
    mostOpen = Math.max(mostOpen, open)
    request.on('close', () => open--)
  })
  const started = Date.now()
  const records = await generateVotes({
    target: { host: '127.0.0.1', port },
    rate: 20,
    durationS: 1,
    prefix: 'hang',
    timeoutMs: 300,
    maxInFlight: 3,
  })
  const elapsed = Date.now() - started
  t.equal(records.length, 20)
  t.ok(mostOpen <= 3, `at most 3 requests open at the server (${mostOpen})`)
  t.ok(
    records.every((r) => r.outcome === 'timeout' || (r.outcome === 'skipped' && r.reason === 'in-flight limit')),
    'each one timed out or was not sent',
  )
  t.ok(
    records.some((r) => r.outcome === 'skipped'),
    'requests due while 3 were open were not sent',
  )
  t.ok(
    records.filter((r) => r.outcome === 'timeout').every((r) => r.latencyMs >= 290 && r.latencyMs < 1000),
    'timeouts end at the timeout',
  )
  t.ok(elapsed < 2500, `the run ends after duration + timeout (${elapsed} ms)`)
})

t.test('a closed port: every request fails with the connection error as its reason', async (t) => {
  const closed = http.createServer()
  await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done))
  const free = (closed.address() as AddressInfo).port
  await new Promise<void>((done) => closed.close(() => done()))
  const records = await generateVotes({
    target: { host: '127.0.0.1', port: free },
    rate: 10,
    durationS: 1,
    prefix: 'refused',
    timeoutMs: 1000,
    maxInFlight: 10,
  })
  t.equal(records.length, 10)
  t.same(new Set(records.map((r) => `${r.outcome} ${r.reason}`)), new Set(['error ECONNREFUSED']))
})

t.test('stopped by its signal: sends no more votes, waits for the ones open, returns only those sent', async (t) => {
  const seen: string[] = []
  const port = await serve(t, async (request, response) => {
    const vote = await body(request)
    seen.push(vote.voter)
    response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id: vote.voter }))
  })
  const stop = new AbortController()
  setTimeout(() => stop.abort(), 500)
  const started = Date.now()
  const records = await generateVotes({
    target: { host: '127.0.0.1', port },
    rate: 20,
    durationS: 30,
    prefix: 'stopped',
    timeoutMs: 2000,
    maxInFlight: 50,
    stop: stop.signal,
  })
  const elapsed = Date.now() - started
  t.ok(elapsed < 2000, `ended soon after the stop, not after 30 s (${elapsed} ms)`)
  t.ok(records.length >= 8 && records.length <= 13, `about half a second of votes (${records.length})`)
  t.ok(
    records.every((r) => r !== undefined && r.outcome === 'acknowledged'),
    'every vote sent has its record',
  )
  t.same(new Set(seen), new Set(records.map((r) => r.voter)), 'the server saw exactly the votes recorded')
})

t.test('a connection cut before any answer sends the same vote, with the same id, once more', async (t) => {
  const ids = new Map<string, string[]>()
  const port = await serve(t, async (request, response) => {
    const vote = await body(request)
    const seen = ids.get(vote.voter) ?? []
    ids.set(vote.voter, [...seen, vote.id ?? ''])
    if (seen.length === 0) request.socket.destroy()
    else response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id: vote.id }))
  })
  const records = await generateVotes({
    target: { host: '127.0.0.1', port },
    rate: 10,
    durationS: 0.5,
    prefix: 'cut',
    timeoutMs: 2000,
    maxInFlight: 10,
  })
  t.equal(records.length, 5)
  for (const [voter, sent] of ids) {
    t.equal(sent.length, 2, `${voter}: sent twice`)
    t.match(sent[0], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'with a UUID of its own')
    t.equal(sent[1], sent[0], 'the same id both times')
  }
  t.ok(
    records.every((r) => r.outcome === 'acknowledged' && r.retried === 'ECONNRESET' && r.id === ids.get(r.voter)![0]),
    'each acknowledged on its second sending, which the record says',
  )
})
