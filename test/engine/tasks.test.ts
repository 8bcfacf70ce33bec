/**
 * Each task against a real host (an sshd on loopback, logging in as a
 * non-root user who becomes root with sudo): the first run changes, the second
 * changes nothing, check mode touches nothing, --diff shows the difference.
 */
import t from 'tap'
import {
  existsSync,
  lstatSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
  mkdtempSync,
  rmSync,
} from 'node:fs'
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { loopbackHosts, type Lab } from './harness.ts'
import type { HostRun, Play, Task, TaskOutcome } from '../../lib/types.ts'
import {
  absent,
  command,
  directory,
  fetchFile,
  file,
  group,
  lineInFile,
  link,
  packages,
  template,
  user,
  waitFor,
} from '../../lib/tasks/index.ts'

let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(1)
  work = mkdtempSync('/tmp/hastack-tasks-')
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
})

/** Run one task on h1 and return its outcome (and the run's output lines). */
async function once(
  task: Task | ((h: HostRun) => Task),
  args: string[] = [],
): Promise<TaskOutcome & { lines: string[] }> {
  let outcome: TaskOutcome | undefined
  const play: Play = {
    name: 'one task',
    hosts: 'h1',
    tasks: async (h) => void (outcome = await h.do(typeof task === 'function' ? task(h) : task)),
  }
  const result = await lab.run([play], args)
  if (!outcome) throw new Error(`task did not run: ${result.lines.join('\n')}`)
  return { ...outcome, lines: result.lines }
}

t.test('file: creates, then reports ok, then fixes mode and content with a diff', async (t) => {
  const path = `${work}/motd`
  const first = await once(file({ path, content: 'hello\n', mode: '0640' }))
  t.equal(first.status, 'changed')
  t.equal(first.reason, 'file is missing')
  t.equal(readFileSync(path, 'utf8'), 'hello\n')
  t.equal((statSync(path).mode & 0o777).toString(8), '640')
  t.equal((await once(file({ path, content: 'hello\n', mode: '0640' }))).status, 'ok')
  const mode = await once(file({ path, content: 'hello\n', mode: '0600' }))
  t.equal(mode.status, 'changed')
  t.match(mode.reason, /mode 0640 → 0600/)
  const content = await once(file({ path, content: 'hello\nworld\n', mode: '0600' }), ['--diff'])
  t.equal(content.reason, 'content differs')
  t.match(content.diff, /\+world/)
  t.ok(
    content.lines.some((l) => l.includes('+world')),
    'diff printed under --diff',
  )
})

t.test('file: check mode reports the change and touches nothing', async (t) => {
  const path = `${work}/never`
  const outcome = await once(file({ path, content: 'x' }), ['--check'])
  t.equal(outcome.status, 'changed')
  t.notOk(existsSync(path))
})

