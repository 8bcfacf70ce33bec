/**
 * The TLS probes one python3 process answers for a batch: served certificates (`serialsCommand`: the serial on
 * disk and the one a TLS service presents) and HTTPS reads with a CA file (`httpGetCommand`, `urlReadyCommand`,
 * etcd's `healthyCommand` with a client certificate).
 * Against TLS servers on loopback with a throwaway CA made here, each batched answer is byte for byte what the
 * command prints live, exit code included; with an evaluator that cannot start a shell, which answers python3
 * gave shows (every serial form, PostgreSQL's STARTTLS, a missing file; a body and a status, a URL wait), and
 * what it cannot prove (a DER file, a key first, a refused port or STARTTLS, a host name; a redirect, an empty or
 * short body, another status, a failed verification, an unreachable member after a healthy one, a client
 * certificate refused, a curlrc, a proxy) is left to the command; without python3
 * every read runs its command; and through the loopback sshd the batch answers as live.
 */
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Probe } from '../../lib/types.ts'
import { PROBE_SCRIPT, parseProbeAnswers, probeCommand, probeInput } from '../../lib/facts/probes.ts'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { startSshd } from '../fixtures/sshd.ts'
import { closedPort } from '../fixtures/ports.ts'

const TLS_SERVER = fileURLToPath(new URL('./fixtures/tls-server.py', import.meta.url))
const NEEDS_TOOLS = {
  skip: ['python3', 'openssl', 'curl'].every((tool) => existsSync(`/usr/bin/${tool}`))
    ? false
    : 'needs python3, openssl, curl',
}

/** The evaluator as sent, one that cannot start a command (a `c` probe answers 127), one without python3. */
const WITHOUT_SHELL = PROBE_SCRIPT.replace("'/bin/sh', '-c'", "'/nonexistent/sh', '-c'")
const WITHOUT_PYTHON = PROBE_SCRIPT.replaceAll('/usr/bin/python3', '/nonexistent/python3')
t.not(WITHOUT_SHELL, PROBE_SCRIPT, 'the evaluator starts its commands through /bin/sh')
t.not(WITHOUT_PYTHON, PROBE_SCRIPT, 'the evaluator reads served certificates with /usr/bin/python3')

/** Serials as `openssl x509 -set_serial` takes them: zero, below 0x10, high bit set, 20 bytes, negative. */
const SERIALS = ['0', '1', '15', '127', '128', '0x8a1b', '0xff00112233445566778899aabbccddeeff001122', '-5']

const work = mkdtempSync('/tmp/hastack-tls-probes-')
chmodSync(work, 0o755)
t.teardown(() => rmSync(work, { recursive: true, force: true }))
/** The test servers' log of the HTTP paths they were asked, in order. */
const REQUEST_LOG = `${work}/requests.log`
const requestsLogged = () => (existsSync(REQUEST_LOG) ? readFileSync(REQUEST_LOG, 'utf8').split('\n').slice(0, -1) : [])

function openssl(args: string[], input?: string): Buffer {
  const result = spawnSync('openssl', args, { input, timeout: 30_000 })
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr.toString()}`)
  return result.stdout
}

/**
 * A throwaway CA and one leaf certificate per serial (one key), one for 127.0.0.1 (an IP address SAN), a DER
 * copy, a key-first file and another CA.
 */
function makeCertificates(): string[] {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    `${work}/ca.key`,
    '-out',
    `${work}/ca.crt`,
    '-subj',
    '/CN=ca',
    '-days',
    '2',
  ])
  openssl(['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${work}/leaf.key`])
  const request = openssl(['req', '-new', '-key', `${work}/leaf.key`, '-subj', '/CN=leaf']).toString()
  const ca = ['-CA', `${work}/ca.crt`, '-CAkey', `${work}/ca.key`, '-days', '2']
  const files = SERIALS.map((serial, i) => {
    const file = `${work}/leaf-${i}.crt`
    openssl(['x509', '-req', ...ca, '-set_serial', serial, '-out', file], request)
    return file
  })
  writeFileSync(`${work}/ip.ext`, 'subjectAltName = IP:127.0.0.1\n')
  openssl(['x509', '-req', ...ca, '-set_serial', '77', '-extfile', `${work}/ip.ext`, '-out', `${work}/ip.crt`], request)
  openssl(['req', '-x509', ...ec, '-keyout', `${work}/other.key`, '-out', `${work}/other-ca.crt`, '-subj', '/CN=o'])
  openssl(['x509', '-in', files[1]!, '-outform', 'der', '-out', `${work}/leaf.der`])
  writeFileSync(`${work}/key-first.crt`, Buffer.concat([readFileSync(`${work}/leaf.key`), readFileSync(files[1]!)]))
  return files
}

