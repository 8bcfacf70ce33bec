/**
 * Plays across several real hosts (sshd servers on loopback): handlers,
 * an unreachable host, tags, rolling batches, run-once, check mode, secret
 * masking and the --json report.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { loopbackHosts, type Lab } from './harness.ts'
import type { Play, Role } from '../../lib/types.ts'
import { command, file } from '../../lib/tasks/index.ts'
import { clearSecrets } from '../../lib/output/mask.ts'

let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(3, { unreachable: true })
  work = mkdtempSync('/tmp/hastack-plays-')
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
  clearSecrets()
})

t.test('an unreachable host is reported and the others go on', async (t) => {
  const result = await lab.run([
    {
      name: 'touch',
      hosts: 'all',
      tasks: async (h) => void (await h.do(file({ path: `${work}/${h.name}-u`, content: 'x' }))),
    },
  ])
  t.equal(result.exitCode, 4)
  t.equal(result.stats.get('ghost')?.unreachable, 1)
  t.match(result.stats.get('ghost')?.error, /127\.0\.0\.1:1/)
  for (const h of ['h1', 'h2', 'h3']) {
    t.equal(result.stats.get(h)?.changed, 1, `${h} changed`)
    t.ok(existsSync(`${work}/${h}-u`))
  }
  t.ok(
    result.lines.some((l) => /^ghost\s+: ok=0 .*unreachable=1/.test(l)),
    'recap line for the unreachable host',
  )
})

t.test('handlers run once per host, at the end, in definition order', async (t) => {
  const order: string[] = []
  const play: Play = {
    name: 'handlers',
    hosts: 'h1',
    handlers: {
      first: async () => void order.push('first'),
      second: async () => void order.push('second'),
    },
    tasks: async (h) => {
      await h.do(file({ path: `${work}/hd1`, content: String(Date.now()), notify: ['second'] }))
      await h.do(file({ path: `${work}/hd2`, content: String(Date.now()), notify: ['first', 'second'] }))
      order.push('tasks done')
    },
  }
  const result = await lab.run([play])
  t.equal(result.exitCode, 0)
  t.same(order, ['tasks done', 'first', 'second'])
})

t.test('a notified handler that supersedes another runs alone; the other runs when notified alone', async (t) => {
  const ran: string[] = []
  const play = (notify: string[]): Play => ({
    name: 'superseding',
    hosts: 'h1',
    handlers: {
      reload: async () => void ran.push('reload'),
      restart: { supersedes: ['reload'], run: async () => void ran.push('restart') },
    },
    tasks: async (h) => void (await h.do(file({ path: `${work}/sup`, content: String(Date.now()), notify }))),
  })
  t.equal((await lab.run([play(['reload', 'restart'])])).exitCode, 0)
  t.same(ran, ['restart'], 'both notified: only the restart runs')
  ran.length = 0
  t.equal((await lab.run([play(['reload'])])).exitCode, 0)
  t.same(ran, ['reload'], 'the reload alone still runs')
})

t.test('a notified handler is reported pending when a later task fails, or runs with --force-handlers', async (t) => {
  let ran = 0
  const play: Play = {
    name: 'pending',
    hosts: 'h1',
    handlers: { 'restart thing': async () => void ran++ },
    tasks: async (h) => {
      await h.do(file({ path: `${work}/pending-${Date.now()}`, content: 'x', notify: 'restart thing' }))
      await h.do(command({ name: 'Fail on purpose', cmd: 'exit 1' }))
    },
  }
  const failed = await lab.run([play])
  t.equal(failed.exitCode, 2)
  t.same(failed.stats.get('h1')?.pendingHandlers, ['restart thing'])
  t.ok(failed.lines.some((l) => l.includes('pending handlers: restart thing')))
  t.equal(ran, 0)
  const forced = await lab.run([play], ['--force-handlers'])
  t.equal(ran, 1)
  t.same(forced.stats.get('h1')?.pendingHandlers, [])
})

t.test('tags select tasks; role names are tags; --skip-tags wins', async (t) => {
  const seen: string[] = []
  const role: Role = {
    name: 'tagged',
    description: 'test role',
    defaults: {},
    schema: {},
    tasks: async (h) => {
      await h.do(command({ name: 'config task', cmd: 'true', tags: ['config'] }))
      seen.push('after-config')
      await h.do(command({ name: 'other task', cmd: 'true' }))
    },
  }
  const names = (r: Awaited<ReturnType<Lab['run']>>) => r.stats.get('h1')!.tasks.map((x) => x.task)
  t.same(names(await lab.run([{ name: 'p', hosts: 'h1', roles: [role] }], ['--tags', 'config'])), ['config task'])
  t.same(names(await lab.run([{ name: 'p', hosts: 'h1', roles: [role] }], ['--tags', 'tagged'])), [
    'config task',
    'other task',
  ])
  t.same(
    names(await lab.run([{ name: 'p', hosts: 'h1', roles: [role] }], ['--tags', 'tagged', '--skip-tags', 'config'])),
    ['other task'],
  )
})

t.test('serial batches stop the rolling work at the first failing member', async (t) => {
  const touched: string[] = []
  const play: Play = {
    name: 'rolling',
    hosts: 'web',
    serial: 1,
    tasks: async (h) => {
      touched.push(h.name)
      if (h.name === 'h2') await h.do(command({ name: 'Health check', cmd: 'exit 1' }))
    },
  }
  const result = await lab.run([play], ['--limit', 'web:!ghost'])
  t.same(touched, ['h1', 'h2'], 'h3 never touched')
  t.equal(result.exitCode, 2)
  t.ok(result.lines.some((l) => /rolling work halts at the first unhealthy member/.test(l)))
})

t.test('a failure in a play that treats errors as fatal ends the run: later plays never start', async (t) => {
  const later: string[] = []
  const fatal: Play = {
    name: 'fatal',
    hosts: 'h1',
    anyErrorsFatal: true,
    tasks: async (h) => void (await h.do(command({ name: 'Refuse', cmd: 'exit 1' }))),
  }
  const next: Play = { name: 'next', hosts: 'web:!ghost', tasks: async (h) => void later.push(h.name) }
  const result = await lab.run([fatal, next])
  t.equal(result.exitCode, 2)
  t.same(later, [], 'no host ran the next play')
  t.ok(result.lines.some((l) => /treats any error as fatal/.test(l)))
})

t.test('a task run through h.once runs on one host and every host gets its outcome', async (t) => {
  const marker = `${work}/once-count`
  const play: Play = {
    name: 'once',
    hosts: 'web:!ghost',
    tasks: async (h) => {
      const count = command({ name: 'Count once', cmd: `echo x >> ${marker}; echo done` })
      const out = await h.once('count', () => h.do(count))
      if (out.stdout?.trim() !== 'done') throw new Error(`no shared stdout on ${h.name}`)
    },
  }
  const result = await lab.run([play])
  t.equal(result.exitCode, 0)
  t.equal(readFileSync(marker, 'utf8'), 'x\n')
  const changed = ['h1', 'h2', 'h3'].map((h) => result.stats.get(h)!.changed)
  t.same(changed.sort(), [0, 0, 1])
})

t.test('when the step run through h.once fails, every host of the batch fails with it', async (t) => {
  const play: Play = {
    name: 'once-fails',
    hosts: 'web:!ghost',
    tasks: async (h) => void (await h.once('broken', () => h.do(command({ name: 'Fail once', cmd: 'exit 3' })))),
  }
  const result = await lab.run([play])
  t.equal(result.exitCode, 2)
  const failed = ['h1', 'h2', 'h3'].map((h) => result.stats.get(h)!.failed)
  t.same(failed, [1, 1, 1], 'the host that ran it and the hosts that waited for it')
  const shared = ['h1', 'h2', 'h3'].flatMap((h) => result.stats.get(h)!.tasks.filter((x) => x.task === 'role logic'))
  t.equal(shared.length, 2)
  for (const x of shared) t.match(x.error, /"broken" ran once for the batch and failed/)
})

t.test('one-at-a-time sections never overlap, and stop at the first host that fails', async (t) => {
  const log = `${work}/turns-${Date.now()}`
  // Each turn appends "start NAME", sleeps, appends "end NAME" on the host: overlapping turns would interleave.
  // With failFirst, the host that finds the log empty (the first turn) fails.
  const section = (failFirst: boolean): Play => ({
    name: 'turns',
    hosts: 'web:!ghost',
    tasks: async (h) => {
      await h.oneAtATime('restart', async () => {
        const fail = failFirst ? `test -s ${log} && ` : ''
        await h.do(
          command({
            name: `Turn of ${h.name}`,
            cmd: `${fail}true; code=$?; echo start ${h.name} >> ${log}; sleep 0.3; echo end ${h.name} >> ${log}; exit $code`,
          }),
        )
      })
    },
  })
  const ok = await lab.run([section(false)])
  t.equal(ok.exitCode, 0)
  const lines = readFileSync(log, 'utf8').trim().split('\n')
  t.equal(lines.length, 6, 'every host took its turn')
  for (let i = 0; i < lines.length; i += 2)
    t.equal(lines[i]!.replace('start', 'end'), lines[i + 1], `turn ${i / 2 + 1} ended before the next began`)

  rmSync(log)
  const stopped = await lab.run([section(true)])
  t.equal(stopped.exitCode, 2)
  const after = readFileSync(log, 'utf8').trim().split('\n')
  t.equal(after.length, 2, `only the first turn ran (${after.join(', ')}); after it failed no other host started`)
  t.equal(
    stopped.lines.filter((l) => /not started: "restart" failed on h\d/.test(l)).length,
    2,
    'the two hosts that did not start say why',
  )
})

t.test('--check runs nothing that changes a host', async (t) => {
  const path = `${work}/check-${Date.now()}`
  const result = await lab.run(
    [
      {
        name: 'c',
        hosts: 'web:!ghost',
        tasks: async (h) => {
          await h.do(file({ path: `${path}-${h.name}`, content: 'x' }))
          await h.do(command({ cmd: `touch ${path}-cmd-${h.name}` }))
        },
      },
    ],
    ['--check'],
  )
  t.equal(result.exitCode, 0)
  for (const h of ['h1', 'h2', 'h3']) {
    t.notOk(existsSync(`${path}-${h}`))
    t.notOk(existsSync(`${path}-cmd-${h}`))
    t.equal(result.stats.get(h)!.changed, 2, 'both reported as would-change')
  }
})

t.test('a generated secret is stored 0600 and masked in output, diffs, errors and the JSON report', async (t) => {
  const report = `${work}/report.json`
  const path = `${work}/secretfile`
  const role: Role = {
    name: 'secretive',
    description: 'a role with a generated secret',
    defaults: {},
    schema: { secretive_password: { type: 'string', secret: true, description: 'generated once' } },
    tasks: async (h) => {
      await h.do(file({ path, content: `password=${h.vars.secretive_password}\n` }))
      await h.do(command({ name: 'Leak on failure', cmd: `echo ${h.vars.secretive_password} >&2; exit 1` }))
    },
  }
  const result = await lab.run([{ name: 'secrets', hosts: 'h1', roles: [role] }], ['--diff', '--json', report])
  t.equal(result.exitCode, 2)
  const secretsFile = lab.inventory.replace(/\.yml$/, '.secrets.yml')
  t.equal((statSync(secretsFile).mode & 0o777).toString(8), '600')
  const secret = /secretive_password: (\S+)/.exec(readFileSync(secretsFile, 'utf8'))![1]!
  t.ok(secret.length >= 20, 'a strong generated value')
  t.equal(readFileSync(path, 'utf8'), `password=${secret}\n`, 'the host gets the real value')
  const all = result.lines.join('\n') + readFileSync(report, 'utf8')
  t.notOk(all.includes(secret), 'the secret is printed nowhere')
  t.match(all, /password=\*\*\*/)
  t.match(result.stats.get('h1')?.error, /\*\*\*/)
  const again = await lab.run([{ name: 'secrets', hosts: 'h1', roles: [role] }])
  t.equal(again.stats.get('h1')!.tasks[0]!.status, 'ok', 'the stored secret is reused: the file does not change')
})

