/**
 * Fast, table-driven tests of the engine's pure parts: fact parsers, line
 * editing, argument parsing, rolling batches, masking and diffs.
 */
import t from 'tap'
import { parseFacts } from '../../lib/facts/system.ts'
import { normalizeMode, parsePathState } from '../../lib/facts/files.ts'
import { editLines } from '../../lib/tasks/files.ts'
import { parseInstalled } from '../../lib/tasks/apt.ts'
import { parseServiceState } from '../../lib/tasks/systemd.ts'
import { isActiveState, unitStateWords } from '../../lib/facts/units.ts'
import { parseUser } from '../../lib/tasks/users.ts'
import { parseArgs, scriptArgs } from '../../lib/cli/args.ts'
import { batches, mapLimit } from '../../lib/play/runner.ts'
import { clearSecrets, mask, registerSecrets } from '../../lib/output/mask.ts'
import { unifiedDiff } from '../../lib/output/diff.ts'
import { InputError } from '../../lib/types.ts'

t.test('parseFacts reads OS, CPUs, memory and addresses', async (t) => {
  const f = parseFacts(
    'hostname=db1\nfqdn=db1.lab\narch=x86_64\nkernel=6.1\ncpus=2\nmemkb=2048000\npid1=systemd\nos_id=debian\nos_version=12\nos_codename=bookworm\nos_pretty=Debian GNU/Linux 12 (bookworm)\naddr=host0 10.1.2.3/24\naddr=host0 10.1.2.4/24\ndefault=10.1.2.3\n',
  )
  t.equal(f.hostname, 'db1')
  t.equal(f.os.codename, 'bookworm')
  t.equal(f.cpus, 2)
  t.equal(f.memoryMb, 2000)
  t.same(f.ipv4, { host0: ['10.1.2.3', '10.1.2.4'] })
  t.equal(f.defaultIpv4, '10.1.2.3')
  t.equal(f.systemd, true)
})

t.test('parsePathState tells files, directories, links and absence apart', async (t) => {
  t.same(parsePathState('absent\n'), { type: 'absent' })
  t.same(parsePathState('link\n/etc/x\n'), { type: 'link', linkTarget: '/etc/x' })
  const file = parsePathState('regular file|640|postgres|postgres|12\nabc123\n')
  t.equal(file.type, 'file')
  t.equal(file.mode, '0640')
  t.equal(file.sha256, 'abc123')
  t.equal(parsePathState('regular empty file|644|root|root|0\ne3b0\n').type, 'file')
  t.equal(parsePathState('directory|2750|a|b|4096\n').mode, '2750')
  t.equal(normalizeMode('755'), '0755')
  t.equal(normalizeMode('00640'), '0640')
})

t.test('editLines replaces, appends, deduplicates and removes lines', async (t) => {
  const cases: [string, Parameters<typeof editLines>[1], string][] = [
    ['a\nb\n', { line: 'c' }, 'a\nb\nc\n'],
    ['a\nb\n', { line: 'b' }, 'a\nb\n'],
    ['x=1\ny=2\nx=3\n', { line: 'x=9', regexp: /^x=/ }, 'x=9\ny=2\n'],
    ['x=1\ny=2\n', { line: 'x=1', state: 'absent' }, 'y=2\n'],
    ['', { line: 'only' }, 'only\n'],
    ['a', { line: 'b' }, 'a\nb\n'],
  ]
  for (const [input, args, expected] of cases)
    t.equal(editLines(input, args), expected, JSON.stringify({ input, args: String(args.line) }))
})

t.test('service, package and user parsers', async (t) => {
  t.same(parseServiceState('enabled\nactive\n'), { enabled: true, active: true })
  t.same(parseServiceState('disabled\ninactive\n'), { enabled: false, active: false })
  t.same(parseServiceState('\n\n'), { enabled: false, active: false })
  t.same(parseServiceState('static\nactivating\n'), { enabled: false, active: true })
  t.same(unitStateWords('inactive\n'), { enabled: '', active: 'inactive' }, 'an unknown unit: is-active alone')
  t.same(
    [...parseInstalled('redis-server installed\nfoo not-installed\nlibc6:amd64 installed\n')],
    ['redis-server', 'libc6'],
  )
  t.same(parseUser('pg:x:1:1::/var/lib/pg:/bin/bash\n', 'pg ssl-cert\n'), {
    home: '/var/lib/pg',
    shell: '/bin/bash',
    groups: ['pg', 'ssl-cert'],
  })
})

