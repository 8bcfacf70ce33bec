/**
 * Running a playbook as an operator does, against real sshd servers on
 * loopback: "still running" notices, the recap's timing, timestamps in the
 * JSON report, --start-at-task, --step, the host lock and the run lock, and
 * SIGINT/SIGTERM sent to a playbook script running as a child process.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { loopbackHosts, type Lab } from './harness.ts'
import { playbook, type PlaybookSpec } from '../../lib/playbook.ts'
import { Reporter } from '../../lib/output/reporter.ts'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { takeHostLock } from '../../lib/play/host-lock.ts'
import { RunControl } from '../../lib/play/interrupt.ts'
import { command, file } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import type { Play } from '../../lib/types.ts'

const fixture = fileURLToPath(new URL('./fixtures/interruptible-playbook.ts', import.meta.url))
let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(2)
  work = mkdtempSync('/tmp/hastack-run-control-')
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
})

/** Run plays through the real entry point, collecting the output lines. */
async function run(plays: Play[], args: string[] = [], spec: Partial<PlaybookSpec> = {}) {
  const lines: string[] = []
  const reporter = new Reporter({ verbosity: 0, diff: false, color: false, write: (l) => lines.push(l) })
  const result = await playbook({
    name: 'test',
    plays,
    argv: ['-i', lab.inventory, ...args],
    embedded: true,
    reporter,
    ...spec,
  })
  return { ...result, lines, text: lines.join('\n') }
}

const marks = (name: string) => {
  const dir = path.join(work, name)
  return {
    dir,
    touch: (mark: string) => command({ name: `Mark ${mark}`, cmd: sh`mkdir -p ${dir} && touch ${dir}/${mark}` }),
  }
}

