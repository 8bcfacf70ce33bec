/**
 * Batched checks against real sshd servers on loopback: a run of tasks (h.doAll) asks every task's probes
 * in one round trip and ends exactly as the same tasks run one by one; a write inside the run makes later
 * tasks ask again; the batch answers byte for byte; and a privileged session killed in the middle of a run
 * fails that host alone as unreachable, with no task run twice.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { createServer, type AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { loopbackHosts, type Lab } from './harness.ts'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { startSshd } from '../fixtures/sshd.ts'
import { defineTask, noChange } from '../../lib/tasks/common.ts'
import { directory, file, lineInFile, packages, service, template, waitFor } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import type { HostRun, Play, Probe, Task, TaskOutcome } from '../../lib/types.ts'
import { probeCommand } from '../../lib/facts/probes.ts'
import { probePlanFile } from '../../lib/play/probe-plan.ts'
import { closedPort } from '../fixtures/ports.ts'

const SAMPLE_TEMPLATE = fileURLToPath(new URL('./fixtures/sample.conf.ejs', import.meta.url))

let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(2)
  work = mkdtempSync('/tmp/hastack-probes-')
  chmodSync(work, 0o755)
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
})

/**
 * Run plays with no probe plan: these tests count the trips of runs of tasks by themselves, and the session
 * test finds its helper busy with no early batch (test/engine/probe-plan.test.ts covers the plan).
 */
function runWithoutPlan(plays: Play[], args: string[] = []) {
  rmSync(probePlanFile(lab.inventory), { force: true })
  return lab.run(plays, args)
}

/** A fresh directory holding some of the wanted state and missing the rest. */
function seed(name: string): string {
  const dir = `${work}/${name}`
  mkdirSync(`${dir}/conf.d`, { recursive: true })
  writeFileSync(`${dir}/conf.d/a.conf`, 'a = 1\n')
  chmodSync(`${dir}/conf.d/a.conf`, 0o644)
  writeFileSync(`${dir}/limits`, 'one\ntwo\n')
  chmodSync(`${dir}/limits`, 0o644)
  return dir
}

/** The same tasks every comparison runs: some already right, some to change, some reading files just written. */
function someTasks(dir: string): Task[] {
  return [
    directory({ path: `${dir}/conf.d` }),
    file({ path: `${dir}/conf.d/a.conf`, content: 'a = 1\n' }),
    file({ path: `${dir}/conf.d/b.conf`, content: 'b = 2\n', mode: '0600' }),
    lineInFile({ path: `${dir}/limits`, line: 'two' }),
    lineInFile({ path: `${dir}/limits`, line: 'three' }),
    lineInFile({ path: `${dir}/limits`, line: 'four' }),
    template({ src: SAMPLE_TEMPLATE, dest: `${dir}/sample.conf`, vars: { port: 5432 } }),
    packages({ install: ['coreutils'] }),
    service({ service: 'hastack-no-such-unit', state: 'stopped' }),
  ]
}

/** Run tasks on h1 one way or the other; returns their outcomes and the commands the run sent for them. */
async function runOn(tasks: Task[], batched: boolean, args: string[] = []) {
  let outcomes: TaskOutcome[] = []
  let commands = 0
  const play: Play = {
    name: 'probes',
    hosts: 'h1',
    tasks: async (h: HostRun) => {
      const before = h.conn.commandCount
      if (batched) outcomes = await h.doAll(tasks)
      else for (const task of tasks) outcomes.push(await h.do(task))
      commands = h.conn.commandCount - before
    },
  }
  const result = await runWithoutPlan([play], args)
  const brief = outcomes.map((o) => `${o.status}: ${o.task} (${o.reason ?? ''})`)
  return { brief, commands, result }
}

