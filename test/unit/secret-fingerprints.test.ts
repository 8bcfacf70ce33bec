/** Secret fingerprints: salted hashes, the file's format, and which differences mean a lost secrets file. */
import t from 'tap'
import {
  fingerprintOf,
  lostSecrets,
  matches,
  newFingerprint,
  parseFingerprints,
  readFingerprints,
  renderFingerprints,
  updatedFingerprints,
} from '../../lib/facts/fingerprints.ts'
import type { Connection } from '../../lib/types.ts'
import path from 'node:path'
import { tree } from '../fixtures/tree.ts'
import { loadInventory } from '../../lib/inventory/index.ts'

const secret = 'Zq3-generated-secret-value-0123456'

t.test('a fingerprint is salted: the same secret gives different lines, each matching only its value', async (t) => {
  const a = newFingerprint('redis_password', secret)
  const b = newFingerprint('redis_password', secret)
  t.not(a.hash, b.hash)
  t.ok(matches(a, 'redis_password', secret))
  t.notOk(matches(a, 'redis_password', `${secret}x`))
  t.notOk(matches(a, 'sentinel_password', secret), 'the name is part of the hash')
  t.equal(fingerprintOf('n', 'v', 's'), fingerprintOf('n', 'v', 's'))
})

t.test('the file round-trips, names sorted, and never contains the secret', async (t) => {
  const prints = { z_password: newFingerprint('z_password', secret), a_password: newFingerprint('a_password', secret) }
  const text = renderFingerprints(prints)
  t.notOk(text.includes(secret))
  t.match(text, /^#.*\na_password [0-9a-f]{32} [0-9a-f]{64}\nz_password /)
  t.same(parseFingerprints(text.split('\n')), prints)
  t.same(parseFingerprints(['garbage', 'x_password short 12']), {}, 'malformed lines are ignored')
})

t.test("the read gives the file's fingerprints, none without a file, and undefined when it fails", async (t) => {
  const print = newFingerprint('pg_password', secret)
  const answering = (code: number, stdout = '') =>
    ({ run: async () => ({ code, stdout, stderr: '', durationMs: 1 }) }) as unknown as Connection
  const file = `# header\npg_password ${print.salt} ${print.hash}\n`
  t.same(await readFingerprints(answering(0, file), '/var/lib/hastack/secrets.sha256'), { pg_password: print })
  t.same(await readFingerprints(answering(3), '/var/lib/hastack/secrets.sha256'), {}, 'no file: nothing held')
  t.equal(await readFingerprints(answering(1), '/var/lib/hastack/secrets.sha256'), undefined, 'unreadable')
})

t.test('fingerprints are rewritten only when a value is new or changed', async (t) => {
  const held = { pg_password: newFingerprint('pg_password', secret) }
  t.equal(updatedFingerprints(held, { pg_password: secret }), undefined)
  const added = updatedFingerprints(held, { pg_password: secret, redis_password: 'another-secret-value-42' })!
  t.same(added.pg_password, held.pg_password, 'an unchanged one keeps its salt')
  t.ok(matches(added.redis_password!, 'redis_password', 'another-secret-value-42'))
  const changed = updatedFingerprints(held, { pg_password: 'rotated-by-the-operator' })!
  t.ok(matches(changed.pg_password!, 'pg_password', 'rotated-by-the-operator'))
})

t.test('a lost secret is generated anew or read from the file with another value; user values are not', async (t) => {
  const held = {
    a_password: newFingerprint('a_password', 'value-of-a-000000'),
    b_password: newFingerprint('b_password', 'value-of-b-000000'),
    c_password: newFingerprint('c_password', 'value-of-c-000000'),
    d_password: newFingerprint('d_password', 'value-of-d-000000'),
  }
  const values = {
    a_password: { value: 'fresh-generated-000', fromFile: true },
    b_password: { value: 'from-an-old-file-00', fromFile: true },
    c_password: { value: 'value-of-c-000000', fromFile: true },
    d_password: { value: 'set-by-the-operator', fromFile: false },
  }
  t.same(lostSecrets({ host: 'db1', held, values }, new Set(['a_password'])), [
    { name: 'a_password', why: 'generated' },
    { name: 'b_password', why: 'differs' },
  ])
})

t.test('hastack_state_dir must be a plain absolute path', async (t) => {
  const cases = [
    ['/var/lib/hastack', true],
    ['var/lib', false],
    ['/var/../etc', false],
    ['/srv//x', false],
  ] as const
  for (const [value, ok] of cases) {
    const host = `db1: { address: 10.0.0.1, hastack_state_dir: "${value}" }`
    const dir = await tree({ 'lab.yml': `all:\n  hosts:\n    ${host}\n` })
    const loaded = loadInventory(path.join(dir, 'lab.yml'), { roles: [] })
    const result = await loaded.then(
      () => 'ok',
      (e: Error) => e.message,
    )
    const refused = /hastack_state_dir\): must be an absolute path \(no \/\/, no \. or \.\. parts\)/
    if (ok) t.equal(result, 'ok', `${value} is accepted`)
    else t.match(result, refused, `${value} is refused`)
  }
})