t.test('a slow task prints "still running" notices; the recap has the total time and the slowest tasks', async (t) => {
  const report = path.join(work, 'slow.json')
  const slow: Play = {
    name: 'slow',
    hosts: 'h1',
    gatherFacts: false,
    tasks: async (h) => void (await h.do(command({ name: 'Sleep a while', cmd: 'sleep 1.3' }))),
  }
  const result = await run([slow], ['--json', report], { progress: { firstMs: 400, everyMs: 300 } })
  t.equal(result.exitCode, 0)
  const notices = result.lines.filter((l) => /^h1 \| Sleep a while: still running \(\d+ s\)$/.test(l))
  t.ok(notices.length >= 2 && notices.length <= 4, `${notices.length} notices:\n${result.text}`)
  t.match(result.text, /Total time: \d+\.\d s/)
  t.match(result.text, /Slowest tasks:\n +1\.\d s {2}h1 \| Sleep a while/)
  const task = JSON.parse(readFileSync(report, 'utf8')).hosts.h1.tasks[0]
  t.match(task.startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  const span = Date.parse(task.endedAt) - Date.parse(task.startedAt)
  t.ok(span >= 1300 && span < 10_000, `the task ran from start to end (${span} ms)`)
})

t.test('--start-at-task skips the tasks before the first match on every host, then runs the rest', async (t) => {
  const m = marks('start-at')
  const play: Play = {
    name: 'three marks',
    hosts: 'all',
    gatherFacts: false,
    tasks: async (h) => {
      for (const mark of ['a', 'b', 'c']) await h.do(m.touch(`${mark}-${h.name}`))
    },
  }
  const result = await run([play], ['--start-at-task', 'Mark b-*'])
  t.equal(result.exitCode, 0, result.text)
  for (const host of lab.hosts) {
    t.notOk(existsSync(`${m.dir}/a-${host}`), `${host}: the task before was skipped`)
    t.ok(
      existsSync(`${m.dir}/b-${host}`) && existsSync(`${m.dir}/c-${host}`),
      `${host}: the matching task and the rest ran`,
    )
  }
  const missing = await run([play], ['--start-at-task', 'No such task'])
  t.equal(missing.exitCode, 1, 'a name that matches no task is bad input')
})

t.test('--step asks once per task for all hosts and runs only the tasks answered yes', async (t) => {
  const m = marks('step')
  const play: Play = {
    name: 'two marks',
    hosts: 'all',
    gatherFacts: false,
    tasks: async (h) => {
      await h.do({ ...m.touch(`one-${h.name}`), name: 'Mark one' })
      await h.do({ ...m.touch(`two-${h.name}`), name: 'Mark two' })
    },
  }
  const input = new PassThrough()
  input.end('n\ny\n')
  const result = await run([play], ['--step'], { input })
  t.equal(result.exitCode, 0, result.text)
  t.equal(result.lines.filter((l) => l.startsWith('Perform task Mark one?')).length, 1, 'one question for both hosts')
  t.equal(result.lines.filter((l) => l.startsWith('Perform task Mark two?')).length, 1)
  for (const host of lab.hosts) {
    t.notOk(existsSync(`${m.dir}/one-${host}`), `${host}: answered no`)
    t.ok(existsSync(`${m.dir}/two-${host}`), `${host}: answered yes`)
  }
})

t.test('a host locked by another run fails with the holder named; check mode takes no host lock', async (t) => {
  const conn = await SshConnection.connect(lab.sshds[0]!.userSpec())
  const other = await takeHostLock(
    conn,
    { runId: 'other-run', description: 'pid 4242 on control2' },
    path.join(lab.dir, 'state-h1'),
  )
  const play: Play = {
    name: 'touch',
    hosts: 'h1',
    gatherFacts: false,
    tasks: async (h) => void (await h.do(file({ path: `${work}/locked-${h.name}`, content: 'x' }))),
  }
  try {
    const refused = await run([play])
    t.equal(refused.exitCode, 2)
    t.match(
      refused.stats.get('h1')?.error,
      /h1 is being converged by another run \(run other-run: pid 4242 on control2\)/,
    )
    t.notOk(existsSync(`${work}/locked-h1`), 'nothing ran on the locked host')
    const checked = await run([play], ['--check'])
    t.equal(checked.exitCode, 0, 'check mode changes nothing and does not wait for the host lock')
  } finally {
    await other.release()
    await conn.close()
  }
  const after = await run([play])
  t.equal(after.exitCode, 0, 'released: the next run converges')
  t.ok(existsSync(`${work}/locked-h1`))
})

t.test('a run holding the inventory lock refuses a second run with exit 1; list modes take no lock', async (t) => {
  const lock = lab.inventory.replace(/\.yml$/, '.lock')
  writeFileSync(
    lock,
    JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: 'now', command: 'playbook site' }),
  )
  try {
    const play: Play = {
      name: 'touch',
      hosts: 'h1',
      gatherFacts: false,
      tasks: async (h) => void (await h.do(file({ path: `${work}/second-run`, content: 'x' }))),
    }
    const refused = await run([play])
    t.equal(refused.exitCode, 1)
    t.notOk(existsSync(`${work}/second-run`))
    const listed = await run([play], ['--list-hosts'])
    t.equal(listed.exitCode, 0)
  } finally {
    rmSync(lock, { force: true })
  }
})

t.test('hosts waiting for a one-at-a-time turn are interrupted, not failed', async (t) => {
  const control = new RunControl()
  const turns: string[] = []
  const play: Play = {
    name: 'rolling',
    hosts: 'all',
    gatherFacts: false,
    tasks: async (h) => {
      await h.oneAtATime('restart', async () => {
        turns.push(h.name)
        await h.do(command({ name: 'Restart slowly', cmd: 'sleep 0.3' }))
        control.interrupt('SIGINT')
      })
    },
  }
  const result = await run([play], [], { control })
  t.equal(result.exitCode, 130)
  t.equal(turns.length, 1, 'the second host did not take its turn')
  const waiting = lab.hosts.find((h) => h !== turns[0])!
  t.equal(result.stats.get(waiting)?.failed, 0)
  t.match(result.stats.get(waiting)?.interrupted, /stopped before "restart \(one host at a time\)"/)
})

