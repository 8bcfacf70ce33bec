/**
 * End-to-end tests of the SSH connection layer against a real sshd (see
 * test/fixtures/sshd.ts): quoting through a remote `sh`, sudo, env, cwd,
 * timeouts, stdin, atomic put/get, concurrency and connection failures.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { quote, quoteArgs, raw, sh } from '../../lib/connection/quote.ts'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { wrapCommand } from '../../lib/connection/wrap.ts'
import { CommandError, UnreachableError } from '../../lib/types.ts'
import { startSshd, TEST_USER } from '../fixtures/sshd.ts'
import { closedPort } from '../fixtures/ports.ts'

const sshd = await startSshd()
const root = await SshConnection.connect(sshd.rootSpec())
const user = await SshConnection.connect(sshd.userSpec())
t.teardown(async () => {
  await root.close()
  await user.close()
  await sshd.stop()
})

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

/** Deterministic random generator, so a failing string can be reproduced. */
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = [...'aZ09 \'"\\$`!*?[]{}~#&;|<>()\n\t\r%^=,.-_/é日本🙂\u00a0\u2028']
const SPECIAL = [
  '',
  "'",
  "''",
  "\\'",
  '-n',
  '--',
  '$(id)',
  '`id`',
  '*',
  '~',
  'a\nb',
  '\n\n',
  '$HOME',
  '%s%%',
  "it's",
  '\\',
]

function randomStrings(count: number, seed: number): string[] {
  const rnd = mulberry32(seed)
  const out = [...SPECIAL]
  while (out.length < count) {
    const len = Math.floor(rnd() * 24)
    out.push(Array.from({ length: len }, () => ALPHABET[Math.floor(rnd() * ALPHABET.length)]).join(''))
  }
  return out
}

t.test('quote produces POSIX single-quoted words', async (t) => {
  t.equal(quote(''), "''")
  t.equal(quote('plain-word_1.2/x:y@z'), 'plain-word_1.2/x:y@z', 'safe words stay bare')
  t.equal(quote("it's"), `'it'\\''s'`)
  t.equal(quote('a=b'), "'a=b'", 'assignments are quoted so they stay arguments')
  t.equal(quoteArgs(['ls', '-l', 'a b']), "ls -l 'a b'")
  t.equal(sh`apt-get install -y ${['a b', 'c']}`, "apt-get install -y 'a b' c")
  t.equal(sh`true ${[]}`, 'true ', 'an empty array adds no word')
  t.equal(sh`echo ${raw('$HOME')} ${'$HOME'}`, "echo $HOME '$HOME'")
  t.throws(() => quote('a\0b'), /NUL/)
  t.throws(() => sh`echo ${null as never}`, /cannot interpolate null/)
})

t.test('200 random strings round-trip through a remote sh, plain and through sudo', async (t) => {
  const seed = 20240601
  const words = randomStrings(200, seed)
  const viaTemplate = await Promise.all(words.map((w) => root.run(sh`printf %s ${w}`)))
  const viaArray = await Promise.all(words.map((w) => root.run(['printf', '%s', w])))
  const viaSudo = await Promise.all(words.map((w) => user.run(sh`printf %s ${w}`)))
  const bad = words.filter((w, i) => viaTemplate[i].stdout !== w || viaArray[i].stdout !== w || viaSudo[i].stdout !== w)
  t.same(
    bad.map((w) => JSON.stringify(w)),
    [],
    `every string survives (seed ${seed})`,
  )
  t.ok(viaSudo.every((r) => r.code === 0 && r.stderr === ''))
})

t.test('arrays become separate arguments', async (t) => {
  const r = await root.run(['printf', '<%s>\\n', 'a b', '', 'c*', '$x'])
  t.equal(r.stdout, '<a b>\n<>\n<c*>\n<$x>\n')
})

t.test('env and cwd are applied, also through sudo', async (t) => {
  const cmd = 'printf "%s|%s" "$GREETING" "$(pwd)"'
  const opts = { env: { GREETING: "hello 'world' $HOME" }, cwd: '/usr/share' }
  t.equal((await root.run(cmd, opts)).stdout, "hello 'world' $HOME|/usr/share")
  t.equal((await user.run(cmd, opts)).stdout, "hello 'world' $HOME|/usr/share")
  const missing = await root.run('pwd', { cwd: '/no/such/dir' })
  t.not(missing.code, 0, 'a missing cwd fails the command instead of running elsewhere')
  await t.rejects(root.run('true', { env: { 'BAD NAME': 'x' } }), /invalid environment variable name/)
})

