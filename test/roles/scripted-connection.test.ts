/**
 * The scripted connection itself: its in-memory host answers the engine's own
 * fact, path, package and service commands the way a Debian host would, so the
 * real tasks converge on it; rules answer first, most recent first; commands
 * nothing answers are listed.
 */
import t from 'tap'
import type { TaskContext } from '../../lib/types.ts'
import { pathState } from '../../lib/facts/files.ts'
import { gatherFacts } from '../../lib/facts/system.ts'
import { matches, readFingerprints } from '../../lib/facts/fingerprints.ts'
import { recordFingerprints } from '../../lib/play/secret-guard.ts'
import { directory, file, link, packages, service } from '../../lib/tasks/index.ts'
import { ScriptedConnection, shellTokens } from '../fixtures/scripted.ts'

/** Check a task against the connection and apply it when it would change: the status it reports. */
async function converge(conn: ScriptedConnection, task: ReturnType<typeof file>): Promise<'changed' | 'ok'> {
  const ctx = { conn, host: {} as TaskContext['host'], check: false, diff: false }
  const plan = await task.check(ctx)
  if (!plan.change) return 'ok'
  await plan.apply()
  return 'changed'
}

t.test('shell lines split into words and operators, quotes honoured', async (t) => {
  t.same(shellTokens(`a 'b c'"d" && e\\ f; g || h | i`), [
    { word: 'a' },
    { word: 'b cd' },
    { op: '&&' },
    { word: 'e f' },
    { op: ';' },
    { word: 'g' },
    { op: '||' },
    { word: 'h' },
    { op: '|' },
    { word: 'i' },
  ])
  t.same(shellTokens(`x 'it'\\''s' 2>&1`), [{ word: 'x' }, { word: "it's" }, { word: '2>&1' }])
})

t.test('facts describe a Debian 12 host with systemd at its cluster address', async (t) => {
  const facts = await gatherFacts(new ScriptedConnection('db1', { address: '10.0.0.11' }))
  t.match(facts, {
    hostname: 'db1',
    os: { id: 'debian', versionId: '12', codename: 'bookworm' },
    systemd: true,
    defaultIpv4: '10.0.0.11',
  })
})

t.test('the secret fingerprints are read where the engine records them', async (t) => {
  const conn = new ScriptedConnection('db1')
  t.same(await readFingerprints(conn, '/srv/state/secrets.sha256'), {}, 'no file yet: none')
  t.ok(await recordFingerprints(conn, '/srv/state', {}, { redis_password: 'a-secret-of-sixteen+' }))
  t.match(conn.fs.get('/srv/state'), { type: 'directory', mode: '0755', owner: 'root', group: 'root' })
  const held = await readFingerprints(conn, '/srv/state/secrets.sha256')
  t.same(Object.keys(held ?? {}), ['redis_password'])
  t.ok(matches(held!.redis_password!, 'redis_password', 'a-secret-of-sixteen+'))
  t.same(await readFingerprints(conn, '/var/lib/hastack/secrets.sha256'), {}, 'another path: none')
  t.same(conn.unmatched, [])
})

t.test('path state follows what put, chown, chmod, mkdir, install -d, ln and rm did', async (t) => {
  const conn = new ScriptedConnection('h')
  t.same(await pathState(conn, '/etc/x'), { type: 'absent' })
  await conn.put('/etc/x', 'hello\n', { mode: '0600', owner: 'redis' })
  t.match(await pathState(conn, '/etc/x'), { type: 'file', mode: '0600', owner: 'redis', group: 'redis', size: 6 })
  t.equal(await converge(conn, file({ path: '/etc/x', content: 'hello\n', mode: '0640', owner: 'root' })), 'changed')
  t.match(await pathState(conn, '/etc/x'), { mode: '0640', owner: 'root', group: 'root' })
  t.equal(await converge(conn, file({ path: '/etc/x', content: 'hello\n', mode: '0640', owner: 'root' })), 'ok')
  t.equal(await converge(conn, directory({ path: '/srv/d', owner: 'etcd', mode: '0700' })), 'changed')
  t.equal(await converge(conn, directory({ path: '/srv/d', owner: 'etcd', mode: '0700' })), 'ok')
  t.equal(await converge(conn, link({ path: '/etc/l', target: '/etc/x' })), 'changed')
  t.same(await pathState(conn, '/etc/l'), { type: 'link', linkTarget: '/etc/x' })
  t.equal((await conn.run('install -d -o postgres -g postgres -m 0700 -- /srv/pg')).code, 0)
  t.match(await pathState(conn, '/srv/pg'), { type: 'directory', mode: '0700', owner: 'postgres', group: 'postgres' })
  t.equal((await conn.run(`rm -rf -- /srv/d`)).code, 0)
  t.same(await pathState(conn, '/srv/d'), { type: 'absent' })
  t.same(conn.unmatched, [])
})