t.test('a run of tasks ends exactly as the same tasks one by one, and a no-op run is one round trip', async (t) => {
  const single = seed('single')
  const batch = seed('batch')
  const one = await runOn(someTasks(single), false)
  const all = await runOn(someTasks(batch), true)
  t.same(
    all.brief.map((l) => l.replaceAll(batch, 'D')),
    one.brief.map((l) => l.replaceAll(single, 'D')),
    'same statuses and reasons',
  )
  for (const path of ['conf.d/a.conf', 'conf.d/b.conf', 'limits', 'sample.conf'])
    t.equal(readFileSync(`${batch}/${path}`, 'utf8'), readFileSync(`${single}/${path}`, 'utf8'), `${path} alike`)
  t.equal(
    readFileSync(`${batch}/limits`, 'utf8'),
    'one\ntwo\nthree\nfour\n',
    'a line task saw the line added before it',
  )
  const again = await runOn(someTasks(batch), true)
  t.ok(
    again.brief.every((l) => l.startsWith('ok')),
    'the second run changes nothing',
  )
  t.equal(again.commands, 1, 'and sends one command for all the checks')
  const againSingle = await runOn(someTasks(single), false)
  t.ok(againSingle.commands > 9, `one by one they send ${againSingle.commands}`)
  const checked = await runOn([...someTasks(batch), file({ path: `${batch}/new`, content: 'x' })], true, ['--check'])
  t.match(checked.brief.at(-1), /^changed: .*file is missing/, 'check mode reports from the batch too')
  t.equal(checked.commands, 1)
})

t.test("a write through a role's own query makes the next task read the host again", async (t) => {
  const path = `${work}/own-query`
  writeFileSync(path, 'old\n')
  chmodSync(path, 0o644)
  let outcomes: TaskOutcome[] = []
  const play: Play = {
    name: 'own query',
    hosts: 'h1',
    tasks: async (h: HostRun) => {
      // The write goes through the host's own connection, not the run of tasks' batched one.
      const rewrite = defineTask('Rewrite the file through a query', {}, async () => ({
        change: true,
        reason: 'rewritten',
        apply: async () => void (await h.query(sh`printf 'one\n' > ${path}`, { check: true })),
      }))
      outcomes = await h.doAll([rewrite, lineInFile({ path, line: 'two' })])
    },
  }
  const result = await runWithoutPlan([play])
  t.ok(result.success, result.lines.join('\n'))
  t.same(
    outcomes.map((o) => o.status),
    ['changed', 'changed'],
  )
  t.equal(readFileSync(path, 'utf8'), 'one\ntwo\n', 'the line task edited the file as the write left it')
})

t.test('a check that asks a command of its own costs one trip, and the rest are asked again together', async (t) => {
  const dir = seed('own-command')
  const reads = defineTask('Read something undeclared', {}, async (ctx) => {
    await ctx.conn.run('true', { check: true })
    return noChange()
  })
  const tasks = () => [...someTasks(dir).slice(0, 4), reads, ...someTasks(dir).slice(4)]
  await runOn(tasks(), true)
  const again = await runOn(tasks(), true)
  t.ok(
    again.brief.every((l) => l.startsWith('ok')),
    'nothing changes',
  )
  t.equal(again.commands, 3, 'the first gather, the undeclared command, one gather for the rest')
})

t.test(
  'tasks after the handlers: gathered with the others when no handler runs, asked again after one ran',
  async (t) => {
    const dir = seed('after-handlers')
    const settings = `${dir}/settings`
    const marker = `${dir}/marker`
    /** The settings file (notifying the handler when it changes), then, after the handlers, the marker read back. */
    const play = (content: string): Play => ({
      name: 'after handlers',
      hosts: 'h1',
      handlers: {
        'Write the marker': (h) => h.do(file({ path: marker, content: `${content}\n`, name: 'Write the marker' })),
      },
      tasks: async (h: HostRun) => {
        const before = h.conn.commandCount
        const outcomes = await h.doAll([file({ path: settings, content, notify: 'Write the marker' })], {
          afterHandlers: [file({ path: marker, content: `${content}\n`, name: 'Marker as the handler wrote it' })],
        })
        h.log(`commands=${h.conn.commandCount - before} after=${outcomes[1]!.status}`)
      },
    })
    const first = await runWithoutPlan([play('one')])
    t.ok(first.success)
    t.ok(
      first.lines.some((l) => l.includes('after=ok')),
      'after the handler wrote the marker, the task after the handlers reads it anew (ok, not changed)',
    )
    const again = await runWithoutPlan([play('one')])
    t.ok(
      again.lines.some((l) => l.includes('commands=1 after=ok')),
      'no handler: one round trip for both tasks',
    )
    const changed = await runWithoutPlan([play('two')])
    t.ok(
      changed.lines.some((l) => l.includes('after=ok')),
      'a changed setting: the handler ran, the marker read anew',
    )
    t.equal(readFileSync(marker, 'utf8'), 'two\n')
  },
)