t.test('sudo escalates the non-root user; sudo: false keeps it', async (t) => {
  t.equal((await user.run('id -u')).stdout, '0\n', 'become from the spec')
  t.equal((await user.run(['id', '-un'], { sudo: false })).stdout, `${TEST_USER}\n`)
  t.equal((await user.run(['id', '-un'], { user: 'nobody' })).stdout, 'nobody\n', 'user implies sudo -u')
  t.equal((await user.run('echo $HOME')).stdout, '/root\n', 'sudo -H sets the target HOME')
  t.equal((await root.run(['id', '-u'], { sudo: true })).stdout, '0\n')
  t.match(wrapCommand('true', { sudo: true }, false), /^sudo -n -H -- /, 'sudo never prompts for a password')
  await t.rejects(user.run('true', { sudo: false, user: 'nobody' }), /needs sudo/)
})

t.test('a command exceeding timeoutMs is killed on the remote side and reported', async (t) => {
  for (const [name, conn] of [
    ['root', root],
    ['sudo', user],
  ] as const) {
    const marker = `${name === 'root' ? 3001 : 3002}.25`
    const r = await conn.run(`sleep ${marker} & sleep ${marker}; wait`, { timeoutMs: 700 })
    t.equal(r.code, 124, `${name}: exit code 124`)
    t.match(r.stderr, /timed out after 0\.7s/)
    t.ok(r.durationMs >= 700 && r.durationMs < 700 + 2_500, `${name}: ended near the deadline (${r.durationMs} ms)`)
    // The pattern `300[1].25` does not match the command line of the pgrep command itself.
    const left = await root.run(['pgrep', '-f', `sleep ${marker.replace(/^(\d{3})(\d)/, '$1[$2]')}`])
    t.equal(left.code, 1, `${name}: no process left, also not the background one (${left.stdout.trim()})`)
  }
  await t.rejects(root.run('sleep 30', { timeoutMs: 300, check: true }), CommandError)
})

t.test('check: true throws a CommandError with the output; otherwise the code is returned', async (t) => {
  const r = await root.run('echo out; echo oops >&2; exit 3')
  t.same([r.code, r.stdout, r.stderr], [3, 'out\n', 'oops\n'])
  const err = await root.run('echo oops >&2; exit 3', { check: true }).catch((e) => e)
  t.type(err, CommandError)
  t.equal(err.result.code, 3)
  t.match(err.message, /exit code 3: echo oops >&2; exit 3\noops/)
})

t.test('stdin passes text and binary data, then EOF', async (t) => {
  t.equal((await root.run('cat', { stdin: 'hello\nwörld' })).stdout, 'hello\nwörld')
  const blob = randomBytes(1 << 20)
  const r = await user.run('sha256sum', { stdin: blob })
  t.equal(r.stdout.split(' ')[0], sha(blob), '1 MiB through sudo arrives intact')
  t.equal((await root.run('wc -c')).stdout.trim(), '0', 'no stdin means immediate EOF')
})

t.test('put writes atomically with mode and owner; get returns the exact bytes', async (t) => {
  const dir = (await root.run('mktemp -d', { check: true })).stdout.trim()
  t.teardown(() => root.run(['rm', '-rf', dir]))
  const file = `${dir}/data file.bin`

  const binary = Buffer.concat([Buffer.from([0, 0, 255, 10, 13, 0]), randomBytes(65536), Buffer.alloc(16)])
  await user.put(file, binary, { mode: '0640', owner: TEST_USER, group: 'root' })
  t.equal((await root.run(['stat', '-c', '%a %U %G', file])).stdout, `640 ${TEST_USER} root\n`)
  t.ok((await user.get(file)).equals(binary), 'binary content with NUL bytes round-trips')

  await root.put(`${dir}/new`, 'x')
  t.equal((await root.run(['stat', '-c', '%a %U', `${dir}/new`])).stdout, '644 root\n', 'new files default to 0644')
  await root.run(['chmod', '0600', `${dir}/new`])
  await root.put(`${dir}/new`, 'y')
  t.equal((await root.run(['stat', '-c', '%a', `${dir}/new`])).stdout, '600\n', 'an existing file keeps its mode')

  // Writers alternate two large contents while readers read: every read sees one of them whole.
  const a = Buffer.alloc(2 << 20, 'a')
  const b = Buffer.alloc(2 << 20, 'b')
  await root.put(file, a)
  const reads: Promise<{ stdout: string }>[] = []
  for (let i = 0; i < 6; i++) {
    reads.push(root.run(['sha256sum', file]), root.run(['sha256sum', file]))
    await root.put(file, i % 2 ? a : b)
  }
  const seen = (await Promise.all(reads)).map((r) => r.stdout.split(' ')[0])
  t.ok(
    seen.every((h) => h === sha(a) || h === sha(b)),
    'no partial file is ever visible',
  )
  t.equal((await root.run(['ls', '-A', dir])).stdout, 'data file.bin\nnew\n', 'no temp file left behind')
})

