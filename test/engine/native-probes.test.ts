/**
 * The probe kinds the batch answers without a process of its own (group, user, path test, digest, line):
 * run through the evaluator on this machine, in a private mount namespace whose nsswitch.conf, passwd and
 * group files the test chooses (bind mounts: the machine's own files are never changed), each answer is
 * byte for byte what its command prints live in the same namespace, exit code included; and with the
 * evaluator unable to start a shell, which of them it answered itself shows: a kind it cannot prove is
 * left to its command (which then fails with 127).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Probe } from '../../lib/types.ts'
import { PROBE_SCRIPT, parseProbeAnswers, probeCommand, probeInput } from '../../lib/facts/probes.ts'

/** The namespace tests need root (unshare -m, mount --bind). */
const NEEDS_ROOT = { skip: process.getuid?.() === 0 ? false : 'needs root for a mount namespace' }
const work = mkdtempSync('/tmp/hastack-native-probes-')
chmodSync(work, 0o755)
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** The evaluator as sent, or one that cannot start a command (every `c` probe then answers 127). */
const WITHOUT_SHELL = PROBE_SCRIPT.replace("'/bin/sh', '-c'", "'/nonexistent/sh', '-c'")
t.not(WITHOUT_SHELL, PROBE_SCRIPT, 'the evaluator starts its commands through /bin/sh')

/** Run argv in a new mount namespace with these files bound over the system's. */
function inNamespace(binds: Record<string, string>, argv: string[], input = '', env = process.env) {
  const mounts = Object.entries(binds).map(([over, from]) => `mount --bind '${from}' '${over}' && `)
  const script = `${mounts.join('')}exec "$@"`
  const result = spawnSync('unshare', ['-m', 'sh', '-c', script, 'ns', ...argv], { input, env, timeout: 30_000 })
  if (result.error) throw result.error
  return { code: result.status ?? -1, stdout: result.stdout }
}

/** Each probe's batched answer (by the given evaluator) and its command's live answer, in the namespace. */
function compare(binds: Record<string, string>, probes: Probe[], script = PROBE_SCRIPT, env = process.env) {
  const batch = inNamespace(binds, ['perl', '-e', script], probeInput(probes), env)
  const answers = parseProbeAnswers(batch.stdout.toString(), probes.length)
  return probes.map((probe, i) => {
    const live = inNamespace(binds, ['/bin/sh', '-c', probeCommand(probe)!], '', env)
    return {
      probe: JSON.stringify(probe),
      batched: [answers[i]!.code, answers[i]!.stdout.toString('latin1')],
      live: [live.code, live.stdout.toString('latin1')],
    }
  })
}

/** An nsswitch.conf with these passwd and group lines, written into the work directory. */
function nsswitch(name: string, passwd: string, group: string, extra = ''): string {
  const file = `${work}/${name}`
  writeFileSync(file, `passwd: ${passwd}\ngroup: ${group}\nshadow: files\nhosts: files\n${extra}`)
  return file
}

const accountNames = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':')[0]!)

t.test(
  'every account and group of this machine, files only: answered by the evaluator, as getent and id',
  NEEDS_ROOT,
  async (t) => {
    const binds = { '/etc/nsswitch.conf': nsswitch('files-only', 'files', 'files') }
    const probes: Probe[] = [
      ...accountNames('/etc/passwd').map((name) => ({ kind: 'user' as const, name })),
      ...accountNames('/etc/group').map((name) => ({ kind: 'group' as const, name })),
    ]
    for (const row of compare(binds, probes)) t.same(row.batched, row.live, row.probe)
    for (const row of compare(binds, probes, WITHOUT_SHELL)) t.same(row.batched, row.live, `${row.probe}, no process`)
  },
)

t.test('a user in several groups, listed in the group file order, its own group first', NEEDS_ROOT, async (t) => {
  const passwd = `${work}/passwd`
  const group = `${work}/group`
  writeFileSync(
    passwd,
    `${readFileSync('/etc/passwd', 'utf8')}hastack-probe:x:4321:4320:A B,,,:/nonexistent:/bin/false\n`,
  )
  writeFileSync(
    group,
    `${readFileSync('/etc/group', 'utf8')}hastack-b:x:4322:root,hastack-probe\nhastack-own:x:4320:hastack-probe\n` +
      'hastack-a:x:4319:hastack-probe\nhastack-none:x:4323:root\n',
  )
  const binds = {
    '/etc/nsswitch.conf': nsswitch('files-only', 'files', 'files'),
    '/etc/passwd': passwd,
    '/etc/group': group,
  }
  const probes: Probe[] = [
    { kind: 'user', name: 'hastack-probe' },
    { kind: 'group', name: 'hastack-b' },
    { kind: 'group', name: 'hastack-own' },
  ]
  const rows = compare(binds, probes, WITHOUT_SHELL)
  for (const row of rows) t.same(row.batched, row.live, row.probe)
  t.same(
    rows[0]!.live[1],
    'hastack-probe:x:4321:4320:A B,,,:/nonexistent:/bin/false\nhastack-own hastack-b hastack-a\n',
  )
})

