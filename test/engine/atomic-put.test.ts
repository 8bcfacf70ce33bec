/**
 * Atomic, checked writes against a real sshd on loopback: an upload cut off
 * mid-transfer (the server's session killed, or the remote script terminated)
 * leaves the old file intact and no temp file behind, and a validator that
 * rejects the new content keeps the live file. The "host" is this machine, so
 * the test watches the target directory directly.
 */
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { CommandError, UnreachableError } from '../../lib/types.ts'
import { startSshd } from '../fixtures/sshd.ts'

const OLD = 'old content, must survive\n'
/** Large enough that the transfer is still under way when the test cuts it. */
const BIG = Buffer.alloc(64 << 20, 'n')

const sshd = await startSshd()
const work = mkdtempSync('/tmp/hastack-atomic-')
t.teardown(async () => {
  await sshd.stop()
  rmSync(work, { recursive: true, force: true })
})

/** Hidden files in a test's own directory: the temp file of an upload (`.NAME.hastack-XXXXXX`). */
const tempFiles = (dir: string) => readdirSync(dir).filter((name) => name.startsWith('.'))

/** Poll (every 20 ms, at most `ms`) until `probe` returns a value. */
async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const value = await probe()
    if (value !== undefined) return value
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** The temp file of an upload once it holds at least 1 MiB. */
function growingTemp(dir: string): () => string | undefined {
  const size = (name: string) => statSync(`${dir}/${name}`, { throwIfNoEntry: false })?.size ?? 0
  return () => tempFiles(dir).find((name) => size(name) >= 1 << 20)
}

/** Every process below `pid` whose command name is `name`, from /proc. */
async function descendants(pid: number, name: string): Promise<number[]> {
  const parents = new Map<number, number>()
  const comms = new Map<number, string>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    if (!stat) continue
    parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    comms.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')))
  }
  const below = (p: number): boolean => {
    let q = parents.get(p)
    for (let hops = 0; q !== undefined && hops < 64; hops++) {
      if (q === pid) return true
      q = parents.get(q)
    }
    return false
  }
  return [...parents.keys()].filter((p) => comms.get(p) === name && below(p))
}

t.test('a connection dropped mid-upload leaves the old file intact and no temp file', async (t) => {
  const dir = mkdtempSync(`${work}/drop-`)
  const target = `${dir}/big.conf`
  writeFileSync(target, OLD)
  const conn = await SshConnection.connect(sshd.userSpec())
  t.teardown(() => conn.close())
  // The server side of this connection (sshd's session processes, not the shell receiving the file),
  // found before the upload so that it dies within milliseconds of the first megabyte arriving;
  // after a first command, when sshd has forked the post-authentication process that holds the socket.
  await conn.run('true', { check: true })
  const sessions = await descendants(sshd.pid, 'sshd')
  t.ok(sessions.length > 0, 'found the sshd session processes')
  const upload = conn.put(target, BIG, { mode: '0644' }).catch((e) => e)
  await waitFor('the upload to start', growingTemp(dir))
  for (const pid of sessions) process.kill(pid, 'SIGKILL')
  t.type(await upload, UnreachableError, 'the put fails as a lost connection')
  await waitFor('the temp file to be removed', () => (tempFiles(dir).length === 0 ? true : undefined))
  t.equal(readFileSync(target, 'utf8'), OLD, 'the old content is intact')
  t.same(readdirSync(dir), ['big.conf'], 'nothing else is left in the directory')
})

t.test('SIGTERM to the remote write leaves the old file intact and no temp file', async (t) => {
  const dir = mkdtempSync(`${work}/term-`)
  const target = `${dir}/big.conf`
  writeFileSync(target, OLD)
  const conn = await SshConnection.connect(sshd.rootSpec())
  t.teardown(() => conn.close())
  // A slow validator holds the script between the upload and the rename: the signal lands in that window.
  const upload = conn.put(target, BIG, { validate: 'sleep 2; test -s %s' }).catch((e) => e)
  const size = (name: string) => statSync(`${dir}/${name}`, { throwIfNoEntry: false })?.size ?? 0
  await waitFor('the upload to complete', () => tempFiles(dir).find((name) => size(name) === BIG.length))
  const scripts = await descendants(sshd.pid, 'sh')
  t.ok(scripts.length > 0, 'found the remote script')
  for (const pid of scripts) process.kill(pid, 'SIGTERM')
  const err = await upload
  t.type(err, CommandError)
  t.equal(err.result.code, 143, 'the script ends as terminated')
  t.equal(readFileSync(target, 'utf8'), OLD, 'the old content is intact')
  t.same(readdirSync(dir), ['big.conf'], 'no temp file is left')
})

t.test('a failing validator keeps the live file and reports the checker output', async (t) => {
  const dir = mkdtempSync(`${work}/validate-`)
  const target = `${dir}/haproxy.cfg`
  writeFileSync(target, 'global\n  maxconn 100\n')
  const conn = await SshConnection.connect(sshd.userSpec())
  t.teardown(() => conn.close())
  const check = `sh -c 'grep -q "^global" "$1" || { echo "[ALERT] no global section in $1"; exit 1; }' check %s`
  const err = await conn.put(target, 'frontend broken\n', { mode: '0640', validate: check }).catch((e) => e)
  t.type(err, CommandError)
  t.equal(err.result.code, 3)
  t.match(err.message, /\[ALERT\] no global section in .*\/\.haproxy\.cfg\.hastack-/, 'the checker saw the temp file')
  t.match(err.message, /validation of the new .*haproxy\.cfg failed .* left unchanged/)
  t.equal(readFileSync(target, 'utf8'), 'global\n  maxconn 100\n', 'the live file is untouched')
  t.same(readdirSync(dir), ['haproxy.cfg'], 'no temp file is left')

  await conn.put(target, 'global\n  maxconn 200\n', { mode: '0640', validate: check })
  t.equal(readFileSync(target, 'utf8'), 'global\n  maxconn 200\n', 'content the checker accepts replaces the file')
  t.equal((statSync(target).mode & 0o777).toString(8), '640', 'the mode was set before the rename')
})

t.test('a validate command without %s is refused before anything is sent', async (t) => {
  const conn = await SshConnection.connect(sshd.rootSpec())
  t.teardown(() => conn.close())
  const before = conn.commandCount
  await t.rejects(conn.put(`${work}/x`, 'x', { validate: 'haproxy -c -f' }), /needs %s/)
  t.equal(conn.commandCount, before, 'no command ran')
})
