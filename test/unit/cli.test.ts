/**
 * The playbook command line and what runs without a host: strict options with
 * did-you-mean, combined short flags, --help, -e JSON, a playbook's own options,
 * --list-hosts/--list-tasks/--list-tags writing nothing, --step answers, the
 * start-at-task matcher, the local run lock, recap timing and still-running notices.
 */
import t from 'tap'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { tree } from '../fixtures/tree.ts'
import { parseArgs } from '../../lib/cli/args.ts'
import { closestOption, HelpRequested, parseCommandLine } from '../../lib/cli/parse.ts'
import { loadInventory } from '../../lib/inventory/index.ts'
import { playbook } from '../../lib/playbook.ts'
import { emptyStats, Reporter, type HostStats } from '../../lib/output/reporter.ts'
import { taskNameMatcher } from '../../lib/play/runner.ts'
import { StepPrompter } from '../../lib/play/step.ts'
import { watchSlowTask } from '../../lib/play/progress.ts'
import { DUPLICATE_SIGNAL_MS, RunControl, watchSignals } from '../../lib/play/interrupt.ts'
import { acquireRunLock, runLockPath } from '../../lib/play/run-lock.ts'
import { InputError, type Play, type Role } from '../../lib/types.ts'
import { defineTask, noChange } from '../../lib/tasks/common.ts'

const role: Role = {
  name: 'demo',
  description: 'a role with a secret, tasks and a query',
  defaults: {},
  schema: { demo_password: { type: 'string', secret: true, description: 'a password' } },
  tasks: async (h) => {
    await h.do(defineTask('Ensure the demo package is installed', { tags: ['packages'] }, async () => noChange()))
    const probe = await h.query('cat /etc/demo.conf')
    if (probe.stdout === '') await h.do(defineTask('Write the first demo configuration', {}, async () => noChange()))
    await h.do(defineTask('Ensure demo is running', { tags: ['service'] }, async () => noChange()))
  },
}
const plays: Play[] = [{ name: 'Demo everywhere', hosts: 'all', roles: [role] }]
/** An inventory whose hosts have no address yet, as inventory/lab.yml before `lab up`. */
const labLike = 'all:\n  children:\n    web:\n      hosts:\n        web1:\n        web2:\n'

function capture(): { reporter: Reporter; lines: string[] } {
  const lines: string[] = []
  return { lines, reporter: new Reporter({ verbosity: 0, diff: false, color: false, write: (l) => lines.push(l) }) }
}

t.test('refuses an unknown option with exit 1, naming it and the closest option', async (t) => {
  t.throws(() => parseArgs(['-i', 'x.yml', '--chek']), /unknown option --chek \(did you mean --check\?\)/)
  t.throws(() => parseArgs(['-i', 'x.yml', '--start-at-tsk', 'A']), /did you mean --start-at-task\?/)
  t.throws(() => parseArgs(['-i', 'x.yml', '-Q']), /unknown option -Q/)
  t.throws(() => parseArgs(['-i', 'x.yml', 'stray']), /unexpected argument stray/)
  t.throws(() => parseArgs(['-i']), /option --inventory needs a value/)
  t.equal(closestOption('--zzzzzz', ['check', 'diff']), undefined, 'no guess when nothing is close')
  const dir = await tree({ 'hosts.yml': labLike })
  const { reporter } = capture()
  const result = await playbook({
    name: 't',
    plays,
    argv: ['-i', path.join(dir, 'hosts.yml'), '--chek'],
    embedded: true,
    reporter,
  })
  t.equal(result.exitCode, 1)
  t.same(readdirSync(dir), ['hosts.yml'], 'nothing was written')
})

t.test('combines short flags as Ansible does: -CD is check and diff, -vvv is verbosity 3', async (t) => {
  const o = parseArgs(['-CDi', 'x.yml', '-vvv'])
  t.ok(o.check && o.diff)
  t.equal(o.inventory, 'x.yml')
  t.equal(o.verbosity, 3)
  t.equal(parseArgs(['-i', 'x.yml', '-v', '-v']).verbosity, 2)
})