t.test(
  'what the evaluator cannot prove is left to the command, which answers as it would live',
  NEEDS_ROOT,
  async (t) => {
    const spaced = `${work}/group-spaced`
    writeFileSync(spaced, `${readFileSync('/etc/group', 'utf8')} hastack-spaced:x:4400:\n`)
    const cases: Array<[string, Record<string, string>, Probe[]]> = [
      ['another source first', { '/etc/nsswitch.conf': nsswitch('other', 'systemd files', 'systemd files') }, []],
      ['an action', { '/etc/nsswitch.conf': nsswitch('action', 'files [NOTFOUND=return]', 'files') }, []],
      ['an initgroups line', { '/etc/nsswitch.conf': nsswitch('init', 'files', 'files', 'initgroups: files\n') }, []],
      [
        'a group line not plain',
        { '/etc/nsswitch.conf': nsswitch('files-only', 'files', 'files'), '/etc/group': spaced },
        [],
      ],
    ]
    for (const [what, binds] of cases) {
      const probes: Probe[] = [{ kind: 'user', name: 'root' }]
      if (what !== 'an action' && what !== 'an initgroups line') probes.push({ kind: 'group', name: 'root' })
      for (const row of compare(binds, probes)) t.same(row.batched, row.live, `${what}: ${row.probe}`)
      for (const row of compare(binds, probes, WITHOUT_SHELL)) t.same(row.batched[0], 127, `${what}: ${row.probe} ran`)
    }
    const filesOnly = { '/etc/nsswitch.conf': nsswitch('files-only', 'files', 'files') }
    const unprovable: Probe[] = [
      { kind: 'group', name: '0' },
      { kind: 'user', name: '-s' },
      { kind: 'group', name: 'hastack-no-such-group' },
    ]
    for (const row of compare(filesOnly, unprovable)) t.same(row.batched, row.live, row.probe)
    for (const row of compare(filesOnly, unprovable, WITHOUT_SHELL)) t.same(row.batched[0], 127, `${row.probe} ran`)
  },
)

t.test('path tests, digests, lines, file bytes, entries: no process where provable, else the command', async (t) => {
  writeFileSync(`${work}/text`, 'include /etc/x.conf\n\tindented\n\nlast')
  writeFileSync(`${work}/binary`, Buffer.from('include /etc/x.conf\n\u0000\n'))
  symlinkSync('text', `${work}/link`)
  symlinkSync('nowhere', `${work}/dangling`)
  const native: Probe[] = [
    { kind: 'test', test: 'exists', path: `${work}/link` },
    { kind: 'test', test: 'directory', path: `${work}/link` },
    { kind: 'test', test: 'directory', path: work },
    { kind: 'test', test: 'exists', path: `${work}/absent` },
    { kind: 'digest', paths: [`${work}/text`] },
    { kind: 'digest', paths: [`${work}/link`] },
    { kind: 'digest', paths: [`${work}/text`, `${work}/binary`] },
    ...['include /etc/x.conf', '\tindented', '', 'last', 'include'].map((line) => ({
      kind: 'line' as const,
      line,
      path: `${work}/text`,
    })),
  ]
  native.push(
    { kind: 'content', path: `${work}/binary` },
    { kind: 'content', path: `${work}/link` },
    { kind: 'content', path: `${work}/absent` },
    { kind: 'content', path: `${work}/absent/deeper` },
    ...['*', 'te*', 'text', 'hastack-native-probes-*', 'none*', '*.sha256'].map((pattern) => ({
      kind: 'entry' as const,
      dir: work,
      pattern,
    })),
    { kind: 'hostname', name: hostname() },
    { kind: 'hostname', name: 'hastack-not-this-host' },
    { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() },
    { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '7' },
  )
  const byCommand: Probe[] = [
    { kind: 'content', path: `${work}/dangling` },
    { kind: 'content', path: `${work}/text/under-a-file` },
    { kind: 'entry', dir: `${work}/absent`, pattern: '*' },
    { kind: 'entry', dir: `${work}/link`, pattern: '*' },
    { kind: 'entry', dir: work, pattern: 'te?t' },
    { kind: 'sysctl', key: 'net.hastack.no_such_key', value: '1' },
    { kind: 'sysctl', key: 'kernel.hostname', value: '1' },
    { kind: 'digest', paths: [`${work}/absent`] },
    { kind: 'digest', paths: [`${work}/text`, `${work}/absent`] },
    { kind: 'line', line: 'include /etc/x.conf', path: `${work}/binary` },
    { kind: 'line', line: '-include', path: `${work}/text` },
    { kind: 'line', line: 'x', path: `${work}/absent` },
  ]
  for (const row of compare({}, [...native, ...byCommand])) t.same(row.batched, row.live, row.probe)
  const alone = compare({}, [...native, ...byCommand], WITHOUT_SHELL)
  for (const row of alone.slice(0, native.length)) t.same(row.batched, row.live, `${row.probe}, no process`)
  for (const row of alone.slice(native.length)) t.same(row.batched[0], 127, `${row.probe} ran`)
})

t.test('a listing in the C collation, and a digest of a file twice, without a process', async (t) => {
  const dir = `${work}/listing`
  mkdirSync(dir)
  for (const name of ['b.yml', 'B.yml', 'a-b', 'a.b', 'ab', '_x', '.hidden', '10', '9'])
    writeFileSync(`${dir}/${name}`, name)
  const cLocale = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C' }
  const probes: Probe[] = [
    { kind: 'listing', dir },
    { kind: 'digest', paths: [`${dir}/ab`, `${dir}/10`, `${dir}/ab`] },
  ]
  for (const row of compare({}, probes, WITHOUT_SHELL, cLocale))
    t.same(row.batched, row.live, `${row.probe}, no process`)
  const otherLocale = { ...process.env, LC_ALL: '', LC_COLLATE: '', LANG: 'en_US.UTF-8' }
  const left: Probe[] = [
    { kind: 'listing', dir },
    { kind: 'listing', dir: `${work}/link` },
    { kind: 'listing', dir: `${work}/absent` },
  ]
  for (const row of compare({}, left, PROBE_SCRIPT, otherLocale)) t.same(row.batched, row.live, row.probe)
  for (const row of compare({}, left, WITHOUT_SHELL, otherLocale)) t.same(row.batched[0], 127, `${row.probe} ran`)
})
