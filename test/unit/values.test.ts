/**
 * Values that reach config files and commands: every string is one line, each
 * variable obeys the format its role declares, and a bad value is refused with
 * its file:line (or the command line) and key before anything connects.
 */
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { tree } from '../fixtures/tree.ts'
import { ENGINE_VARS, InventoryErrors, loadInventory } from '../../lib/inventory/index.ts'
import { FORMATS, findControlCharacters, isTimezone } from '../../lib/inventory/formats.ts'
import { allRoles } from '../../roles/index.ts'
import { playbook } from '../../lib/playbook.ts'
import { Reporter } from '../../lib/output/reporter.ts'

const HOSTS = 'all:\n  hosts:\n    node1: { address: 10.0.0.1 }\n'

/** The messages of loading an inventory that must fail; no secrets file may appear. */
async function refused(t: Test, files: Record<string, string>, extraVars: string[] = []): Promise<string[]> {
  const dir = await tree({ 'inv.yml': HOSTS, ...files })
  try {
    await loadInventory(path.join(dir, 'inv.yml'), { roles: allRoles, extraVars, secretsFile: path.join(dir, 's.yml') })
  } catch (err) {
    t.type(err, InventoryErrors)
    return (err as InventoryErrors).errors.map((e) => e.message)
  }
  t.fail('the inventory should have been refused')
  return []
}

t.test('refuses a newline in a nested list item with its file, line and key path', async (t) => {
  const messages = await refused(t, { 'group_vars/all.yml': 'common_packages:\n  - curl\n  - "less\\nrm"\n' })
  t.equal(messages.length, 1)
  t.match(messages[0], /group_vars\/all\.yml:3 \(common_packages\[1\]\): the value contains a newline/)
})

t.test('refuses a control character in a map key, naming the key path', async (t) => {
  const messages = await refused(t, { 'group_vars/all.yml': 'common_sysctl:\n  "vm.x\\ty": 1\n' })
  t.ok(messages.some((m) => /common_sysctl\.vm\.x\ty\): a key contains a tab/.test(m)))
})

t.test('refuses a NUL byte given with -e and names the command line and the key', async (t) => {
  const messages = await refused(t, {}, ['haproxy_stats_user=adm\u0000in'])
  t.match(messages.join('\n'), /<command line>:1 \(haproxy_stats_user\): the value contains a NUL byte/)
})

t.test('refuses a host name starting with a dash', async (t) => {
  const messages = await refused(t, { 'inv.yml': 'all:\n  hosts:\n    "-oProxyCommand=x": { address: 10.0.0.1 }\n' })
  t.match(messages.join('\n'), /inv\.yml:3 .*invalid host name "-oProxyCommand=x": must be a host name/)
})

t.test('refuses an apt proxy that is not an http(s) URL', async (t) => {
  for (const proxy of ['ftp://10.0.0.9/', 'http://x";\\nAcquire::x "y', 'http://a b:3142']) {
    const messages = await refused(t, { 'group_vars/all.yml': `apt_proxy: ${JSON.stringify(proxy)}\n` })
    t.match(messages.join('\n'), /\(apt_proxy\): must be an http:\/\/ or https:\/\/ URL/, proxy)
  }
})

t.test('refuses package names outside Debian grammar, in every package list', async (t) => {
  const messages = await refused(t, {
    'group_vars/all.yml': 'common_packages: [curl, "-oAPT::x=1"]\npostgresql_packages: ["Postgres 15"]\n',
  })
  t.match(messages.join('\n'), /common_packages\[1\]\): must be a Debian package name/)
  t.match(messages.join('\n'), /postgresql_packages\[0\]\): must be a Debian package name/)
})

t.test('refuses a timezone that names no zoneinfo file, and one escaping the directory', async (t) => {
  for (const zone of ['Mars/Olympus', '../../etc/passwd']) {
    const messages = await refused(t, { 'group_vars/all.yml': `timezone: ${JSON.stringify(zone)}\n` })
    t.match(messages.join('\n'), /\(timezone\): must be a time zone under \/usr\/share\/zoneinfo/, zone)
  }
})