t.test('--help and -h ask for the usage, which lists every option, and the playbook exits 0', async (t) => {
  t.throws(() => parseArgs(['--help']), HelpRequested)
  t.throws(() => parseArgs(['-h']), HelpRequested)
  try {
    parseArgs(['-h'], { duration: { type: 'number', valueName: 'SECONDS', description: 'how long the drill lasts' } })
  } catch (error) {
    const usage = (error as HelpRequested).usage
    for (const option of [
      '--check',
      '--list-tasks',
      '--start-at-task NAME',
      '--step',
      '--wait-lock SECONDS',
      '--duration SECONDS',
    ])
      t.ok(usage.includes(option), `usage names ${option}`)
  }
  const result = await playbook({ name: 't', plays, argv: ['--help'], embedded: true })
  t.equal(result.exitCode, 0)
})

t.test('a playbook declares its own typed options instead of receiving unknown arguments', async (t) => {
  const own = {
    duration: { type: 'number' as const, description: 'seconds' },
    dry: { type: 'boolean' as const, description: 'x' },
  }
  const o = parseArgs(['-i', 'x.yml', '--duration', '30', '--dry'], own)
  t.same(o.playbookOptions, { duration: 30, dry: true })
  t.throws(() => parseArgs(['-i', 'x.yml', '--duration', 'soon'], own), /--duration must be a number/)
  t.throws(() => parseArgs(['-i', 'x.yml', '--duration', '30']), /unknown option --duration/)
  t.throws(
    () => parseArgs(['-i', 'x.yml'], { check: { type: 'boolean', description: 'x' } }),
    /clashes with an engine option/,
  )
})

t.test('one parser serves every CLI: positionals where a tool wants them, the same refusals', async (t) => {
  const specs = { name: { type: 'string' as const, short: 'n', description: 'a name' } }
  const parsed = parseCommandLine(['up', '-n', 'x', 'db1'], specs, 'usage: lab COMMAND', true)
  t.same(parsed.positionals, ['up', 'db1'])
  t.equal(parsed.values.name, 'x')
  t.throws(() => parseCommandLine(['--nme', 'x'], specs, 'usage'), /unknown option --nme \(did you mean --name\?\)/)
})

t.test('-e accepts a JSON object as well as k=v and @file.yml', async (t) => {
  const dir = await tree({
    'hosts.yml': 'all:\n  hosts:\n    web1: { address: 10.0.0.1 }\n',
    'more.yml': 'from_file: true\n',
  })
  const inv = await loadInventory(path.join(dir, 'hosts.yml'), {
    extraVars: ['{"k": [1, 2], "nested": {"a": "b"}}', 'plain=3', `@${path.join(dir, 'more.yml')}`],
  })
  const vars = inv.hosts.get('web1')!.vars
  t.same(vars.k, [1, 2])
  t.same(vars.nested, { a: 'b' })
  t.equal(vars.plain, 3)
  t.equal(vars.from_file, true)
  await t.rejects(loadInventory(path.join(dir, 'hosts.yml'), { extraVars: ['{"k": '] }), /-e: invalid JSON/)
  await t.rejects(
    loadInventory(path.join(dir, 'hosts.yml'), { extraVars: ['{"bad-name": 1}'] }),
    /invalid variable name "bad-name"/,
  )
})

t.test('--list-hosts works on an inventory without addresses, exits 0 and writes nothing', async (t) => {
  const dir = await tree({ 'hosts.yml': labLike })
  const { reporter, lines } = capture()
  const result = await playbook({
    name: 'demo',
    plays,
    argv: ['-i', path.join(dir, 'hosts.yml'), '--list-hosts'],
    embedded: true,
    reporter,
  })
  t.equal(result.exitCode, 0)
  t.ok(
    lines.some((l) => l.includes('hosts (2): web1, web2')),
    lines.join('\n'),
  )
  t.same(readdirSync(dir), ['hosts.yml'], 'no secrets file, no lock file')
})

