/**
 * Secret masking: a registered secret is hidden in every form output can give
 * it (quoted, escaped, URL-encoded, base64 inside a Basic auth header...), SCRAM
 * verifiers are hidden by shape, and a diff never shows a rotated secret's old value.
 */
import t from 'tap'
import { haproxyWord, yamlString } from '../../lib/config-quote.ts'
import { quote as shellWord } from '../../lib/connection/quote.ts'
import { base64Cores, clearSecrets, mask, maskDiffLines, registerSecrets } from '../../lib/output/mask.ts'
import { unifiedDiff } from '../../lib/output/diff.ts'

const SECRET = `p&ss"word$ x'#1/é+=\\`

t.beforeEach(() => {
  clearSecrets()
  registerSecrets([SECRET])
})
t.teardown(clearSecrets)

/** Every encoding of the secret a config file, a command, a URL or a report can hold. */
function encodings(secret: string): Record<string, string> {
  return {
    raw: secret,
    json: JSON.stringify(secret),
    yamlDouble: yamlString(secret),
    yamlSingle: `'${secret.replaceAll("'", "''")}'`,
    shell: shellWord(secret),
    haproxy: haproxyWord(secret),
    haproxyWeak: `"${secret.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$')}"`,
    url: `postgres://app:${encodeURIComponent(secret)}@10.0.0.9:5000/app`,
    uri: encodeURI(secret),
    base64: Buffer.from(secret).toString('base64'),
    basicAuth: `Authorization: Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`,
    basicAuthLonger: Buffer.from(`xy-admin:${secret}:tail`).toString('base64'),
    jsonOfYaml: JSON.stringify(`password: ${yamlString(secret)}`),
  }
}

t.test('hides the secret in every encoding, and the text around it stays', async (t) => {
  for (const [name, text] of Object.entries(encodings(SECRET))) {
    const masked = mask(`before ${text} after`)
    t.ok(masked.startsWith('before ') && masked.endsWith(' after'), `${name}: context kept`)
    t.notOk(masked.includes(SECRET), `${name}: no raw secret`)
    for (const core of base64Cores(SECRET)) t.notOk(masked.includes(core), `${name}: no base64 of the secret`)
    t.match(masked, /\*\*\*/, `${name}: masked`)
    t.notOk(/x'#1|word\$|ss"w|ss\\"w|%26ss/.test(masked), `${name}: no recognisable piece of the secret`)
  }
})

t.test('base64 cores cover the three byte alignments inside a longer text, whatever the length', async (t) => {
  for (const secret of [SECRET, `${SECRET}1`, `${SECRET}12`]) {
    registerSecrets([secret])
    for (const prefix of ['', 'a', 'ab', 'abc']) {
      const encoded = Buffer.from(`${prefix}${secret}:more`).toString('base64')
      t.ok(
        base64Cores(secret).some((core) => encoded.includes(core)),
        `prefix of ${prefix.length} bytes`,
      )
      t.match(mask(encoded), /\*\*\*/)
    }
    t.equal(mask(Buffer.from(secret).toString('base64')), '***', 'the whole encoding, padding included')
  }
})

t.test('masks SCRAM verifiers by their shape', async (t) => {
  const verifier = 'SCRAM-SHA-256$4096:c2FsdHNhbHQ=$U3RvcmVkS2V5:U2VydmVyS2V5'
  t.equal(mask(`ALTER ROLE app PASSWORD '${verifier}';`), "ALTER ROLE app PASSWORD 'SCRAM-SHA-256$***';")
})

t.test('short values are not registered: they would hide ordinary words', async (t) => {
  registerSecrets(['abc'])
  t.equal(mask('abc abd'), 'abc abd')
})

t.test('a diff hides the previous value of a secret that changed', async (t) => {
  const before = `user: admin\npassword: ${yamlString('old-rotated-secret-42')}\nport: 1\n`
  const after = `user: admin\npassword: ${yamlString(SECRET)}\nport: 2\n`
  const diff = unifiedDiff('/etc/x.yml', before, after)
  t.notMatch(diff, /old-rotated-secret-42/)
  t.match(diff, /^-password: "\*\*\*"$/m)
  t.match(diff, /^\+password: "\*\*\*"$/m)
  t.match(diff, /^-port: 1$/m, 'a changed line without a secret still shows')
})

t.test('a removed diff line framed like a secret hides, another shape shows, an unpaired one hides', async (t) => {
  const change = ['-old secret value', '-port 1', '-extra old line', `+${SECRET}`, '+bind 2']
  const lines = ['--- a', '+++ b', '@@ -1,3 +1,2 @@', ...change]
  t.same(maskDiffLines(lines), ['--- a', '+++ b', '@@ -1,3 +1,2 @@', '-***', '-port 1', '-***', '+***', '+bind 2'])
})