t.test("a wait's first try is a probe: no round trip of its own when ready, asked live after a write", async (t) => {
  const dir = seed('waits')
  const ready = `${dir}/ready`
  const tasks = () => [
    file({ path: ready, content: 'up\n' }),
    waitFor({ until: sh`test -s ${ready}`, timeoutMs: 5_000, intervalMs: 100, name: 'Wait for the ready file' }),
  ]
  const first = await runOn(tasks(), true)
  t.same(first.brief, [`changed: Ensure ${ready} is current (file is missing)`, 'ok: Wait for the ready file (ready)'])
  const again = await runOn(tasks(), true)
  t.equal(again.commands, 1, 'the file and the wait read in one round trip')
  t.same(
    again.brief.map((l) => l.split(':')[0]),
    ['ok', 'ok'],
  )
})

t.test('queryAll asks typed probes and commands together in one trip, each answered as its command live', async (t) => {
  const packagesProbe = { kind: 'packages' as const, names: ['bash', 'hastack-no-such-package'] }
  let asked: string[] = []
  let live: string[] = []
  let commands = 0
  const play: Play = {
    name: 'queries',
    hosts: 'h1',
    tasks: async (h: HostRun) => {
      const before = h.conn.commandCount
      const answers = await h.queryAll([packagesProbe, 'echo plain'])
      commands = h.conn.commandCount - before
      asked = answers.map((a) => `${a.code} ${a.stdout}`)
      const one = await h.query(probeCommand(packagesProbe))
      live = [`${one.code} ${one.stdout}`, '0 plain\n']
    },
  }
  await runWithoutPlan([play])
  t.equal(commands, 1, 'one round trip')
  t.same(asked, live)
  t.match(asked[0], /^0 bash installed\n$/, 'the unknown package prints nothing')
})

t.test("a wait for a port is a typed probe: answered by the batch's own connect, not a process", async (t) => {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const { port } = server.address() as AddressInfo
  const wait = waitFor({ port, address: '127.0.0.1', timeoutMs: 3_000, name: 'Wait for the test port' })
  t.same(wait.probes, [{ kind: 'port', address: '127.0.0.1', port }])
  t.same(waitFor({ port, address: 'localhost' }).probes?.[0]?.kind, 'run', 'a name is asked as the command')
  const ready = await runOn([wait], true)
  t.same(ready.brief, ['ok: Wait for the test port (ready)'])
  t.equal(ready.commands, 1, 'the wait answered by the batch in its one round trip')
  const closed = await closedPort()
  const missing = await runOn(
    [waitFor({ port: closed, address: '127.0.0.1', timeoutMs: 1_000, intervalMs: 200 })],
    true,
  )
  t.match(
    missing.result.lines.join('\n'),
    /Wait for port \d+[^]*not ready after 1s/,
    'a closed port is waited for, live',
  )
})