t.test('--list-tasks shows the tasks as on a fresh host, without connecting; --list-tags their tags', async (t) => {
  const dir = await tree({ 'hosts.yml': labLike })
  const tasks = capture()
  const listed = await playbook({
    name: 'demo',
    plays,
    argv: ['-i', path.join(dir, 'hosts.yml'), '--list-tasks'],
    embedded: true,
    reporter: tasks.reporter,
  })
  t.equal(listed.exitCode, 0)
  const text = tasks.lines.join('\n')
  t.match(text, /Ensure the demo package is installed\s+TAGS: \[demo, packages\]/)
  t.match(
    text,
    /Write the first demo configuration\s+TAGS: \[demo\]/,
    'queries answer empty: the fresh-host branch is listed',
  )
  t.match(text, /Ensure demo is running\s+TAGS: \[demo, service\]/)
  const filtered = capture()
  await playbook({
    name: 'demo',
    plays,
    argv: ['-i', path.join(dir, 'hosts.yml'), '--list-tasks', '-t', 'service'],
    embedded: true,
    reporter: filtered.reporter,
  })
  t.notMatch(filtered.lines.join('\n'), /package/, 'tag filters apply to the list')
  const tags = capture()
  await playbook({
    name: 'demo',
    plays,
    argv: ['-i', path.join(dir, 'hosts.yml'), '--list-tags'],
    embedded: true,
    reporter: tags.reporter,
  })
  t.ok(
    tags.lines.some((l) => l.includes('TASK TAGS: [demo, packages, service]')),
    tags.lines.join('\n'),
  )
  t.same(readdirSync(dir), ['hosts.yml'], 'nothing was written')
})

t.test('check mode keeps generated secrets in memory and writes no secrets file', async (t) => {
  const dir = await tree({ 'hosts.yml': 'all:\n  hosts:\n    web1: { address: 10.0.0.1 }\n' })
  const inv = await loadInventory(path.join(dir, 'hosts.yml'), { roles: [role], writeSecrets: false })
  t.match(inv.secrets.demo_password, /^[A-Za-z0-9_-]{32}$/)
  t.notOk(existsSync(path.join(dir, 'hosts.secrets.yml')))
})

t.test('--start-at-task matches a name exactly or as a glob with *', async (t) => {
  const exact = taskNameMatcher('Ensure etcd is installed')
  t.ok(exact('Ensure etcd is installed'))
  t.notOk(exact('Ensure etcd is installed and more'))
  const glob = taskNameMatcher('Ensure * is (re)started')
  t.ok(glob('Ensure etcd is (re)started'), 'regular expression characters are literal')
  t.notOk(glob('Ensure etcd is restarted'))
})

t.test('--step asks once per task for all hosts, one question at a time; continue stops asking', async (t) => {
  const input = new PassThrough()
  const asked: string[] = []
  const step = new StepPrompter(input, (text) => asked.push(text))
  const first = [step.perform('p\u0000A', 'A'), step.perform('p\u0000A', 'A'), step.perform('p\u0000B', 'B')]
  input.write('maybe\nn\ny\n')
  t.same(await Promise.all(first), [false, false, true])
  t.equal(asked.filter((q) => q.startsWith('Perform task A?')).length, 2, 'an invalid answer asks again')
  t.equal(asked.filter((q) => q.startsWith('Perform task B?')).length, 1)
  input.write('c\n')
  t.equal(await step.perform('p\u0000C', 'C'), true)
  t.equal(await step.perform('p\u0000D', 'D'), true, 'after continue nothing is asked')
  t.notOk(asked.some((q) => q.includes('task D')))
  step.close()
})

