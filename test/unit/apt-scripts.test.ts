/**
 * The shell text behind the packages task, run locally with a fake apt-get on
 * PATH: a held lock is waited for (bounded), any other failure ends at once, and
 * the deny-all policy-rc.d exists during the install only, also when the
 * install is interrupted.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import {
  APT_UPDATE,
  POLICY_MARKER,
  isOwnPolicy,
  retryWhileLocked,
  withServiceStartsDenied,
} from '../../lib/tasks/apt.ts'

const LOCKED = 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 967 (apt)'

/** A directory with an `apt-get` that fails for a held lock `fails` times (counted in a file), then runs `then`. */
async function fakeApt(fails: number, then = 'echo installed'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hastack-apt-'))
  const script = `#!/bin/sh
n=$(cat "${dir}/count" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/count"
if [ "$n" -lt ${fails} ]; then echo '${LOCKED}' >&2; exit 100; fi
${then}
`
  await writeFile(path.join(dir, 'apt-get'), script)
  await chmod(path.join(dir, 'apt-get'), 0o755)
  return dir
}

function runSh(script: string, dir: string) {
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH}` }
  return spawnSync('sh', ['-c', script], { encoding: 'utf8', env })
}

t.test('an apt-get that fails on a held lock is run again until the lock is free', async (t) => {
  const dir = await fakeApt(1)
  const started = Date.now()
  const r = runSh(retryWhileLocked('apt-get update', 60), dir)
  t.equal(r.status, 0)
  t.equal(r.stdout, 'installed\n')
  t.equal(await readFile(path.join(dir, 'count'), 'utf8'), '2\n', 'two attempts')
  t.ok(Date.now() - started >= 4_500, 'waited before the second attempt')
})

t.test('the wait for a lock is bounded', async (t) => {
  const dir = await fakeApt(1000)
  const r = runSh(retryWhileLocked('apt-get update', 0), dir)
  t.equal(r.status, 100, "apt's exit code")
  t.match(r.stderr, 'hastack: apt locks still held after 0 s')
  t.match(r.stderr, LOCKED)
})

t.test('a refresh that hangs is ended by its timeout and tried again (a proxy that stops answering)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hastack-apt-'))
  const script = `#!/bin/sh
n=$(cat "${dir}/count" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/count"
if [ "$n" -eq 0 ]; then sleep 30; fi
echo updated
`
  await writeFile(path.join(dir, 'apt-get'), script)
  await chmod(path.join(dir, 'apt-get'), 0o755)
  const started = Date.now()
  const r = runSh(retryWhileLocked('timeout 1 apt-get update', 60), dir)
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, 'updated\n')
  t.equal(await readFile(path.join(dir, 'count'), 'utf8'), '2\n', 'the hung attempt was ended and a second one ran')
  t.ok(Date.now() - started < 10_000, 'without waiting for the hung one')
  t.match(APT_UPDATE, /^timeout \d+ apt-get /, 'the real refresh is bounded by timeout')
})

t.test('any other failure ends at once with its output', async (t) => {
  const dir = await fakeApt(0, "echo 'E: Unable to locate package nosuch' >&2; exit 100")
  const r = runSh(retryWhileLocked('apt-get install nosuch', 60), dir)
  t.equal(r.status, 100)
  t.match(r.stderr, 'Unable to locate package nosuch')
  t.equal(await readFile(path.join(dir, 'count'), 'utf8'), '1\n', 'one attempt')
})

t.test('the policy-rc.d exists during the install and is removed after it, also on failure', async (t) => {
  const dir = await fakeApt(0, `cat "${'$'}HASTACK_POLICY" > "${'$'}HASTACK_SEEN"; exit "${'$'}HASTACK_CODE"`)
  const policy = path.join(dir, 'policy-rc.d')
  for (const code of [0, 100]) {
    const seen = path.join(dir, `seen-${code}`)
    const env = {
      PATH: `${dir}:${process.env.PATH}`,
      HASTACK_POLICY: policy,
      HASTACK_SEEN: seen,
      HASTACK_CODE: String(code),
    }
    const r = spawnSync('sh', ['-c', withServiceStartsDenied('apt-get install x', policy)], { encoding: 'utf8', env })
    t.equal(r.status, code, `the install's exit code ${code} is kept`)
    const seenPolicy = await readFile(seen, 'utf8')
    t.match(seenPolicy, /^#!\/bin\/sh\n# hastack: .*\nexit 101\n$/, 'the install saw the deny-all policy')
    t.notOk(existsSync(policy), 'the policy is gone afterwards')
  }
})

t.test('an install interrupted by SIGTERM leaves no policy-rc.d behind', async (t) => {
  const dir = await fakeApt(0, 'sleep 30 & wait $!')
  const policy = path.join(dir, 'policy-rc.d')
  const child = spawn('sh', ['-c', withServiceStartsDenied('apt-get install x', policy)], {
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    stdio: 'ignore',
    detached: true,
  })
  const deadline = Date.now() + 5_000
  while (!existsSync(path.join(dir, 'count')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.ok(existsSync(policy), 'the policy is in place while installing')
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  // The whole process group (the child leads its own), as a terminal's Ctrl-C would signal it.
  process.kill(-child.pid!, 'SIGTERM')
  t.equal(await exited, 143)
  t.notOk(existsSync(policy), 'the trap removed the policy')
})

t.test("a policy-rc.d of the host's own stays in charge and is never replaced or removed", async (t) => {
  const dir = await fakeApt(0, `cat "${'$'}HASTACK_POLICY" > "${'$'}HASTACK_SEEN"`)
  const policy = path.join(dir, 'policy-rc.d')
  const own = '#!/bin/sh\n# the admin: never start services in this image\nexit 101\n'
  await writeFile(policy, own)
  const seen = path.join(dir, 'seen')
  const env = { PATH: `${dir}:${process.env.PATH}`, HASTACK_POLICY: policy, HASTACK_SEEN: seen }
  const r = spawnSync('sh', ['-c', withServiceStartsDenied('apt-get install x', policy)], { encoding: 'utf8', env })
  t.equal(r.status, 0, r.stderr)
  t.equal(await readFile(seen, 'utf8'), own, "the install ran under the host's own policy")
  t.equal(await readFile(policy, 'utf8'), own, 'and the policy is still there, unchanged')
})

t.test('only a policy-rc.d carrying hastack marker counts as hastack own', async (t) => {
  t.ok(isOwnPolicy(`#!/bin/sh\n${POLICY_MARKER}\nexit 101\n`))
  t.notOk(isOwnPolicy('#!/bin/sh\nexit 101\n'))
  t.notOk(isOwnPolicy(`#!/bin/sh\n# not ${POLICY_MARKER}\nexit 101\n`))
})