/** Start the loopback TLS servers; resolves with their ports, in the order of the specs. */
async function startServers(t: Test, specs: string[]): Promise<number[]> {
  const server = spawn('/usr/bin/python3', [TLS_SERVER, ...specs], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, TLS_SERVER_LOG: REQUEST_LOG },
  })
  t.teardown(() => {
    server.stdin.end()
    server.kill()
  })
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the TLS servers did not start in 10 s')), 10_000)
    server.stdout.once('data', (chunk: Buffer) => (clearTimeout(timer), resolve(chunk.toString())))
    server.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the TLS servers exited: ${code}`))))
  })
  return line.trim().split(' ').map(Number)
}

/** Each probe's batched answer (by the given evaluator) beside its command's live answer, undecoded. */
function compare(probes: TlsProbe[], script = PROBE_SCRIPT, env = process.env) {
  const batch = spawnSync('perl', ['-e', script], { input: probeInput(probes), env, timeout: 60_000 })
  const answers = parseProbeAnswers(batch.stdout.toString(), probes.length)
  return probes.map((probe, i) => {
    const live = spawnSync('/bin/sh', ['-c', probeCommand(probe)], { env, timeout: 30_000 })
    return {
      probe: JSON.stringify(probe),
      batched: [answers[i]!.code, answers[i]!.stdout.toString('latin1')],
      live: [live.status, live.stdout.toString('latin1')],
    }
  })
}

type TlsProbe = Extract<Probe, { kind: 'served' | 'get' | 'url' | 'health' }>
type ServedProbe = Extract<Probe, { kind: 'served' }>
type UrlProbe = Extract<Probe, { kind: 'get' | 'url' }>
type HealthProbe = Extract<Probe, { kind: 'health' }>

const served = (port: number, certFile: string, starttls?: 'postgres'): ServedProbe => ({
  kind: 'served',
  address: '127.0.0.1',
  port,
  ...(starttls ? { starttls } : {}),
  certFile,
})

t.test('served certificates and HTTPS reads on loopback', NEEDS_TOOLS, async (t) => {
  const certificates = makeCertificates()
  const key = `${work}/leaf.key`
  const ports = await startServers(t, [
    ...certificates.map((file) => `tls,${file},${key}`),
    `postgres,${certificates[5]},${key}`,
    `postgres-refused,${certificates[5]},${key}`,
    `https,${work}/ip.crt,${key}`,
    `https,${certificates[1]},${key}`,
    `https-mutual,${work}/ip.crt,${key},${work}/ca.crt`,
    `http,${work}/ip.crt,${key}`,
  ])
  const [postgres, refusedStarttls, https, httpsNoAddress, mutual, http] = ports.slice(certificates.length)
  const ca = `${work}/ca.crt`
  const get = (path: string, port = https, caFile = ca): UrlProbe => ({
    kind: 'get',
    url: `https://127.0.0.1:${port}${path}`,
    caFile,
  })
  const url = (path: string, port = https, caFile = ca): UrlProbe => ({ ...get(path, port, caFile), kind: 'url' })
  /** A member's client URL: `/ok`, `/sick`, `/down` tell its /health answer. */
  const member = (path: string, port = mutual) => `https://127.0.0.1:${port}${path}`
  /** etcd's health gate over these members, with a client certificate. */
  const health = (paths: string[], caFile = ca): HealthProbe => ({
    kind: 'health',
    urls: paths.map((path) => member(path)),
    caFile,
    certFile: `${work}/ip.crt`,
    keyFile: key,
  })

  t.test('every serial form, on disk and presented, read by python3 as openssl prints it', async (t) => {
    const probes: TlsProbe[] = [
      ...certificates.map((file, i) => served(ports[i]!, file)),
      served(ports[0]!, certificates[6]!),
      served(postgres, certificates[2]!, 'postgres'),
      served(ports[3]!, `${work}/absent.crt`),
      served(ports[4]!, `${work}/absent/deeper.crt`),
    ]
    const rows = compare(probes, WITHOUT_SHELL)
    for (const row of rows) t.same(row.batched, row.live, `${row.probe}, no process`)
    t.same(rows[1]!.live, [0, 'serial=01\nserial=01\n'])
    t.same(rows[4]!.live, [0, 'serial=80\nserial=80\n'], 'no sign byte before a high bit')
    t.same(rows[7]!.live, [0, 'serial=-05\nserial=-05\n'])
    t.same(rows.at(-2)!.live, [0, '\nserial=7F\n'], 'a missing file: an empty line')
    for (const row of compare(probes)) t.same(row.batched, row.live, row.probe)
  })

  t.test('what python3 cannot prove is left to the command, which answers as it would live', async (t) => {
    const probes: TlsProbe[] = [
      served(ports[1]!, `${work}/leaf.der`),
      served(ports[1]!, `${work}/key-first.crt`),
      served(ports[1]!, work),
      served(await closedPort(), certificates[1]!),
      served(refusedStarttls, certificates[1]!, 'postgres'),
      served(ports[1]!, certificates[1]!, 'postgres'),
      { ...served(ports[1]!, certificates[1]!), address: 'localhost' },
    ]
    for (const row of compare(probes)) t.same(row.batched, row.live, row.probe)
    for (const row of compare(probes, WITHOUT_SHELL)) t.same(row.batched[0], 127, `${row.probe} ran`)
  })

  t.test('a body and a status, and a URL wait, read by python3 as curl answers them', async (t) => {
    const probes = [get('/ok'), get('/down'), get('/chunked'), get('/kept'), url('/ok'), url('/down'), url('/empty')]
    const rows = compare(probes, WITHOUT_SHELL)
    for (const row of rows) t.same(row.batched, row.live, `${row.probe}, no process`)
    t.same(rows[0]!.live, [0, '{"state": "running"}\n200'])
    t.same(rows[1]!.live, [0, '{"state": "stopped"}\n\n503'])
    t.same(rows[5]!.live, [1, ''], 'a 503 is not ready')
    for (const row of compare(probes)) t.same(row.batched, row.live, row.probe)
  })

  t.test('plain http reads and URL waits, read by python3 as curl answers them', async (t) => {
    const plain = (path: string, kind: 'get' | 'url', port = http): UrlProbe => ({
      kind,
      url: `http://127.0.0.1:${port}${path}`,
    })
    const probes = [
      ...['/ok', '/down', '/chunked', '/kept'].map((path) => plain(path, 'get')),
      ...['/ok', '/down', '/empty', '/kept'].map((path) => plain(path, 'url')),
    ]
    const rows = compare(probes, WITHOUT_SHELL)
    for (const row of rows) t.same(row.batched, row.live, `${row.probe}, no process`)
    t.same(rows[3]!.live, [0, 'to the end\n\n200'], 'a body that ends with the connection')
    for (const row of compare(probes)) t.same(row.batched, row.live, row.probe)
    const left = [
      ...['/moved', '/missing', '/short'].flatMap((path) => [plain(path, 'get'), plain(path, 'url')]),
      plain('/ok', 'url', await closedPort()),
      { ...plain('/ok', 'url'), caFile: `${work}/ca.crt` },
    ]
    for (const row of compare(left)) t.same(row.batched, row.live, row.probe)
    for (const row of compare(left, WITHOUT_SHELL)) t.same(row.batched[0], 127, `${row.probe} ran`)
    for (const setting of [{ http_proxy: 'http://127.0.0.1:9' }, { ALL_PROXY: 'http://127.0.0.1:9' }]) {
      const env = { ...process.env, ...setting }
      const set = JSON.stringify(setting)
      const asked = [plain('/ok', 'get'), plain('/ok', 'url')]
      for (const row of compare(asked, PROBE_SCRIPT, env)) t.same(row.batched, row.live, set)
      for (const row of compare(asked, WITHOUT_SHELL, env)) t.same(row.batched[0], 127, set)
    }
  })

  t.test('what python3 cannot prove of an HTTPS read is left to curl', async (t) => {
    const probes = [
      get('/empty'),
      ...['/moved', '/missing', '/short'].flatMap((path) => [get(path), url(path)]),
      get('/ok', https, `${work}/other-ca.crt`),
      url('/ok', https, `${work}/other-ca.crt`),
      get('/ok', httpsNoAddress),
      url('/ok', await closedPort()),
      { ...get('/ok'), url: `https://localhost:${https}/ok` },
      { kind: 'url' as const, url: `https://127.0.0.1:${https}/ok` },
    ]
    for (const row of compare(probes)) t.same(row.batched, row.live, row.probe)
    for (const row of compare(probes, WITHOUT_SHELL)) t.same(row.batched[0], 127, `${row.probe} ran`)
    const home = `${work}/home`
    mkdirSync(home)
    writeFileSync(`${home}/.curlrc`, '-H "X-Test: 1"\n')
    const settings = [{ HOME: home }, { https_proxy: 'http://127.0.0.1:9' }, { ALL_PROXY: 'http://127.0.0.1:9' }]
    for (const setting of settings) {
      const env = { ...process.env, ...setting }
      const set = JSON.stringify(setting)
      for (const row of compare([get('/ok'), url('/ok')], PROBE_SCRIPT, env)) t.same(row.batched, row.live, set)
      for (const row of compare([get('/ok'), url('/ok')], WITHOUT_SHELL, env)) t.same(row.batched[0], 127, set)
    }
  })

  t.test("etcd's health gate, member by member with a client certificate, read by python3 as curl", async (t) => {
    const closed = await closedPort()
    const probes = [
      health(['/ok', '/ok']),
      health(['/ok', '/sick']),
      health(['/down', '/ok']),
      health(['/ok', '/down', '/ok']),
      { ...health([]), urls: [member('/sick'), member('', closed)] },
    ]
    const rows = compare(probes, WITHOUT_SHELL)
    for (const row of rows) t.same(row.batched, row.live, `${row.probe}, no process`)
    t.same(
      rows.map((row) => row.live[0]),
      [0, 1, 1, 1, 1],
    )
    for (const row of compare(probes)) t.same(row.batched, row.live, row.probe)
    const left: TlsProbe[] = [
      { ...health([]), urls: [member('/ok'), member('', closed)] },
      { ...health([]), urls: [`${member('/ok')} ${member('/ok')}`] },
      health(['/ok'], `${work}/other-ca.crt`),
      { kind: 'health', urls: [member('/ok')], caFile: ca },
      { ...health(['/ok']), certFile: `${work}/other-ca.crt`, keyFile: `${work}/other.key` },
    ]
    for (const row of compare(left)) t.same(row.batched, row.live, row.probe)
    for (const row of compare(left, WITHOUT_SHELL)) t.same(row.batched[0], 127, `${row.probe} ran`)
  })

  t.test("a batch reads each member's /health once, however many health gates list it", async (t) => {
    const healthReads = () => requestsLogged().filter((path) => path === '/ok/health').length
    const before = healthReads()
    const rows = compare([health(['/ok']), health(['/ok', '/ok']), health(['/ok', '/sick'])], WITHOUT_SHELL)
    t.same(
      rows.map((row) => row.batched),
      [
        [0, ''],
        [0, ''],
        [1, ''],
      ],
    )
    // The live commands above read it four times more; the batch, once.
    t.equal(healthReads() - before, 1 + 4)
  })

  t.test('without python3 every TLS read runs its command', async (t) => {
    const probes = [
      served(ports[1]!, certificates[1]!),
      served(postgres, certificates[5]!, 'postgres'),
      get('/ok'),
      url('/down'),
      health(['/ok']),
    ]
    for (const row of compare(probes, WITHOUT_PYTHON)) t.same(row.batched, row.live, row.probe)
    const neither = WITHOUT_PYTHON.replace("'/bin/sh', '-c'", "'/nonexistent/sh', '-c'")
    for (const row of compare(probes, neither)) t.same(row.batched[0], 127, `${row.probe} ran`)
  })

  t.test('through the loopback sshd, the batch answers as the command does live', async (t) => {
    const sshd = await startSshd()
    const conn = await SshConnection.connect(sshd.userSpec())
    t.teardown(async () => {
      await conn.close()
      await sshd.stop()
    })
    const probes = [
      served(ports[5]!, certificates[5]!),
      served(postgres, certificates[1]!, 'postgres'),
      served(ports[1]!, `${work}/leaf.der`),
      served(await closedPort(), `${work}/absent.crt`),
      get('/ok'),
      url('/ok'),
      get('/moved'),
    ]
    const answers = await conn.runProbes(probes)
    for (const [i, probe] of probes.entries()) {
      const live = await conn.run(probeCommand(probe))
      t.same([answers[i]!.code, answers[i]!.stdout.toString()], [live.code, live.stdout], JSON.stringify(probe))
    }
  })
})

t.test('a served-certificate probe stands for the command the renewal check runs', async (t) => {
  const probe = served(5432, '/etc/hastack/tls/host.crt', 'postgres')
  t.equal(
    probeCommand(probe),
    'printf \'%s\\n%s\\n\' "$(openssl x509 -noout -serial -in /etc/hastack/tls/host.crt 2>/dev/null)" ' +
      '"$(timeout 5 openssl s_client -connect 127.0.0.1:5432 -starttls postgres </dev/null 2>/dev/null' +
      ' | openssl x509 -noout -serial 2>/dev/null)"',
  )
})