t.test('every batched answer is byte for byte what the probe asks live, exit code included', async (t) => {
  const sshd = await startSshd()
  const conn = await SshConnection.connect(sshd.userSpec())
  t.teardown(async () => {
    await conn.close()
    await sshd.stop()
  })
  const dir = `${work}/kinds`
  mkdirSync(`${dir}/sub`, { recursive: true })
  chmodSync(`${dir}/sub`, 0o2750)
  writeFileSync(`${dir}/binary`, Buffer.from([0, 1, 2, 255, 10, 10, 0x27, 0x22, 0x5c]))
  writeFileSync(`${dir}/empty`, '')
  writeFileSync(`${dir}/with space`, 'a b\n')
  symlinkSync('binary', `${dir}/link`)
  symlinkSync('nowhere', `${dir}/dangling`)
  const paths = ['binary', 'empty', 'with space', 'sub', 'link', 'dangling', 'absent'].map((n) => `${dir}/${n}`)
  const probes: Probe[] = [
    ...paths.map((path) => ({ kind: 'path' as const, path })),
    { kind: 'path', path: '/dev/null' },
    { kind: 'packages', names: ['coreutils', 'hastack-no-such-package', 'bash'] },
    { kind: 'unit', name: 'ssh.service' },
    { kind: 'unit', name: 'hastack-no-such.service' },
    { kind: 'port', address: '127.0.0.1', port: sshd.port },
    { kind: 'port', address: '127.0.0.1', port: await closedPort() },
    ...paths.map((path) => ({ kind: 'read' as const, path })),
    ...paths.map((path) => ({ kind: 'test' as const, test: 'exists' as const, path })),
    ...paths.map((path) => ({ kind: 'test' as const, test: 'directory' as const, path })),
    ...paths.map((path) => ({ kind: 'digest' as const, paths: [path] })),
    { kind: 'digest', paths: [`${dir}/binary`, `${dir}/with space`] },
    ...['a b', 'a', '', '-a b', '\'"\\'].map((line) => ({ kind: 'line' as const, line, path: `${dir}/with space` })),
    ...['binary', 'empty', 'sub', 'link', 'absent'].map((n) => ({
      kind: 'line' as const,
      line: '',
      path: `${dir}/${n}`,
    })),
    ...['root', 'nogroup', 'hastack-no-such-group', '0', '-s'].map((name) => ({ kind: 'group' as const, name })),
    ...['root', 'nobody', 'hastack-no-such-user', '0', '-s'].map((name) => ({ kind: 'user' as const, name })),
    ...paths.map((path) => ({ kind: 'content' as const, path })),
    ...['*', 'with*', 'kinds', 'k*s', 'nothing*', '.*'].map((pattern) => ({ kind: 'entry' as const, dir, pattern })),
    { kind: 'entry', dir: `${dir}/absent`, pattern: '*' },
    { kind: 'entry', dir: `${dir}/link`, pattern: '*' },
    { kind: 'listing', dir },
    { kind: 'listing', dir: `${dir}/absent` },
    { kind: 'hostname', name: hostname() },
    { kind: 'hostname', name: 'hastack-not-this-host' },
    { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() },
    { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '7' },
    { kind: 'sysctl', key: 'net.hastack.no_such_key', value: '1' },
    { kind: 'run', command: "printf 'a\\n\\n'; echo err >&2; exit 3" },
    { kind: 'run', command: "printf '%s' \"it's\"" },
    { kind: 'run', command: 'id -u' },
    { kind: 'run', command: 'kill -TERM $$' },
    { kind: 'run', command: 'hastack-no-such-command' },
    { kind: 'run', command: 'head -c 200000 /dev/zero | tr "\\0" x' },
    // Commands with standard input: read whole, as a script, larger than a pipe holds, or left unread.
    { kind: 'run', command: 'cat', stdin: "line 1\n'quoted' \\ secret\n" },
    { kind: 'run', command: 'sh -s', stdin: 'echo "from $0"; exit 4\n' },
    { kind: 'run', command: 'wc -c', stdin: 'x'.repeat(200_000) },
    { kind: 'run', command: 'true', stdin: 'x'.repeat(200_000) },
    { kind: 'run', command: 'cat', stdin: '' },
  ]
  const answers = await conn.runProbes(probes)
  // A command's live output reaches a check decoded as UTF-8, and so does a batched answer (ProbedConnection);
  // a read's bytes stay bytes. (test/engine/native-probes.test.ts compares undecoded bytes too.)
  const asChecksRead = (probe: Probe, stdout: Buffer) =>
    probe.kind === 'read' ? stdout.toString('latin1') : Buffer.from(stdout.toString('utf8')).toString('latin1')
  for (const [i, probe] of probes.entries()) {
    const command = probeCommand(probe)
    const live =
      command === undefined
        ? await conn.get((probe as { path: string }).path).then(
            (stdout) => ({ code: 0, stdout }),
            () => ({ code: 1, stdout: Buffer.alloc(0) }),
          )
        : await conn
            .run(command, probe.kind === 'run' && probe.stdin !== undefined ? { stdin: probe.stdin } : {})
            .then((r) => ({ code: r.code, stdout: Buffer.from(r.stdout) }))
    t.same(
      [answers[i]!.code, asChecksRead(probe, answers[i]!.stdout)],
      [live.code, live.stdout.toString('latin1')],
      JSON.stringify(probe),
    )
  }
})