t.test(
  'an interrupted embedded run starts no new task, runs the cleanups and reports what was interrupted',
  async (t) => {
    const control = new RunControl()
    const order: string[] = []
    // Both "hosts" are this machine, so the second waits a moment for the host lock: the signal
    // comes once every host's first task is running, and each of those tasks ends only after it.
    const marks = mkdtempSync(path.join(work, 'embedded-'))
    const signalled = path.join(marks, 'signalled')
    const play: Play = {
      name: 'interrupted',
      hosts: 'all',
      gatherFacts: false,
      tasks: async (h) => {
        control.onInterrupt(`${h.name}: undo`, async () => void order.push(`cleanup ${h.name}`))
        const waitForSignal = sh`touch ${path.join(marks, h.name)}; for i in $(seq 200); do
          [ -e ${signalled} ] && exit 0; sleep 0.05; done; exit 1`
        await h.do(command({ name: 'First', cmd: waitForSignal }))
        await h.do(command({ name: 'Second', cmd: 'true' }))
        order.push(`second ran on ${h.name}`)
      },
    }
    const signalWhenAllStarted = (async () => {
      for (let i = 0; i < 200 && !lab.hosts.every((h) => existsSync(path.join(marks, h))); i++) await sleep(50)
      control.interrupt('SIGTERM')
      writeFileSync(signalled, '')
    })()
    const report = path.join(work, 'interrupted.json')
    const result = await run([play, { ...play, name: 'next play' }], ['--json', report], { control })
    await signalWhenAllStarted
    t.equal(result.exitCode, 143)
    const json = JSON.parse(readFileSync(report, 'utf8'))
    t.equal(json.interrupted, 'SIGTERM')
    t.match(json.hosts.h2.interrupted, /stopped before "Second"/)
    t.same(order.sort(), ['cleanup h1', 'cleanup h2'])
    t.match(result.stats.get('h1')?.interrupted, /stopped before "Second"/)
    t.match(result.text, /h1 +: ok=1 .*interrupted: stopped before "Second"/)
    t.match(result.text, /Interrupted by SIGTERM/)
  },
)

/** Start the fixture playbook as a child process; resolves its exit code and output. */
function startChild(dir: string, sleepSeconds: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fixture, '-i', lab.inventory, '--marks', dir, '--sleep', String(sleepSeconds)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  child.stderr.on('data', (c) => (output += c))
  const exited = new Promise<{ code: number | null; output: string; at: number }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, output, at: Date.now() })
    })
  })
  return { child, exited }
}

/** Wait (bounded) until a file exists. */
async function waitFor(file: string, timeoutMs = 30_000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (existsSync(file)) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  t.test(
    `${signal} lets the running task finish, runs the cleanups, starts nothing more and exits ${code}`,
    async (t) => {
      const dir = mkdtempSync(path.join(work, `${signal}-`))
      const { child, exited } = startChild(dir, 2)
      t.ok(await waitFor(`${dir}/started`), 'the first task started')
      child.kill(signal)
      const { code: exit, output } = await exited
      t.equal(exit, code, output)
      t.match(output, /PLAY RECAP/)
      t.match(output, /h1 +: ok=1 .*interrupted: stopped before "Leave the second mark"/)
      t.notOk(existsSync(`${dir}/second`), 'the next task did not start')
      t.notOk(existsSync(`${dir}/started`), 'the registered cleanup ran')
      t.notOk(existsSync(lab.inventory.replace(/\.yml$/, '.lock')), 'the run lock is released')
    },
  )
}

t.test('a second signal exits at once; the host lock of the vanished run is gone with its connection', async (t) => {
  const dir = mkdtempSync(path.join(work, 'twice-'))
  const { child, exited } = startChild(dir, 20)
  t.ok(await waitFor(`${dir}/started`), 'the first task started')
  const sent = Date.now()
  child.kill('SIGINT')
  await new Promise((resolve) => setTimeout(resolve, 1000))
  child.kill('SIGINT')
  const { code, at, output } = await exited
  t.equal(code, 130, output)
  t.ok(at - sent < 10_000, `exited without waiting for the 20 s task (${at - sent} ms)`)
  t.notOk(existsSync(lab.inventory.replace(/\.yml$/, '.lock')), 'the run lock is released')
  const play: Play = {
    name: 'after',
    hosts: 'h1',
    gatherFacts: false,
    tasks: async (h) => void (await h.do(command({ name: 'True', cmd: 'true' }))),
  }
  let next = await run([play])
  // The server notices the dropped connection on its own time: give it a few seconds.
  for (let attempt = 0; next.exitCode !== 0 && attempt < 10; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    next = await run([play])
  }
  t.equal(next.exitCode, 0, next.text)
})