t.test('packages and services converge once, then report nothing to do', async (t) => {
  const conn = new ScriptedConnection('h')
  t.equal(await converge(conn, packages({ install: ['redis-server', 'redis-tools'] })), 'changed')
  t.ok(conn.packages.has('redis-tools'))
  t.equal(await converge(conn, packages({ install: ['redis-server', 'redis-tools'] })), 'ok')
  t.equal(await converge(conn, service({ service: 'redis-server', enabled: true, state: 'started' })), 'changed')
  t.same(conn.service('redis-server'), { enabled: true, active: true, restarts: 0, reloads: 0 })
  t.equal(await converge(conn, service({ service: 'redis-server', enabled: true, state: 'started' })), 'ok')
  t.same(conn.unmatched, [])
  t.same(conn.mutations.length, 3, 'apt-get install, systemctl enable, systemctl start')
})

t.test('an install with service starts denied installs, removes, and leaves no start policy behind', async (t) => {
  const conn = new ScriptedConnection('h')
  t.equal(await converge(conn, packages({ install: ['etcd-server'], denyServiceStarts: true })), 'changed')
  t.ok(conn.packages.has('etcd-server'))
  t.same(conn.mutations, ['apt-get install etcd-server (service starts denied)'])
  t.equal(conn.readFile('/usr/sbin/policy-rc.d'), undefined)
  t.equal(await converge(conn, packages({ remove: ['etcd-server'] })), 'changed')
  t.notOk(conn.packages.has('etcd-server'))
  t.same(conn.unmatched, [])
})

t.test("an apt-get line outside the apt task's lock-retry loop is not taken for an install", async (t) => {
  const conn = new ScriptedConnection('h')
  await conn.run('apt-get install -y redis-server')
  t.notOk(conn.packages.has('redis-server'))
  t.same(conn.unmatched, ['apt-get install -y redis-server'])
})

t.test('a put with validate checks the new content in a temp file before it replaces the target', async (t) => {
  const conn = new ScriptedConnection('h')
  const checked: (string | undefined)[] = []
  conn.on(/^check /, (command, _options, host) => {
    checked.push(host.readFile(command.slice('check '.length)))
    return { code: checked.length === 1 ? 0 : 1, stderr: 'bad line 1\n' }
  })
  await conn.put('/etc/app.conf', 'good\n', { validate: 'check %s' })
  t.same(checked, ['good\n'], 'the validator saw the new content')
  t.same(conn.validations, ['check /etc/.app.conf.hastack-scripted'])
  t.equal(conn.readFile('/etc/app.conf'), 'good\n')
  await t.rejects(conn.put('/etc/app.conf', 'bad\n', { validate: 'check %s' }), {
    name: 'CommandError',
    message: /exit code 3/,
  })
  t.same(checked, ['good\n', 'bad\n'], 'the validator saw the rejected content')
  t.equal(conn.readFile('/etc/app.conf'), 'good\n', 'a failing validator leaves the file as it was')
  t.same([...conn.fs.keys()], ['/etc/app.conf'], 'no temp file left behind')
  t.same(conn.unmatched, [])
})

t.test('rules answer before the host, the most recent first, as often as allowed; the rest is listed', async (t) => {
  const conn = new ScriptedConnection('h', { defaultAnswer: { code: 9 } })
  conn.on(/^probe/, { stdout: 'old\n' })
  conn.on((command) => command.startsWith('probe'), { stdout: 'new\n' }, 1)
  t.equal((await conn.run('probe')).stdout, 'new\n')
  t.equal((await conn.run('probe')).stdout, 'old\n', 'the one-time rule is spent')
  conn.on(/^true$/, { code: 1 })
  t.equal((await conn.run('true')).code, 1, 'a rule overrides a built-in answer')
  t.equal((await conn.run(['some', 'thing else'])).code, 9)
  t.same(conn.unmatched, [`some 'thing else'`])
  await t.rejects(conn.run('unknown', { check: true }), { name: 'CommandError', message: /exit code 9/ })
})