t.test('the commands of a batch run side by side, their answers in the probes order', async (t) => {
  const sshd = await startSshd()
  const conn = await SshConnection.connect(sshd.userSpec())
  t.teardown(async () => {
    await conn.close()
    await sshd.stop()
  })
  const sleepers: Probe[] = [3, 1, 2, 0, 5, 4].map((n) => ({ kind: 'run', command: `sleep 0.${n}; echo ${n}` }))
  const started = Date.now()
  const answers = await conn.runProbes([...sleepers, { kind: 'run', command: 'exit 7' }])
  const seconds = (Date.now() - started) / 1000
  t.same(
    answers.map((a) => [a.code, a.stdout.toString()]),
    [...[3, 1, 2, 0, 5, 4].map((n) => [0, `${n}\n`]), [7, '']],
  )
  // One after another they would take 1.5 s; side by side about the longest, 0.5 s.
  t.ok(seconds < 1.2, `six sleeps answered in ${seconds.toFixed(2)} s`)
})

t.test('a slow command of a batch holds back none of the others: the next starts when any one ends', async (t) => {
  const sshd = await startSshd()
  const conn = await SshConnection.connect(sshd.userSpec())
  t.teardown(async () => {
    await conn.close()
    await sshd.stop()
  })
  // One 2 s command, then eleven of 0.5 s, six at once. Waiting for the commands in the order they started
  // (the slow one first) would start the last six only after 2 s, ending at 2.5 s; taking whichever ends
  // first runs the eleven in the slow one's shadow, so the batch takes about its 2 s.
  const quick = Array.from({ length: 11 }, (_, n): Probe => ({ kind: 'run', command: `sleep 0.5; echo ${n}` }))
  const started = Date.now()
  const answers = await conn.runProbes([{ kind: 'run', command: 'sleep 2; echo slow' }, ...quick])
  const seconds = (Date.now() - started) / 1000
  t.same(
    answers.map((a) => a.stdout.toString()),
    ['slow\n', ...quick.map((_, n) => `${n}\n`)],
  )
  t.ok(seconds < 2.4, `answered in ${seconds.toFixed(2)} s`)
})

t.test('a privileged session killed mid-run fails that host alone as unreachable; no task runs twice', async (t) => {
  const logs = { h1: `${work}/h1.log`, h2: `${work}/h2.log` }
  /** A task that always changes: its apply appends its letter to the host's log (and may kill its session). */
  const append = (letter: string, killOn?: string): Task =>
    defineTask(`Append ${letter}`, {}, async (ctx) => ({
      change: true,
      reason: 'always',
      apply: async () => {
        const log = logs[ctx.host.name as 'h1' | 'h2']
        // The helper is the parent of the command's `timeout`, the parent of this shell.
        const kill = ctx.host.name === killOn ? `; kill -9 $(awk '{print $4}' /proc/$PPID/stat)` : ''
        await ctx.conn.run(`echo ${letter} >> ${log}${kill}`, { check: true })
      },
    }))
  const play: Play = {
    name: 'drop',
    hosts: 'web',
    gatherFacts: false,
    tasks: async (h) => {
      await h.doAll([append('A'), append('B', 'h1'), append('C')])
      await h.do(defineTask('After', {}, async () => noChange()))
    },
  }
  const result = await runWithoutPlan([play])
  t.equal(result.exitCode, 4, 'exit 4: a host was unreachable')
  t.equal(readFileSync(logs.h1, 'utf8'), 'A\nB\n', 'h1: the lost command ran once and nothing after it')
  t.equal(readFileSync(logs.h2, 'utf8'), 'A\nB\nC\n', 'h2 went on')
  t.ok(result.lines.some((l) => /^h1\s+: .*unreachable=1/.test(l)))
  t.ok(result.lines.some((l) => /^h2\s+: ok=4\s+changed=3\s+unreachable=0\s+failed=0/.test(l)))
  t.ok(
    result.lines.some((l) => /not re-run/.test(l)),
    'the report says the command was not re-run',
  )
})