t.test('timezone: a file under the zoneinfo directory when it exists, the pattern only without it', async (t) => {
  const zoneinfo = await mkdtemp(path.join(os.tmpdir(), 'hastack-zoneinfo-'))
  await mkdir(path.join(zoneinfo, 'Europe'))
  await writeFile(path.join(zoneinfo, 'Europe', 'Paris'), 'TZif')
  t.ok(isTimezone('Europe/Paris', zoneinfo))
  t.notOk(isTimezone('Europe/Lyon', zoneinfo))
  t.notOk(isTimezone('Europe', zoneinfo), 'a directory is not a zone')
  t.ok(isTimezone('Europe/Lyon', path.join(zoneinfo, 'absent')), 'no zoneinfo here: the pattern decides')
  t.notOk(isTimezone('Europe/../../x', path.join(zoneinfo, 'absent')))
})

t.test('refuses Redis and Sentinel passwords with spaces or quotes, never showing them', async (t) => {
  const messages = await refused(t, {
    'group_vars/all.yml': 'redis_password: "it\'s a long password"\nsentinel_password: \'say "hello" to all of us\'\n',
  })
  const text = messages.join('\n')
  t.match(text, /\(redis_password\): must be a Redis config word/)
  t.match(text, /\(sentinel_password\): must be a Redis config word/)
  t.notMatch(text, /long password|hello/)
})

t.test('refuses sysctl names and values that would break sysctl.d', async (t) => {
  const sysctl = 'common_sysctl:\n  "kernel": 1\n  vm.swappiness: "1; reboot"\n'
  const messages = await refused(t, { 'group_vars/all.yml': sysctl })
  const text = messages.join('\n')
  t.match(text, /must be a sysctl name/)
  t.match(text, /common_sysctl\.vm\.swappiness\): must be a sysctl value/)
})

t.test('refuses data directories with relative parts and client networks that are not CIDR', async (t) => {
  const messages = await refused(t, {
    'group_vars/all.yml': 'postgresql_data_dir: /var/lib/../../etc\npostgresql_client_networks: [10.0.0.0/33]\n',
  })
  t.match(messages.join('\n'), /\(postgresql_data_dir\): must be an absolute path/)
  t.match(messages.join('\n'), /postgresql_client_networks\[0\]\): must be an IPv4 network/)
})

t.test('accepts awkward but valid values: an HAProxy password with $, quotes, spaces and #', async (t) => {
  const dir = await tree({
    'inv.yml': HOSTS,
    'group_vars/all.yml':
      'haproxy_stats_password: "p&ss\\"word$ x #1 long"\ntimezone: Etc/UTC\napt_proxy: http://10.0.0.254:3142\n',
  })
  const options = { roles: allRoles, secretsFile: path.join(dir, 's.yml') }
  const inventory = await loadInventory(path.join(dir, 'inv.yml'), options)
  t.equal(inventory.hosts.get('node1')!.vars.haproxy_stats_password, `p&ss"word$ x #1 long`)
})

t.test('every declared format refuses the empty string and a newline', async (t) => {
  for (const [name, format] of Object.entries(FORMATS)) {
    t.notOk(format.test(''), `${name} refuses ''`)
    t.notOk(format.test('a\nb'), `${name} refuses a newline`)
  }
})

t.test('findControlCharacters walks nested lists and maps', async (t) => {
  const found = findControlCharacters({ a: [{ b: 'ok' }, { c: 'x\ry' }], 'd\u2028': 1 })
  t.same(found, [
    { keys: ['a', 1, 'c'], character: 'a carriage return', inKey: false },
    { keys: ['d\u2028'], character: 'the control character U+2028', inKey: true },
  ])
})

