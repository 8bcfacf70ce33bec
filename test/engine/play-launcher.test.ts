/**
 * bin/play.mjs against real hosts: the bundled ping playbook connects to two loopback sshd hosts, gathers their
 * facts and writes its --json report, as `node --import=tsx playbooks/ping.ts` does; and the report's count of
 * each host's round trips, which the site bench reads to say where a no-op's time goes.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { loopbackHosts } from './harness.ts'
import type { Play } from '../../lib/types.ts'

const REPO = resolve(import.meta.dirname, '../..')

t.test('the bundled ping playbook reaches every host and reports it ok', async (t) => {
  const lab = await loopbackHosts(2)
  t.teardown(() => lab.stop())
  const json = join(lab.dir, 'ping.json')
  const run = spawnSync(process.execPath, ['bin/play.mjs', 'playbooks/ping.ts', '-i', lab.inventory, '--json', json], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(run.status, 0, run.stderr)
  for (const host of lab.hosts) t.match(run.stdout, new RegExp(`${host}\\s+: ok=`), `${host} in the recap`)
  const report = JSON.parse(readFileSync(json, 'utf8'))
  t.same(Object.keys(report.hosts).sort(), [...lab.hosts].sort(), 'the report names both hosts')
  t.equal(report.totals.unreachable, 0)
  t.equal(report.totals.failed, 0)
  t.type(report.startupMs, 'number', 'the report times the start-up')
})

t.test("the report counts each host's round trips: two more queries, two more", async (t) => {
  const lab = await loopbackHosts(1)
  t.teardown(() => lab.stop())
  const querying = (count: number): Play => ({
    name: `query ${count} times`,
    hosts: 'all',
    tasks: async (h) => {
      for (let i = 0; i < count; i++) await h.query('true')
    },
  })
  const three = (await lab.run([querying(3)])).stats.get('h1')?.commands
  const five = (await lab.run([querying(5)])).stats.get('h1')?.commands
  t.type(three, 'number')
  t.equal(five! - three!, 2)
})