t.test('--step reads end of input as no', async (t) => {
  const input = new PassThrough()
  const step = new StepPrompter(input, () => {})
  input.end()
  t.equal(await step.perform('k', 'A'), false)
})

t.test('--step without a terminal is bad input (exit 1)', async (t) => {
  const dir = await tree({ 'hosts.yml': 'all:\n  hosts:\n    web1: { address: 127.0.0.1, ssh_port: 1 }\n' })
  if (process.stdin.isTTY) return t.pass('standard input is a terminal here: nothing to check')
  const result = await playbook({
    name: 't',
    plays: [],
    argv: ['-i', path.join(dir, 'hosts.yml'), '--step'],
    embedded: true,
  })
  t.equal(result.exitCode, 1)
})

t.test('the run lock: a second run is refused naming the holder; a dead holder is stale and taken over', async (t) => {
  const dir = await tree({ 'lab.yml': '' })
  const inventory = path.join(dir, 'lab.yml')
  t.equal(runLockPath(inventory), path.join(dir, 'lab.lock'))
  const warnings: string[] = []
  const lock = await acquireRunLock(inventory, { command: 'playbook site -i lab.yml', warn: (m) => warnings.push(m) })
  const refused = acquireRunLock(inventory, { command: 'second', warn: () => {} })
  await t.rejects(refused, InputError)
  await t.rejects(
    acquireRunLock(inventory, { command: 'x', warn: () => {} }),
    new RegExp(`pid ${process.pid} on .*playbook site -i lab.yml`),
  )
  lock.release()
  t.notOk(existsSync(path.join(dir, 'lab.lock')), 'released')

  const dead = spawn(process.execPath, ['-e', ''])
  await new Promise((resolve) => dead.on('exit', resolve))
  const { hostname } = await import('node:os')
  writeFileSync(
    path.join(dir, 'lab.lock'),
    JSON.stringify({ pid: dead.pid, hostname: hostname(), startedAt: 'then', command: 'crashed' }),
  )
  const taken = await acquireRunLock(inventory, { command: 'next', warn: (m) => warnings.push(m) })
  t.ok(
    warnings.some((w) => /taking over the stale lock .* pid \d+ .*crashed/.test(w)),
    warnings.join('\n'),
  )
  taken.release()
})

t.test('--wait-lock waits for the holder to finish', async (t) => {
  const dir = await tree({ 'lab.yml': '' })
  const inventory = path.join(dir, 'lab.yml')
  const first = await acquireRunLock(inventory, { command: 'first', warn: () => {} })
  setTimeout(() => first.release(), 700)
  const started = Date.now()
  const second = await acquireRunLock(inventory, { command: 'second', waitSeconds: 5, warn: () => {} })
  t.ok(Date.now() - started >= 600, 'it waited')
  second.release()
  const held = await acquireRunLock(inventory, { command: 'third', warn: () => {} })
  await t.rejects(acquireRunLock(inventory, { command: 'fourth', waitSeconds: 1, warn: () => {} }), /waited 1 s/)
  held.release()
})

t.test('the recap ends with the total time and the five slowest tasks', async (t) => {
  const { reporter, lines } = capture()
  const stats = new Map<string, HostStats>([
    ['db1', emptyStats()],
    ['db2', emptyStats()],
  ])
  const durations = [100, 9000, 300, 125_000, 50, 700, 2500]
  durations.forEach((ms, i) =>
    stats
      .get(i % 2 ? 'db2' : 'db1')!
      .tasks.push({ task: `Task ${i}`, status: 'ok', changed: false, durationMs: ms, play: 'p' }),
  )
  reporter.recap(stats, 151_000)
  const text = lines.join('\n')
  t.match(text, /Total time: 2 min 31 s/)
  const slowest = lines.slice(lines.findIndex((l) => l === 'Slowest tasks:') + 1)
  t.equal(slowest.length, 5)
  t.match(slowest[0], /2 min 05 s {2}db2 \| Task 3/)
  t.match(slowest[1], /9\.0 s {2}db2 \| Task 1/)
  t.match(slowest[4], /0\.3 s {2}db1 \| Task 2/)
})