t.test('template: renders host variables and facts; a second run is ok', async (t) => {
  const path = `${work}/rendered.conf`
  const task = template({
    src: fileURLToPath(new URL('./fixtures/sample.conf.ejs', import.meta.url)),
    dest: path,
    vars: { port: 5432 },
  })
  t.equal((await once(task)).status, 'changed')
  const text = readFileSync(path, 'utf8')
  t.match(text, /^# Managed by hastack/)
  t.match(text, /host = h1/)
  t.match(text, /port = 5432/)
  t.match(text, /os = debian/)
  t.equal((await once(task)).status, 'ok')
})

t.test('template and file: a rejected new content fails the task and keeps the live file', async (t) => {
  const path = `${work}/haproxy.cfg`
  writeFileSync(path, 'global\n')
  const src = fileURLToPath(new URL('./fixtures/sample.conf.ejs', import.meta.url))
  const rejects = `sh -c 'echo "[ALERT] parsing $1: unknown keyword" >&2; exit 1' check %s`
  const failed = await once(template({ src, dest: path, vars: { port: 5432 }, validate: rejects, ignoreErrors: true }))
  t.equal(failed.status, 'failed')
  t.match(
    failed.error,
    /\[ALERT\] parsing .*\/\.haproxy\.cfg\.hastack-\w+: unknown keyword/,
    "the checker's output is shown",
  )
  t.equal(readFileSync(path, 'utf8'), 'global\n', 'the live file is untouched')
  t.same(execFileSync('ls', ['-A', work], { encoding: 'utf8' }).match(/hastack-/g), null, 'no temp file is left')
  const accepted = await once(file({ path, content: 'global\n  maxconn 10\n', validate: 'grep -q ^global %s' }))
  t.equal(accepted.status, 'changed')
  t.equal(readFileSync(path, 'utf8'), 'global\n  maxconn 10\n', 'accepted content replaces the file')
})

t.test('directory, link and absent converge and then stay ok', async (t) => {
  const dir = `${work}/d/e`
  t.equal((await once(directory({ path: dir, mode: '0750' }))).status, 'changed')
  t.equal((statSync(dir).mode & 0o777).toString(8), '750')
  t.equal((await once(directory({ path: dir, mode: '0750' }))).status, 'ok')
  const ln = `${work}/current`
  t.equal((await once(link({ path: ln, target: dir }))).status, 'changed')
  t.equal(readlinkSync(ln), dir)
  t.equal((await once(link({ path: ln, target: dir }))).status, 'ok')
  t.equal((await once(absent({ path: ln }))).status, 'changed')
  t.notOk(existsSync(ln) || lstatSync(ln, { throwIfNoEntry: false }))
  t.equal((await once(absent({ path: ln }))).status, 'ok')
})

t.test('lineInFile replaces a matching line, keeps the rest and the mode', async (t) => {
  const path = `${work}/sysctl.conf`
  writeFileSync(path, 'a=1\nvm.swappiness=60\nb=2\n', { mode: 0o600 })
  const task = lineInFile({ path, line: 'vm.swappiness=1', regexp: /^vm\.swappiness=/ })
  t.equal((await once(task)).status, 'changed')
  t.equal(readFileSync(path, 'utf8'), 'a=1\nvm.swappiness=1\nb=2\n')
  t.equal((statSync(path).mode & 0o777).toString(8), '600')
  t.equal((await once(task)).status, 'ok')
})

t.test('command: guards make it idempotent and changedWhen decides', async (t) => {
  const marker = `${work}/ran`
  const task = command({ cmd: `touch ${marker}`, creates: marker })
  t.equal((await once(task)).status, 'changed')
  const again = await once(task)
  t.equal(again.status, 'ok')
  t.match(again.reason, /exists/)
  t.equal((await once(command({ cmd: 'false', unless: 'true' }))).status, 'ok')
  t.equal((await once(command({ cmd: 'echo same', changedWhen: (r) => r.stdout.trim() !== 'same' }))).status, 'ok')
  const failed = await once(command({ cmd: 'echo oops >&2; exit 3', ignoreErrors: true }))
  t.equal(failed.status, 'failed')
  t.match(failed.error, /exit code 3[\s\S]*oops/)
})

t.test('waitFor: a listening port is ready; a closed one fails after its timeout', async (t) => {
  t.equal((await once(waitFor({ port: lab.sshds[0]!.port, timeoutMs: 5000 }))).status, 'ok')
  const closed = await once(waitFor({ port: 1, timeoutMs: 1000, intervalMs: 200, ignoreErrors: true }))
  t.equal(closed.status, 'failed')
  t.match(closed.error, /not ready after 1s/)
  t.equal((await once(waitFor({ port: 1, timeoutMs: 1000 }), ['--check'])).status, 'skipped')
})

t.test('waitFor: a URL answering 2xx is ready; one answering 404 fails after its timeout', async (t) => {
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/ready' ? 200 : 404
    res.end('\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.equal((await once(waitFor({ url: `${base}/ready`, timeoutMs: 5000 }))).status, 'ok')
  const missing = await once(waitFor({ url: `${base}/gone`, timeoutMs: 1000, intervalMs: 200, ignoreErrors: true }))
  t.equal(missing.status, 'failed')
  t.match(missing.error, /not ready after 1s/)
})

t.test('fetchFile copies a remote file locally, once', async (t) => {
  const src = `${work}/remote.txt`
  writeFileSync(src, 'payload')
  const dest = `${work}/fetched/remote.txt`
  t.equal((await once(fetchFile({ src, dest }))).status, 'changed')
  t.equal(readFileSync(dest, 'utf8'), 'payload')
  t.equal((statSync(dest).mode & 0o777).toString(8), '600')
  t.equal((await once(fetchFile({ src, dest }))).status, 'ok')
})

t.test('user and group are created once', async (t) => {
  const name = `hst${process.pid % 100000}`
  t.teardown(() => {
    execFileSync('sh', ['-c', `userdel ${name} 2>/dev/null; groupdel ${name}g 2>/dev/null; true`])
  })
  t.equal((await once(group({ group: `${name}g`, system: true }))).status, 'changed')
  t.equal((await once(group({ group: `${name}g`, system: true }))).status, 'ok')
  t.equal(
    (await once(user({ user: name, system: true, shell: '/usr/sbin/nologin', groups: [`${name}g`] }))).status,
    'changed',
  )
  t.match(execFileSync('id', ['-nG', name]).toString(), new RegExp(`${name}g`))
  t.equal(
    (await once(user({ user: name, system: true, shell: '/usr/sbin/nologin', groups: [`${name}g`] }))).status,
    'ok',
  )
  const shell = await once(user({ user: name, shell: '/bin/sh' }))
  t.equal(shell.status, 'changed')
  t.match(shell.reason, /shell \/usr\/sbin\/nologin → \/bin\/sh/)
})

t.test(
  'packages: an installed package is ok; a missing one is reported in check mode without installing',
  async (t) => {
    t.equal((await once(packages({ install: ['openssh-server'] }))).status, 'ok')
    const missing = await once(packages({ install: ['hastack-no-such-package-x'] }), ['--check'])
    t.equal(missing.status, 'changed')
    t.match(missing.reason, /to install: hastack-no-such-package-x/)
  },
)