t.test('put into a missing directory and get of a missing file fail clearly', async (t) => {
  const put = await root.put('/no/such/dir/file', 'x').catch((e) => e)
  t.type(put, CommandError)
  t.match(put.message, /put \/no\/such\/dir\/file[\s\S]*directory \/no\/such\/dir does not exist/)
  const get = await user.get('/no/such/file').catch((e) => e)
  t.type(get, CommandError)
  t.match(get.message, /get \/no\/such\/file[\s\S]*\/no\/such\/file does not exist/)
  const plain = await SshConnection.connect(sshd.userSpec({ become: false }))
  t.teardown(() => plain.close())
  const denied = await plain.put('/root/denied', 'x').catch((e) => e)
  t.type(denied, CommandError, 'without become, writing under /root is refused')
  t.match(denied.message, /Permission denied/)
})

t.test('50 concurrent runs over one connection all succeed', async (t) => {
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => user.run(['sh', '-c', 'sleep 0.05; echo "$1"', 'sh', String(i)])),
  )
  t.same(
    results.map((r) => r.stdout),
    results.map((_, i) => `${i}\n`),
  )
})

t.test('maxSessions bounds the channels open at once', async (t) => {
  const conn = await SshConnection.connect(sshd.rootSpec(), { maxSessions: 2 })
  t.teardown(() => conn.close())
  const started = performance.now()
  await Promise.all(Array.from({ length: 6 }, () => conn.run('sleep 0.3')))
  t.ok(performance.now() - started >= 850, 'six 0.3 s commands two at a time take at least 0.9 s')
})

t.test('commandCount counts every command sent', async (t) => {
  const conn = await SshConnection.connect(sshd.rootSpec())
  t.teardown(() => conn.close())
  await conn.run('true')
  await conn.run(['true'])
  await conn.put('/tmp/.hastack-count-test', 'x')
  await conn.get('/tmp/.hastack-count-test')
  await conn.run(['rm', '/tmp/.hastack-count-test'])
  t.equal(conn.commandCount, 5)
})

t.test('a jump host tunnels to the target', async (t) => {
  const conn = await SshConnection.connect(
    sshd.rootSpec({ jump: { host: '127.0.0.1', port: sshd.port, user: TEST_USER } }),
  )
  t.teardown(() => conn.close())
  t.equal((await conn.run('id -un')).stdout, 'root\n')
})

t.test('a closed connection refuses new commands', async (t) => {
  const conn = await SshConnection.connect(sshd.rootSpec())
  await conn.close()
  await t.rejects(conn.run('true'), UnreachableError)
})

t.test('connecting to a closed port fails quickly with UnreachableError naming host and port', async (t) => {
  const port = await closedPort()
  const started = performance.now()
  const err = await SshConnection.connect(sshd.rootSpec({ host: 'db1', port })).catch((e) => e)
  t.type(err, UnreachableError)
  t.equal(err.host, 'db1')
  t.match(err.message, new RegExp(`db1 .*root@127\\.0\\.0\\.1:${port}.*connection refused`))
  t.ok(performance.now() - started < 5_000, 'gives up within seconds (bounded retries)')
})

t.test('a server that never answers times out after connectTimeoutMs', async (t) => {
  const sockets: Socket[] = []
  const silent: Server = createServer((s) => sockets.push(s))
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    sockets.forEach((s) => s.destroy())
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  const spec = sshd.rootSpec({ port, connectTimeoutMs: 500 })
  const err = await SshConnection.connect(spec, { retries: 0 }).catch((e) => e)
  t.type(err, UnreachableError)
  t.match(err.message, `127.0.0.1:${port}: timed out after 0.5s`)
})

t.test('a wrong key gives UnreachableError about authentication', async (t) => {
  const wrongKey = `${sshd.dir}/host_key` // a valid key that is not authorized
  const err = await SshConnection.connect(sshd.userSpec({ key: wrongKey })).catch((e) => e)
  t.type(err, UnreachableError)
  t.match(err.message, `authentication failed for user ${TEST_USER} with key ${wrongKey}`)
  const missing = await SshConnection.connect(sshd.userSpec({ key: '/no/such/key' })).catch((e) => e)
  t.type(missing, UnreachableError)
  t.match(missing.message, /cannot read key file \/no\/such\/key: ENOENT/)
})
