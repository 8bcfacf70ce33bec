/** Pinned host keys: known_hosts matching, fingerprints, accept-new recording, strict and changed-key refusals. */
import { execFileSync } from 'node:child_process'
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { KnownHosts, fingerprint, keysFor, keyType, knownHostName } from '../../lib/connection/known-hosts.ts'
import { tree } from '../fixtures/tree.ts'

/** A fresh ed25519 public key as an SSH wire blob (string "ssh-ed25519", string key). */
function ed25519Blob(): Buffer {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' })
  const raw = der.subarray(der.length - 32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)])
}
const line = (hosts: string, key: Buffer) => `${hosts} ssh-ed25519 ${key.toString('base64')}\n`
/** A key presented by host `host` on 127.0.0.1:port. */
const presented = (port: number, key: Buffer, host = 'db1') => ({ host, address: '127.0.0.1', port, key })

t.test('a host is named by address on port 22 and [address]:port elsewhere', async (t) => {
  t.equal(knownHostName('10.0.0.5', 22), '10.0.0.5')
  t.equal(knownHostName('127.0.0.1', 2222), '[127.0.0.1]:2222')
})

t.test('fingerprints match ssh-keygen -lf and the key type is read from the blob', async (t) => {
  const key = ed25519Blob()
  const dir = await tree({ 'k.pub': `ssh-ed25519 ${key.toString('base64')} test\n` })
  const listed = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'k.pub')], { encoding: 'utf8' })
  t.equal(listed.split(' ')[1], fingerprint(key))
  t.equal(keyType(key), 'ssh-ed25519')
})

t.test('lines match by list, wildcard, negation and hashed name; comments and other hosts are skipped', async (t) => {
  const [a, b, c, d, e] = [ed25519Blob(), ed25519Blob(), ed25519Blob(), ed25519Blob(), ed25519Blob()]
  const salt = randomBytes(20)
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[db1.lan]:2222').digest('base64')}`
  const text = [
    '# a comment',
    line('db2.lan,[db1.lan]:2222', a).trim(),
    line('*.lan,!db1.lan', b).trim(),
    line(hashed, c).trim(),
    line('[db1.lan]:2200', d).trim(),
    `@revoked ${line('db1.lan', e).trim()}`,
    'garbage',
  ].join('\n')
  t.same(
    keysFor(text, '[db1.lan]:2222').map((k) => k.line),
    [2, 4],
    'listed and hashed entries for the port match; another port does not',
  )
  t.same(
    keysFor(text, 'db3.lan').map((k) => k.line),
    [3],
    'a wildcard matches',
  )
  t.same(
    keysFor(text, 'db1.lan').map((k) => [k.line, k.revoked]),
    [[6, true]],
    'a negated pattern vetoes its line; @revoked is kept as revoked',
  )
})

t.test('accept-new records an unknown host once, atomically, and accepts it later', async (t) => {
  const dir = await tree({})
  const file = path.join(dir, 'lab.known_hosts')
  const pinned = new KnownHosts(file, 'accept-new')
  const key = ed25519Blob()
  t.same(await pinned.verify({ host: 'db1', address: '127.0.0.1', port: 2201, key }), { ok: true, recorded: true })
  t.equal(await readFile(file, 'utf8'), line('[127.0.0.1]:2201', key))
  t.equal((await stat(file)).mode & 0o777, 0o644)
  t.same(await pinned.verify({ host: 'db1', address: '127.0.0.1', port: 2201, key }), { ok: true, recorded: false })
  t.same(await readdir(dir), ['lab.known_hosts'], 'no temp file is left')
})

t.test('concurrent first connections of many hosts are all recorded', async (t) => {
  const dir = await tree({ 'lab.known_hosts': '# kept\n' })
  const file = path.join(dir, 'lab.known_hosts')
  const keys = Array.from({ length: 12 }, () => ed25519Blob())
  const verdicts = await Promise.all(
    keys.map((key, i) => new KnownHosts(file, 'accept-new').verify(presented(3000 + i, key, `h${i}`))),
  )
  t.ok(verdicts.every((v) => v.ok))
  const text = await readFile(file, 'utf8')
  t.ok(text.startsWith('# kept\n'), 'existing lines are kept')
  keys.forEach((key, i) => t.ok(keysFor(text, `[127.0.0.1]:${3000 + i}`)[0]?.key.equals(key), `h${i} recorded`))
})

t.test('a changed key is refused naming host, both fingerprints and the fix, and the file is unchanged', async (t) => {
  const old = ed25519Blob()
  const dir = await tree({ 'lab.known_hosts': line('[127.0.0.1]:2201', old) })
  const file = path.join(dir, 'lab.known_hosts')
  const now = ed25519Blob()
  for (const checking of ['accept-new', 'strict'] as const) {
    const verdict = await new KnownHosts(file, checking).verify(presented(2201, now))
    t.equal(verdict.ok, false, checking)
    const reason = verdict.ok ? '' : verdict.reason
    t.match(reason, 'HOST KEY CHANGED for db1 ([127.0.0.1]:2201)')
    t.ok(reason.includes(fingerprint(old)) && reason.includes(fingerprint(now)), 'old and new fingerprints are named')
    t.ok(reason.includes(`ssh-keygen -R '[127.0.0.1]:2201' -f ${file}`), 'the way to forget the old key is given')
  }
  t.equal(await readFile(file, 'utf8'), line('[127.0.0.1]:2201', old))
})

t.test('strict refuses an unknown host and records nothing; a revoked key is refused', async (t) => {
  const revoked = ed25519Blob()
  const dir = await tree({ 'lab.known_hosts': `@revoked ${line('[127.0.0.1]:2202', revoked)}` })
  const file = path.join(dir, 'lab.known_hosts')
  const verdict = await new KnownHosts(file, 'strict').verify(presented(2201, ed25519Blob()))
  const unknown = /^unknown host key SHA256:\S+ \(ssh-ed25519\) for db1 \(\[127\.0\.0\.1\]:2201\)/
  t.match(verdict, { ok: false, reason: unknown })
  t.match(verdict, { reason: /ssh_host_key_checking is strict/ })
  const again = await new KnownHosts(file, 'accept-new').verify(presented(2202, revoked, 'db2'))
  t.match(again, { ok: false, reason: /marked @revoked/ })
  t.equal((await readFile(file, 'utf8')).split('\n').filter(Boolean).length, 1, 'nothing was added')
})

t.test('an unreadable known_hosts path fails the verification instead of accepting', async (t) => {
  const dir = await tree({})
  await writeFile(path.join(dir, 'file'), '')
  const pinned = new KnownHosts(path.join(dir, 'file', 'known_hosts'), 'accept-new')
  await t.rejects(pinned.verify(presented(22, ed25519Blob())), { code: 'ENOTDIR' })
})