t.test('a slow task gets a first notice after firstMs, then one every everyMs, until stopped', async (t) => {
  const notices: number[] = []
  const stop = watchSlowTask({ firstMs: 100, everyMs: 100 }, (s) => notices.push(s))
  await new Promise((resolve) => setTimeout(resolve, 350))
  stop()
  const count = notices.length
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.ok(count >= 2 && count <= 4, `${count} notices`)
  t.equal(notices.length, count, 'none after stop')
  const { reporter, lines } = capture()
  reporter.stillRunning('db1', 'Ensure PostgreSQL is installed', 25)
  t.same(lines, ['db1 | Ensure PostgreSQL is installed: still running (25 s)'])
})

t.test(
  'the first signal asks the run to stop; a second one exits, unless it is the same keypress delivered twice',
  async (t) => {
    const control = new RunControl()
    const told: string[] = []
    const exits: number[] = []
    const stop = watchSignals(
      control,
      (s) => told.push(s),
      (code) => exits.push(code),
    )
    try {
      process.emit('SIGINT', 'SIGINT')
      process.emit('SIGINT', 'SIGINT')
      t.same(told, ['SIGINT'])
      t.same(exits, [], 'a duplicate right after the first is ignored')
      t.ok(control.stopping)
      await new Promise((resolve) => setTimeout(resolve, DUPLICATE_SIGNAL_MS + 50))
      process.emit('SIGTERM', 'SIGTERM')
      t.same(exits, [143], 'a later signal exits at once')
    } finally {
      stop()
    }
  },
)

t.test('--list-hosts on inventory/lab.yml needs no running lab, exits 0 and creates no file', async (t) => {
  const repo = fileURLToPath(new URL('../..', import.meta.url))
  const inventoryDir = path.join(repo, 'inventory')
  const files = () => readdirSync(inventoryDir, { recursive: true }).map(String).sort()
  const before = files()
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'playbooks/site.ts', '-i', 'inventory/lab.yml', '--list-hosts'],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  child.stderr.on('data', (c) => (output += c))
  const code = await new Promise((resolve) => child.on('exit', resolve))
  t.equal(code, 0, output)
  t.match(output, /play #1 \(all\): Prepare every host\n\s+hosts \(\d+\): db1, db2, db3/)
  t.match(output, /\(monitoring\): Run Alertmanager, Prometheus and Grafana\n\s+hosts \(1\): mon1/, 'then monitoring')
  t.match(output, /\(logging\): Store the journals centrally\n\s+hosts \(1\): mon1/, 'then the central logs')
  t.match(output, /\(all\): Ship every journal to the logging host\n\s+hosts \(\d+\): db1/, 'shipped from every host')
  t.same(files(), before, 'no secrets file, no lock file')
})

t.test('logs.ts refuses a host outside the inventory and a bad time with exit 1, before any connection', async (t) => {
  const repo = fileURLToPath(new URL('../..', import.meta.url))
  const args = ['--import', 'tsx', 'playbooks/logs.ts', '-i', 'inventory/lab.yml', '--list-hosts']
  const run = async (...extra: string[]) => {
    const child = spawn(process.execPath, [...args, ...extra], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c) => (output += c))
    child.stderr.on('data', (c) => (output += c))
    const code = await new Promise((resolve) => child.on('exit', resolve))
    return { code, output }
  }
  const bad = await run('--host', 'nope', '--since', '$(reboot)')
  t.equal(bad.code, 1)
  t.match(bad.output, /--host "nope" is not a host of the inventory\n--since "\$\(reboot\)" is not a time/)
  const good = await run('--host', 'db2', '--grep', "it's")
  t.equal(good.code, 0, good.output)
  t.match(good.output, /play #1 \(mon1\): Read the central logs/, 'read on the logging host')
})
