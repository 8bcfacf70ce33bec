/**
 * The facts program against the commands it stands for: over a real SSH connection (test/fixtures/sshd.ts on
 * loopback), as a plain user and as root, it must print what the shell script that ran those commands printed,
 * line for line; and the secret fingerprints are read as root through the session, present, missing or not.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { FACTS_PROGRAM, gatherFacts, parseFacts } from '../../lib/facts/system.ts'
import { readFingerprints } from '../../lib/facts/fingerprints.ts'
import { startSshd } from '../fixtures/sshd.ts'

/** The shell script the program replaced, word for word: the reference for what each fact must read. */
const REFERENCE = [
  'echo "hostname=$(hostname)"',
  'echo "fqdn=$(hostname -f 2>/dev/null || hostname)"',
  'echo "arch=$(uname -m)"',
  'echo "kernel=$(uname -r)"',
  'echo "cpus=$(nproc)"',
  `echo "memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"`,
  'echo "pid1=$(cat /proc/1/comm 2>/dev/null)"',
  '. /etc/os-release 2>/dev/null; echo "os_id=$ID"; echo "os_version=$VERSION_ID"; ' +
    'echo "os_codename=$VERSION_CODENAME"; echo "os_pretty=$PRETTY_NAME"',
  `ip -o -4 addr show scope global 2>/dev/null | awk '{print "addr=" $2 " " $4}'`,
  'echo "control=${SSH_CONNECTION%% *}"',
  `ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") print "default=" $(i+1)}' | head -n1`,
].join('; ')

const sshd = await startSshd()
t.teardown(() => sshd.stop())
const work = mkdtempSync('/tmp/hastack-facts-')
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const held = `${work}/secrets.sha256`
const print = { salt: 'a'.repeat(32), hash: 'b'.repeat(64) }
writeFileSync(held, `# fingerprints\nredis_password ${print.salt} ${print.hash}\n\n`, { mode: 0o600 })
mkdirSync(`${work}/a-directory`)

t.test('the facts program prints what the commands print, as a user and as root', async (t) => {
  for (const spec of [sshd.userSpec(), sshd.rootSpec()]) {
    const conn = await SshConnection.connect(spec)
    t.teardown(() => conn.close())
    const reference = await conn.run(REFERENCE, { sudo: false, check: true })
    const program = await conn.run(['perl', '-e', FACTS_PROGRAM], { sudo: false, check: true })
    t.equal(program.stdout, reference.stdout, `as ${spec.user}, line for line`)
    t.equal(program.stderr, '', `as ${spec.user}, nothing on stderr`)
    t.same(await gatherFacts(conn), parseFacts(reference.stdout), `as ${spec.user}, the parsed facts`)
  }
})

t.test('the fingerprints are read as root, through the session when the login user is not root', async (t) => {
  for (const spec of [sshd.userSpec(), sshd.rootSpec()]) {
    const conn = await SshConnection.connect(spec)
    t.teardown(() => conn.close())
    t.same(await readFingerprints(conn, held), { redis_password: print }, `as ${spec.user}: the file's`)
    t.same(await readFingerprints(conn, `${work}/missing`), {}, `as ${spec.user}: no file, none held`)
    t.equal(await readFingerprints(conn, `${work}/a-directory`), undefined, `as ${spec.user}: unreadable`)
    t.equal(conn.sessionsOpened, spec.user === 'root' ? 0 : 1, `as ${spec.user}: no sudo besides the session's`)
  }
})

t.test('the facts program runs no shell and loads no module', async (t) => {
  t.notMatch(FACTS_PROGRAM, /\buse (?!strict;)/, 'only `use strict`')
  t.notMatch(FACTS_PROGRAM, /\bsystem\b|`|qx/, 'commands start from a list of words')
})
