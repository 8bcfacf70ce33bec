/**
 * The facts program against the commands it stands for: over a real SSH connection (test/fixtures/sshd.ts on
 * loopback), as a plain user (the fingerprints read through sudo) and as root, it must print what the shell
 * script that ran those commands printed, line for line: a fingerprint file present, missing, unreadable.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { FACTS_PROGRAM, gatherFacts, parseFacts } from '../../lib/facts/system.ts'
import { startSshd } from '../fixtures/sshd.ts'

/** The shell script the program replaced, word for word: the reference for what each fact must read. */
const REFERENCE = (file: string) =>
  [
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
    `f='${file}'`,
    'if [ "$(id -u)" = 0 ]; then c=$(cat -- "$f" 2>/dev/null); r=$?; [ -e "$f" ] || r=3',
    `else c=$(sudo -n sh -c '[ -e "$1" ] || exit 3; cat -- "$1"' sh "$f" 2>/dev/null); r=$?; fi`,
    "if [ $r = 0 ]; then printf '%s\\n' \"$c\" | sed 's/^/fp=/'; elif [ $r != 3 ]; then echo fp_unreadable=1; fi",
  ].join('; ')

const sshd = await startSshd()
t.teardown(() => sshd.stop())
const work = mkdtempSync('/tmp/hastack-facts-')
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const held = `${work}/secrets.sha256`
writeFileSync(held, `# fingerprints\nredis_password ${'a'.repeat(32)} ${'b'.repeat(64)}\n\n`, { mode: 0o600 })
mkdirSync(`${work}/a-directory`)
const FILES = { held, missing: `${work}/missing`, unreadable: `${work}/a-directory` }

t.test('the facts program prints what the commands print, as a user and as root', async (t) => {
  for (const spec of [sshd.userSpec(), sshd.rootSpec()]) {
    const conn = await SshConnection.connect(spec)
    t.teardown(() => conn.close())
    for (const [name, file] of Object.entries(FILES)) {
      const reference = await conn.run(REFERENCE(file), { sudo: false, check: true })
      const program = await conn.run(['perl', '-e', FACTS_PROGRAM, file], { sudo: false, check: true })
      const lines = (text: string) => text.split('\n').filter(Boolean).sort()
      t.same(lines(program.stdout), lines(reference.stdout), `as ${spec.user}, fingerprint file ${name}`)
      t.equal(program.stderr, '', `as ${spec.user}, nothing on stderr`)
      t.same(await gatherFacts(conn, file), parseFacts(reference.stdout), `as ${spec.user}, the parsed facts`)
    }
  }
})

t.test('the facts program runs no shell and loads no module', async (t) => {
  t.notMatch(FACTS_PROGRAM, /\buse (?!strict;)/, 'only `use strict`')
  t.notMatch(FACTS_PROGRAM, /\bsystem\b|`|qx/, 'commands start from a list of words')
})