t.test('a playbook given a bad value exits 1 naming the place and key, before any connection or file', async (t) => {
  // The host's SSH port is closed: had the run gone on, it would end unreachable (exit 4), not 1.
  const dir = await tree({ 'inv.yml': 'all:\n  hosts:\n    node1: { address: 127.0.0.1, ssh_port: 1 }\n' })
  const inventory = path.join(dir, 'inv.yml')
  const errors: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write
  const reporter = new Reporter({ verbosity: 0, diff: false, color: false, write: () => {} })
  const plays = [{ name: 'nothing', hosts: 'all', roles: allRoles.slice(0, 1) }]
  try {
    const argv = ['-i', inventory, '-e', 'timezone=../../etc/passwd']
    const result = await playbook({ name: 'values', plays, argv, embedded: true, reporter })
    t.equal(result.exitCode, 1)
  } finally {
    process.stderr.write = write
  }
  t.match(errors.join(''), /<command line>:1 \(timezone\): must be a time zone/)
  t.notOk(existsSync(path.join(dir, 'inv.secrets.yml')), 'no secrets file was written')
})

/**
 * Strings that never reach a file or a command as such: the SSH login and key path (used by the
 * SSH client), a host name checked against the redis group, PostgreSQL settings (any scalar,
 * written YAML-quoted and checked by PostgreSQL itself).
 */
const FREE_STRINGS = new Set(['ssh_user', 'ssh_key', 'redis_initial_primary', 'postgresql_parameters'])

/** Paths inside a schema where a string is allowed without a format, pattern, enum or const. */
function unconstrainedStrings(schema: Record<string, any>, at: string): string[] {
  const types = [schema.type].flat()
  const constrained = ['format', 'pattern', 'enum', 'const', 'anyOf'].some((k) => k in schema)
  const found = types.includes('string') && !constrained ? [at] : []
  if (schema.items) found.push(...unconstrainedStrings(schema.items, `${at}[]`))
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    found.push(...unconstrainedStrings(schema.additionalProperties, `${at}.*`))
  }
  for (const [key, inner] of Object.entries(schema.properties ?? {})) {
    found.push(...unconstrainedStrings(inner as Record<string, any>, `${at}.${key}`))
  }
  return found
}

t.test('every string variable of the engine and the roles declares a format, pattern or enum', async (t) => {
  const sample = unconstrainedStrings({ type: 'array', items: { type: 'string' } }, 'sample')
  t.same(sample, ['sample[]'], 'the walker finds a loose string')
  const schemas = { ...ENGINE_VARS, ...Object.assign({}, ...allRoles.map((role) => role.schema)) }
  const loose = Object.entries(schemas)
    .filter(([name]) => !FREE_STRINGS.has(name))
    .flatMap(([name, schema]) => unconstrainedStrings(schema as Record<string, any>, name))
  t.same(loose, [], 'declare `format:` (lib/inventory/formats.ts) on every string that reaches a file or a command')
})

t.test('refuses a user-supplied secret shorter than 16 characters, never showing it', async (t) => {
  const messages = await refused(t, { 'group_vars/all.yml': 'patroni_superuser_password: "short&sweet"\n' })
  t.match(messages.join('\n'), /\(patroni_superuser_password\): must NOT have fewer than 16 characters/)
  t.notMatch(messages.join('\n'), /short&sweet/)
})

t.test('refuses a hand-edited stored secret that breaks its format, at its line in the secrets file', async (t) => {
  const dir = await tree({ 'inv.yml': HOSTS, 's.yml': 'redis_password: "two words in a long password"\n' })
  await chmod(path.join(dir, 's.yml'), 0o600)
  const options = { roles: allRoles, secretsFile: path.join(dir, 's.yml') }
  await t.rejects(
    loadInventory(path.join(dir, 'inv.yml'), options),
    /s\.yml:1 \(redis_password\): must be a Redis config word/,
  )
})
