/**
 * Host key pinning against real sshds on loopback: the first run records each
 * host's key in `<inventory>.known_hosts`, a swapped server key then fails that
 * host (exit 4, nothing run on it) with both fingerprints; strict checking
 * refuses a host that is not in the file; a jump host is pinned too.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NodeSSH } from 'node-ssh'
import { fingerprint, keysFor } from '../../lib/connection/known-hosts.ts'
import { SshConnection } from '../../lib/connection/ssh.ts'
import type { Play } from '../../lib/types.ts'
import { UnreachableError } from '../../lib/types.ts'
import { TEST_USER, type Sshd } from '../fixtures/sshd.ts'
import { loopbackHosts, type Lab } from './harness.ts'

let lab: Lab
t.before(async () => {
  lab = await loopbackHosts(2)
})
t.teardown(() => lab.stop())

/** A play that leaves a marker file per host, so a test can tell on which hosts it ran. */
function markerPlay(marker: string): Play {
  return {
    name: 'mark',
    hosts: 'all',
    tasks: async (h) => void (await h.query(['touch', `${marker}-${h.name}`], { check: true })),
  }
}

/** The key a server presents now, as an SSH blob. */
async function presentedKey(sshd: Sshd): Promise<Buffer> {
  let seen: Buffer | undefined
  const ssh = new NodeSSH()
  try {
    const hostVerifier = (key: Buffer) => ((seen = key), true)
    const login = { host: sshd.address, port: sshd.port, username: 'root', privateKeyPath: sshd.keyFile }
    await ssh.connect({ ...login, hostVerifier } as never)
  } finally {
    ssh.dispose()
  }
  return seen!
}

/** Give a server a new host key (sshd re-reads its keys on SIGHUP) and wait, 10 s at most, until it presents it. */
async function swapHostKey(sshd: Sshd): Promise<void> {
  const before = await presentedKey(sshd)
  rmSync(`${sshd.dir}/host_key`)
  rmSync(`${sshd.dir}/host_key.pub`)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'swapped', '-f', `${sshd.dir}/host_key`])
  process.kill(sshd.pid, 'SIGHUP')
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const now = await presentedKey(sshd).catch(() => before)
    if (!now.equals(before)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('sshd did not present its new host key within 10 s')
}

t.test('the first run records every host key; a changed key then fails only that host', async (t) => {
  const file = join(lab.dir, 'hosts.known_hosts')
  const first = await lab.run([markerPlay(join(lab.dir, 'first'))])
  t.equal(first.exitCode, 0)
  const recorded = readFileSync(file, 'utf8')
  for (const sshd of lab.sshds) {
    const known = keysFor(recorded, `[127.0.0.1]:${sshd.port}`)
    t.equal(known.length, 1, `the key of port ${sshd.port} is recorded once`)
    t.ok(known[0]!.key.equals(await presentedKey(sshd)), 'the recorded key is the one the server presents')
  }
  const old = fingerprint(await presentedKey(lab.sshds[0]!))
  await swapHostKey(lab.sshds[0]!)
  const now = fingerprint(await presentedKey(lab.sshds[0]!))

  const marker = join(lab.dir, 'after-swap')
  const second = await lab.run([markerPlay(marker)])
  t.equal(second.exitCode, 4, 'a refused host is unreachable: exit 4')
  const output = second.lines.join('\n')
  t.match(output, /HOST KEY CHANGED for h1 \(\[127\.0\.0\.1\]:\d+\)/)
  t.ok(output.includes(old) && output.includes(now), 'the old and new fingerprints are named')
  t.match(output, `ssh-keygen -R '[127.0.0.1]:${lab.sshds[0]!.port}' -f ${file}`)
  t.notOk(existsSync(`${marker}-h1`), 'nothing ran on the host with the changed key')
  t.ok(existsSync(`${marker}-h2`), 'the other host converged')
  t.equal(readFileSync(file, 'utf8'), recorded, 'the known_hosts file is unchanged')
})

t.test('strict checking refuses a host missing from the known_hosts file', async (t) => {
  const vars = { ssh_host_key_checking: 'strict', ssh_known_hosts_file: 'pinned/keys' }
  const strict = await loopbackHosts(1, { vars })
  t.teardown(() => strict.stop())
  const missing = await strict.run([markerPlay(join(strict.dir, 'never'))])
  t.equal(missing.exitCode, 1, 'a strict inventory without its file is bad input')
  execFileSync('mkdir', [join(strict.dir, 'pinned')])
  writeFileSync(join(strict.dir, 'pinned/keys'), '# nothing pinned yet\n')
  const unknown = await strict.run([markerPlay(join(strict.dir, 'never'))])
  t.equal(unknown.exitCode, 4)
  t.match(unknown.lines.join('\n'), /unknown host key SHA256:\S+ \(ssh-ed25519\) for h1 .*is strict/)
  t.notOk(existsSync(join(strict.dir, 'never-h1')), 'nothing ran')
  const key = await presentedKey(strict.sshds[0]!)
  const pin = `[127.0.0.1]:${strict.sshds[0]!.port} ssh-ed25519 ${key.toString('base64')}\n`
  writeFileSync(join(strict.dir, 'pinned/keys'), pin)
  const pinned = await strict.run([markerPlay(join(strict.dir, 'pinned-run'))])
  t.equal(pinned.exitCode, 0, 'a pinned host converges')
})

t.test('the jump host key is pinned as well', async (t) => {
  const [jump, target] = [lab.sshds[1]!, lab.sshds[0]!]
  const file = join(lab.dir, 'jump.known_hosts')
  const via = { host: '127.0.0.1', port: jump.port, user: TEST_USER, key: jump.keyFile }
  const spec = (checking: 'accept-new' | 'strict') =>
    target.rootSpec({ host: 'behind', jump: via, knownHosts: { file, checking } })
  const conn = await SshConnection.connect(spec('accept-new'))
  t.equal((await conn.run('id -un')).stdout, 'root\n')
  await conn.close()
  const text = readFileSync(file, 'utf8')
  t.equal(keysFor(text, `[127.0.0.1]:${jump.port}`).length, 1, 'the jump host is recorded')
  t.equal(keysFor(text, `[127.0.0.1]:${target.port}`).length, 1, 'the target is recorded')

  writeFileSync(
    file,
    text
      .split('\n')
      .filter((l) => !l.startsWith(`[127.0.0.1]:${jump.port} `))
      .join('\n'),
  )
  const err = await SshConnection.connect(spec('strict')).catch((e) => e)
  t.type(err, UnreachableError)
  t.match(err.message, `unknown host key`)
  t.match(err.message, `for the jump host of behind ([127.0.0.1]:${jump.port})`)
})
