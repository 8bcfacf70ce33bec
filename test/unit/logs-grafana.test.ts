/**
 * The pure parts of the central logs and of Grafana: the options of playbooks/logs.ts refused
 * before any connection and quoted into one journalctl command, journalctl's answers read back,
 * the APT key pinned by its OpenPGP fingerprint, and the files Grafana is provisioned with.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { shellTokens } from '../fixtures/scripted.ts'
import { journalctlCommand, logQueryErrors, matchingLines } from '../../roles/journal_remote/query.ts'
import { keyMismatch, primaryKeyFingerprints } from '../../roles/grafana/apt-key.ts'
import { datasourceYaml, grafanaIni } from '../../roles/grafana/provisioning.ts'
import { keyProbeCommand } from '../../roles/grafana/index.ts'

const RSA_KEY = readFileSync(new URL('../fixtures/apt-keys/test-rsa.asc', import.meta.url), 'utf8')
const ED25519_KEY = readFileSync(new URL('../fixtures/apt-keys/other-ed25519.asc', import.meta.url), 'utf8')
// As `gpg --with-colons --list-keys` printed them when the fixtures were made.
const RSA_FINGERPRINT = 'B8CA330FD9524C0AC26E6B4C565CF247D49928A2'
const ED25519_FINGERPRINT = '15EFB975D19CF2E3FAF64B9AE71B38F6D3D14C90'

const inventory = { hosts: new Map([['node2', {}]]) } as never
const words = (command: string) => shellTokens(command).flatMap((x) => ('word' in x ? [x.word] : ['<op>']))

t.test('a log query becomes one journalctl over the store, every option one quoted word', async (t) => {
  const query = { host: 'node2', unit: 'patroni.service', since: '10 min ago', grep: "x'; rm -rf / #", lines: 50 }
  t.same(logQueryErrors(query, inventory), [])
  t.same(words(journalctlCommand(query)), [
    'journalctl',
    '--directory=/var/log/journal/remote',
    '--no-pager',
    '--quiet',
    '--output=short-iso',
    '--lines=50',
    '--unit=patroni.service',
    '--since=10 min ago',
    "--grep=x'; rm -rf / #",
    '_HOSTNAME=node2',
  ])
})

t.test('a log query with a wrong option is refused with one message per option', async (t) => {
  const errors = logQueryErrors(
    { host: 'nodeX', unit: 'a b', since: '$(reboot)', grep: 'two\nlines', lines: 0 },
    inventory,
  )
  t.equal(errors.length, 5)
  t.match(errors.join('\n'), /--host "nodeX" is not a host of the inventory/)
  t.match(errors.join('\n'), /--unit "a b" is not a systemd unit name/)
  t.match(errors.join('\n'), /--since "\$\(reboot\)" is not a time/)
  t.match(errors.join('\n'), /--grep must be one line .*a newline/)
  t.match(errors.join('\n'), /--lines must be a whole number from 1 to 100000/)
})

t.test("journalctl's answers: lines, no match, an empty store and a failure", async (t) => {
  t.same(matchingLines({ code: 0, stdout: 'a\nb\n', stderr: '' }), ['a', 'b'])
  t.same(matchingLines({ code: 1, stdout: '', stderr: '' }), [], '--grep matched nothing')
  t.same(matchingLines({ code: 1, stdout: '', stderr: 'No journal files were found.\n' }), [], 'no upload yet')
  t.throws(
    () => matchingLines({ code: 1, stdout: '', stderr: 'Failed to compile pattern\n' }),
    /journalctl failed \(exit 1\): Failed to compile pattern/,
  )
})

t.test('the primary key fingerprints of an armored block are computed as gpg does', async (t) => {
  t.same(primaryKeyFingerprints(RSA_KEY), [RSA_FINGERPRINT])
  t.same(primaryKeyFingerprints(ED25519_KEY), [ED25519_FINGERPRINT])
  t.throws(() => primaryKeyFingerprints('hello'), /not an armored OpenPGP public key block/)
})

t.test('a downloaded key is accepted only when it is exactly the pinned key', async (t) => {
  t.equal(keyMismatch(RSA_KEY, RSA_FINGERPRINT), undefined)
  t.equal(keyMismatch(RSA_KEY, RSA_FINGERPRINT.toLowerCase()), undefined, 'case does not matter')
  t.match(keyMismatch(ED25519_KEY, RSA_FINGERPRINT), `has fingerprint(s) ${ED25519_FINGERPRINT}, not the pinned`)
  t.match(keyMismatch(RSA_KEY + ED25519_KEY, RSA_FINGERPRINT), /more than one armored block/, 'two blocks')
  t.match(keyMismatch('<html>proxy error</html>', RSA_FINGERPRINT), /cannot be read/)
})

t.test("the repository probe downloads the key with apt's settings, bounded in time", async (t) => {
  const probe = keyProbeCommand('https://apt.grafana.com/')
  t.match(probe, /timeout 30 \/usr\/lib\/apt\/apt-helper .* download-file https:\/\/apt\.grafana\.com\/gpg\.key "\$t"/)
  t.match(probe, /trap 'rm -f "\$t"' EXIT/, 'the download is removed whatever happens')
})

t.test('grafana.ini: the cluster address, the password kept whole, no anonymous access or sign-up', async (t) => {
  const ini = grafanaIni({ address: '10.0.0.40', grafana_port: 3000, grafana_admin_password: 'a#b;c' })
  t.match(ini, /\[server\]\nhttp_addr = 10\.0\.0\.40\nhttp_port = 3000\n/)
  t.match(ini, /admin_password = """a#b;c"""\n/)
  t.match(ini, /\[auth\.anonymous\]\nenabled = false\n/)
  t.match(ini, /allow_sign_up = false/)
  t.match(ini, /reporting_enabled = false/)
})

t.test('the datasource has the uid every dashboard queries and points at Prometheus beside Grafana', async (t) => {
  const doc = parse(datasourceYaml({ address: '10.0.0.40', prometheus_port: 9090 }))
  t.match(doc.datasources[0], { uid: 'hastack-prometheus', type: 'prometheus', url: 'http://10.0.0.40:9090' })
  const panels = JSON.parse(readFileSync(new URL('../../dashboards/hosts.json', import.meta.url), 'utf8')).panels
  t.ok(
    panels.every((p: { datasource?: { uid: string } }) => !p.datasource || p.datasource.uid === 'hastack-prometheus'),
  )
})