t.test('--json writes per-host counts and per-task status, duration and reason', async (t) => {
  const report = `${work}/r2.json`
  const path = `${work}/json-${Date.now()}`
  await lab.run(
    [
      {
        name: 'j',
        hosts: 'h1:h2',
        tasks: async (h) => void (await h.do(file({ path: `${path}-${h.name}`, content: 'x' }))),
      },
    ],
    ['--json', report],
  )
  const data = JSON.parse(readFileSync(report, 'utf8'))
  t.equal(data.totals.changed, 2)
  t.equal(data.hosts.h1.changed, 1)
  t.equal(data.hosts.h1.tasks[0].status, 'changed')
  t.equal(data.hosts.h1.tasks[0].reason, 'file is missing')
  t.type(data.hosts.h1.tasks[0].durationMs, 'number')
  t.equal((statSync(report).mode & 0o777).toString(8).length, 3)
  await lab.run(
    [
      {
        name: 'j',
        hosts: 'h1:h2',
        tasks: async (h) => void (await h.do(file({ path: `${path}-${h.name}`, content: 'x' }))),
      },
    ],
    ['--json', report],
  )
  t.equal(JSON.parse(readFileSync(report, 'utf8')).totals.changed, 0, 'second run changes nothing')
})

t.test('one SSH connection per host serves the whole run', async (t) => {
  // Count sshd session processes' parents: each sshd accepted exactly one connection during this run.
  const counts: number[] = []
  const play: Play = {
    name: 'conn',
    hosts: 'h1',
    tasks: async (h) => {
      for (let i = 0; i < 20; i++) await h.do(command({ cmd: 'true', changedWhen: () => false }))
      counts.push(h.conn.commandCount)
    },
  }
  const before = readFileSync(`${lab.sshds[0]!.dir}/sshd.log`, 'utf8').split('Accepted publickey').length
  await lab.run([play, { ...play, name: 'conn again' }])
  const after = readFileSync(`${lab.sshds[0]!.dir}/sshd.log`, 'utf8').split('Accepted publickey').length
  t.equal(after - before, 1, 'one login for two plays and 40 tasks')
  t.ok(counts[1]! > counts[0]!, 'the same connection counted on across plays')
})

t.test('a --limit that matches no host is refused before any connection', async (t) => {
  const log = `${lab.sshds[0]!.dir}/sshd.log`
  const before = readFileSync(log, 'utf8').split('Accepted publickey').length
  let ran = false
  const result = await lab.run(
    [{ name: 'never', hosts: 'all', tasks: async () => void (ran = true) }],
    ['--limit', 'nosuchhost'],
  )
  t.equal(result.exitCode, 1)
  t.notOk(ran)
  t.equal(readFileSync(log, 'utf8').split('Accepted publickey').length, before, 'no SSH login happened')
})
