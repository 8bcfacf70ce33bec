/**
 * The lost-secrets guard against real hosts (sshd on loopback): fingerprints are
 * recorded after a real run only, and a run whose secrets file was deleted or swapped
 * is refused with exit 1 before it changes anything.
 */
import t from 'tap'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { loopbackHosts, type Lab } from './harness.ts'
import type { Role } from '../../lib/types.ts'
import { file } from '../../lib/tasks/index.ts'
import { clearSecrets } from '../../lib/output/mask.ts'

let lab: Lab
t.before(async () => {
  lab = await loopbackHosts(2)
})
t.teardown(async () => {
  await lab.stop()
  clearSecrets()
})

const appConf = (host: string) => `${lab.dir}/app-${host}.conf`
const role: Role = {
  name: 'guarded',
  description: 'a role that hands a generated secret to the host',
  defaults: {},
  schema: { guarded_password: { type: 'string', secret: true, description: 'generated once' } },
  tasks: async (h) => {
    await h.do(file({ path: appConf(h.name), content: `password=${h.vars.guarded_password}\n` }))
  },
}
const plays = [{ name: 'guarded', hosts: 'web', roles: [role] }]
const secretsFile = () => lab.inventory.replace(/\.yml$/, '.secrets.yml')
const printsOf = (host: string) => `${lab.dir}/state-${host}/secrets.sha256`

t.test('check mode records no fingerprint', async (t) => {
  const result = await lab.run(plays, ['--check'])
  t.equal(result.exitCode, 0)
  t.notOk(existsSync(printsOf('h1')))
  t.notOk(existsSync(appConf('h1')))
  rmSync(secretsFile(), { force: true })
})

t.test('a real run records a salted fingerprint per secret, root-only, never the secret', async (t) => {
  const result = await lab.run(plays)
  t.equal(result.exitCode, 0)
  const secret = /guarded_password: (\S+)/.exec(readFileSync(secretsFile(), 'utf8'))![1]!
  for (const host of ['h1', 'h2']) {
    const info = statSync(printsOf(host))
    t.equal(info.mode & 0o777, 0o600, `${host}: mode 0600`)
    t.equal(info.uid, 0, `${host}: owned by root`)
    const text = readFileSync(printsOf(host), 'utf8')
    t.match(text, /^guarded_password [0-9a-f]{32} [0-9a-f]{64}$/m)
    t.notOk(text.includes(secret), `${host}: the secret is not in the file`)
  }
  const before = readFileSync(printsOf('h1'), 'utf8')
  const again = await lab.run(plays)
  t.equal(again.exitCode, 0)
  t.equal(readFileSync(printsOf('h1'), 'utf8'), before, 'an unchanged secret leaves the fingerprints as they are')
})

t.test('a deleted secrets file is refused with exit 1, naming the file; nothing changes on the hosts', async (t) => {
  const original = readFileSync(secretsFile(), 'utf8')
  const conf = readFileSync(appConf('h1'), 'utf8')
  const mtime = statSync(appConf('h1')).mtimeMs
  rmSync(secretsFile())
  let stderr = ''
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write
  const result = await lab.run(plays).finally(() => (process.stderr.write = write))
  t.equal(result.exitCode, 1)
  t.match(stderr, /secrets file .*hosts\.secrets\.yml does not match/)
  t.match(stderr, /h1 holds guarded_password, but it is not in the secrets file/)
  t.match(stderr, /restore .*hosts\.secrets\.yml from your backup/)
  t.equal(readFileSync(appConf('h1'), 'utf8'), conf, 'the host keeps its secret')
  t.equal(statSync(appConf('h1')).mtimeMs, mtime, 'the file was not touched')
  t.equal(result.stats.size, 0, 'no task ran')

  const swapped = await lab.run(plays).catch((e) => e)
  t.equal(swapped.exitCode, 1, 'the new file left behind does not match either')
  writeFileSync(secretsFile(), original, { mode: 0o600 })
  const restored = await lab.run(plays)
  t.equal(restored.exitCode, 0, 'the restored file is accepted')
  t.equal(restored.stats.get('h1')!.changed, 0)
})

t.test('a value the user sets replaces the fingerprint instead of being refused', async (t) => {
  const before = readFileSync(printsOf('h2'), 'utf8')
  const result = await lab.run(plays, ['-l', 'h2', '-e', 'guarded_password=chosen-by-the-operator'])
  t.equal(result.exitCode, 0)
  t.equal(readFileSync(appConf('h2'), 'utf8'), 'password=chosen-by-the-operator\n')
  t.not(readFileSync(printsOf('h2'), 'utf8'), before, 'the fingerprint follows the new value')
})