t.test('isActiveState answers as `systemctl is-active -q` exits, from the unit state output', async (t) => {
  const cases: [string, boolean][] = [
    ['enabled\nactive\n', true],
    ['disabled\nreloading\n', true],
    ['static\nrefreshing\n', true],
    ['enabled\ninactive\n', false],
    ['enabled\nactivating\n', false],
    ['enabled\nfailed\n', false],
    ['inactive\n', false],
    ['enabled\n', false],
    ['', false],
  ]
  for (const [stdout, active] of cases) t.equal(isActiveState(stdout), active, JSON.stringify(stdout))
})

t.test('parseArgs understands Ansible-style options and rejects bad ones', async (t) => {
  const o = parseArgs([
    ...['-i', 'inv.yml', '-l', 'db:&prod', '-e', 'a=1', '-e', '@x.yml', '--check', '--diff'],
    ...['-t', 'a,b', '--skip-tags=c', '-f', '3', '-vv', '--json', 'r.json'],
  ])
  t.equal(o.inventory, 'inv.yml')
  t.equal(o.limit, 'db:&prod')
  t.same(o.extraVars, ['a=1', '@x.yml'])
  t.ok(o.check && o.diff)
  t.same(o.tags, ['a', 'b'])
  t.same(o.skipTags, ['c'])
  t.equal(o.forks, 3)
  t.equal(o.verbosity, 2)
  t.equal(o.json, 'r.json')
  t.throws(() => parseArgs([]), InputError)
  t.throws(() => parseArgs(['-i', 'x', '-f', 'zero']), /--forks must be a number/)
  t.throws(() => parseArgs(['-i', 'x', '-f', '0']), /positive whole number/)
  t.throws(() => parseArgs(['-i']), /needs a value/)
  t.same(scriptArgs(['node', '/zx/cli.js', 'playbooks/site.ts', '-i', 'a'], '/repo/playbooks/site.ts'), ['-i', 'a'])
})

t.test('batches split hosts by count or percentage', async (t) => {
  const hosts = ['a', 'b', 'c', 'd', 'e']
  t.same(batches(hosts), [hosts])
  t.same(batches(hosts, 2), [['a', 'b'], ['c', 'd'], ['e']])
  t.same(batches(hosts, '40%'), [['a', 'b'], ['c', 'd'], ['e']])
  t.same(batches(hosts, '10%'), [['a'], ['b'], ['c'], ['d'], ['e']])
})

t.test('mapLimit never runs more than the limit at once', async (t) => {
  let running = 0
  let peak = 0
  await mapLimit([...Array(20).keys()], 3, async () => {
    peak = Math.max(peak, ++running)
    await new Promise((r) => setImmediate(r))
    running--
  })
  t.equal(peak, 3)
})

t.test('mask hides every registered secret, longest first', async (t) => {
  t.teardown(clearSecrets)
  registerSecrets(['abcdef', 'abcdefgh', 'xy'])
  t.equal(mask('p=abcdefgh q=abcdef r=xy'), 'p=*** q=*** r=xy')
})

t.test('unifiedDiff shows hunks and masks secrets', async (t) => {
  t.teardown(clearSecrets)
  registerSecrets(['topsecret'])
  const d = unifiedDiff('/etc/x.conf', 'a\nb\n', 'a\npassword=topsecret\n')
  t.match(d, /^--- \/etc\/x\.conf \(current\)/m)
  t.match(d, /^-b$/m)
  t.match(d, /^\+password=\*\*\*$/m)
  t.equal(unifiedDiff('/x', 'same', 'same'), '')
  t.match(unifiedDiff('/x', undefined, 'new\n'), /^--- \/dev\/null/m)
})
