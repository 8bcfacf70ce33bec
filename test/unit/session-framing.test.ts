/**
 * The framing of the persistent privileged session (lib/connection/session-helper.ts): requests carry
 * exact byte lengths, responses are read back whole however the stream is split, and a stream that
 * does not follow the protocol is refused. The helper itself runs here under a local perl, also taking the
 * host lock as `mkdir -p -m 0700` and `flock -n` do.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import {
  HELPER_SOURCE,
  READY_LINE,
  ResponseReader,
  encodeLockRequest,
  encodeRequest,
} from '../../lib/connection/session-helper.ts'

t.test('a request states the byte length of every argument and of stdin', async (t) => {
  const bytes = encodeRequest(7, ['sh', '-c', 'é'], Buffer.from('in'))
  t.equal(bytes.toString('utf8'), 'run 7 3 2 2 2 2\nsh-cé' + 'in')
  t.throws(() => encodeRequest(1, [], Buffer.alloc(0)), /needs a command/)
  t.throws(() => encodeRequest(1, ['a\0b'], Buffer.alloc(0)), /NUL/)
})

t.test('responses split at every byte are read back whole', async (t) => {
  const stream = Buffer.concat([
    Buffer.from(`${READY_LINE}\ndone 1 3 4 2\n`),
    Buffer.from([0, 0xc3, 0xa9, 10]),
    Buffer.from('e\n'),
    Buffer.from('done 2 0 0 0\n'),
  ])
  const reader = new ResponseReader()
  const seen = []
  for (const byte of stream) seen.push(...reader.push(Buffer.from([byte])))
  t.equal(reader.started, true)
  t.same(
    seen.map((r) => [r.id, r.code, [...r.stdout], r.stderr.toString()]),
    [
      [1, 3, [0, 0xc3, 0xa9, 10], 'e\n'],
      [2, 0, [], ''],
    ],
  )
})

t.test('a stream that is not a session is refused', async (t) => {
  t.throws(() => new ResponseReader().push(Buffer.from('sudo: a password is required\n')), /did not start/)
  const reader = new ResponseReader()
  reader.push(Buffer.from(`${READY_LINE}\n`))
  t.throws(() => reader.push(Buffer.from('done x\n')), /malformed header/)
  t.throws(() => new ResponseReader().push(Buffer.alloc(300, 'x')), /over-long header/)
})

t.test('the helper runs requests in order with exact bytes, stdin and exit codes', async (t) => {
  const input = Buffer.concat([
    encodeRequest(1, ['sh', '-c', 'printf "a\\000b"; echo err >&2; exit 3'], Buffer.alloc(0)),
    encodeRequest(2, ['wc', '-c'], Buffer.alloc(300_000, 'x')),
    encodeRequest(3, ['sh', '-c', 'kill -9 $$'], Buffer.alloc(0)),
    encodeRequest(4, ['sh', '-c', 'yes | head -c 4'], Buffer.from('unread')),
    encodeRequest(5, ['/no/such/program'], Buffer.alloc(0)),
  ])
  const run = spawnSync('perl', ['-e', HELPER_SOURCE], { input, timeout: 20_000 })
  t.equal(run.status, 0, 'the helper ends at the end of its input')
  const responses = new ResponseReader().push(run.stdout)
  t.same(
    responses.map((r) => [r.id, r.code, r.stdout.toString('latin1')]),
    [
      [1, 3, 'a\0b'],
      [2, 0, '300000\n'],
      [3, 137, ''],
      [4, 0, 'y\ny\n'],
      [5, 127, ''],
    ],
  )
  t.equal(responses[0]!.stderr.toString(), 'err\n')
  t.match(responses[4]!.stderr.toString(), /cannot run \/no\/such\/program/)
})

t.test('a lock request states the byte length of each of its four strings', async (t) => {
  const request = { dir: '/var/lib/é', lock: '/var/lib/é/run.lock', holder: '/h', line: 'run 1: me' }
  const bytes = encodeLockRequest(3, request).toString('utf8')
  t.equal(bytes, 'lock 3 11 20 2 9\n/var/lib/é/var/lib/é/run.lock/hrun 1: me')
  t.throws(() => encodeLockRequest(3, { ...request, line: 'two\nlines' }), /newline/)
})

t.test('the helper takes the host lock, or names the run that holds it', async (t) => {
  const work = mkdtempSync('/tmp/hastack-helper-lock-')
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const dir = `${work}/state/hastack`
  const request = { dir, lock: `${dir}/run.lock`, holder: `${dir}/run.holder`, line: 'run r1: pid 1 on here' }
  const take = () => {
    const run = spawnSync('perl', ['-e', HELPER_SOURCE], { input: encodeLockRequest(1, request), timeout: 20_000 })
    const [answer] = new ResponseReader().push(run.stdout)
    return [answer!.code, answer!.stdout.toString()]
  }
  t.same(take(), [0, 'locked\n'])
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the state directory is made 0700, as mkdir -p -m 0700')
  t.equal(statSync(`${work}/state`).mode & 0o777, 0o755, 'its parents as mkdir -p makes them')
  t.equal(readFileSync(request.holder, 'utf8'), 'run r1: pid 1 on here\n')
  t.same(take(), [0, 'locked\n'], 'the lock ended with the helper that held it')

  writeFileSync(request.holder, 'run other: pid 2 on there\n')
  const holding = spawn('flock', ['-n', request.lock, 'sleep', '20'], { stdio: 'ignore' })
  t.teardown(() => holding.kill())
  for (let i = 0; i < 100 && spawnSync('flock', ['-n', request.lock, 'true']).status === 0; i++) {
    await new Promise((r) => setTimeout(r, 20))
  }
  t.same(take(), [75, 'held run other: pid 2 on there\n'])
  t.equal(readFileSync(request.holder, 'utf8'), 'run other: pid 2 on there\n', 'the holder file is left as it was')
})

t.test('a helper whose input ends during a command kills it and exits: its host lock goes with it', async (t) => {
  const work = mkdtempSync('/tmp/hastack-helper-end-')
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const request = { dir: work, lock: `${work}/run.lock`, holder: `${work}/run.holder`, line: 'run r2: pid 3' }
  const helper = spawn('perl', ['-e', HELPER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => helper.kill('SIGKILL'))
  const reader = new ResponseReader()
  const answers: string[] = []
  helper.stdout.on('data', (chunk: Buffer) => answers.push(...reader.push(chunk).map((r) => r.stdout.toString())))
  helper.stdin.write(encodeLockRequest(1, request))
  helper.stdin.write(encodeRequest(2, ['sh', '-c', `echo $$ > ${work}/pid; exec sleep 30`], Buffer.alloc(0)))
  for (let i = 0; i < 250 && (answers.length < 1 || spawnSync('test', ['-s', `${work}/pid`]).status !== 0); i++) {
    await new Promise((r) => setTimeout(r, 20))
  }
  t.same(answers, ['locked\n'])
  const started = Date.now()
  const exited = new Promise((resolve) => helper.once('exit', resolve))
  helper.stdin.end()
  t.equal(await exited, 0, 'the helper exits at once')
  t.ok(Date.now() - started < 5_000, 'without waiting for the command')
  t.equal(spawnSync('flock', ['-n', request.lock, 'true']).status, 0, 'the lock is free')
  const sleeper = readFileSync(`${work}/pid`, 'utf8').trim()
  for (let i = 0; i < 100 && spawnSync('kill', ['-0', sleeper]).status === 0; i++) {
    await new Promise((r) => setTimeout(r, 20))
  }
  t.not(spawnSync('kill', ['-0', sleeper]).status, 0, 'the command was killed')
})
