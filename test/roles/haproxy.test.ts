/**
 * The haproxy role on a scripted load balancer: a fresh host installs HAProxy
 * without starting it, configures, starts and reloads it; a converged one
 * changes nothing; a drifted configuration is rewritten and reloaded (never
 * restarted) once the new file passes `haproxy -c` (the put's validate, on the
 * temp file); a file that fails the check never replaces the live one and is
 * not reloaded; check mode writes nothing; app hosts are published on the vote and result ports
 * with /healthz checks and without retried POSTs.
 */
import t from 'tap'
import { haproxyRole } from '../../roles/haproxy/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'haproxy', hosts: 'haproxy', roles: [haproxyRole] }]
const CFG = '/etc/haproxy/haproxy.cfg'
const CONFIG_TASK = 'Ensure the HAProxy configuration is current'
/** The put's validator, run on the new content's temp file next to the live one. */
const VALIDATE = 'haproxy -c -f /etc/haproxy/.haproxy.cfg.hastack-scripted'
const RELOAD = 'Reload HAProxy'

/** A load balancer whose `haproxy -c` accepts the file unless told otherwise. */
async function freshLab(configValid = true): Promise<ScriptedLab> {
  const lab = await scriptedLab(stackInventory())
  lab.host('lb1').on(/^haproxy -c /, { code: configValid ? 0 : 1, stderr: configValid ? '' : '[ALERT] parsing error' })
  return lab
}

t.test('a fresh host installs, configures and starts HAProxy, then reloads the checked file', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const lb1 = lab.host('lb1')
  t.same(run.named('lb1', 'changed'), [
    'Ensure HAProxy is installed',
    CONFIG_TASK,
    'Ensure HAProxy is enabled and started',
    RELOAD,
  ])
  t.ok(lb1.packages.has('haproxy'))
  t.ok(
    lb1.mutations.includes('apt-get install haproxy (service starts denied)'),
    'installed with service starts denied',
  )
  t.equal(lb1.readFile('/usr/sbin/policy-rc.d'), undefined, 'no deny-all start policy left behind')
  t.same(lb1.validations, [VALIDATE], 'the new file is checked once, before it replaces anything')
  t.notOk(
    [...lb1.fs.keys()].some((p) => p.includes('.hastack-')),
    'no temp file left behind',
  )
  t.match(
    lb1.readFile(CFG),
    /listen postgres_rw[\s\S]*server db1 10\.0\.0\.11:5432/,
    'the primary port lists the Patroni members',
  )
  t.match(lb1.readFile(CFG), /redis/, 'the Redis endpoint is included when the inventory has Redis hosts')
  t.same(lb1.service('haproxy'), { enabled: true, active: true, restarts: 0, reloads: 1 })
  t.same(lb1.unmatched, [])
})

t.test(
  'the read-write backend routes to a new primary on its first passed check, the read-only one on two',
  async (t) => {
    const lab = await freshLab()
    t.teardown(() => lab.cleanup())
    t.ok((await lab.run(play)).success)
    const cfg = lab.host('lb1').readFile(CFG) ?? ''
    const section = (name: string) => cfg.split(`listen ${name}\n`)[1]?.split('\n\n')[0] ?? ''
    const servers = (name: string) =>
      section(name)
        .split('\n')
        .filter((l) => l.trim().startsWith('server '))
    t.equal(servers('postgres_rw').length, 3, 'every member is a read-write server')
    for (const line of servers('postgres_rw')) t.match(line, / fall 2 rise 1 /, 'read-write: rise 1')
    t.equal(servers('postgres_ro').length, 3, 'every member is a read-only server')
    for (const line of servers('postgres_ro')) t.match(line, / fall 2 rise 2 /, 'read-only: haproxy_check_rise')
  },
)

t.test('a converged host changes nothing and is not reloaded', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('lb1').resetCalls()
  const run = await lab.run(play)
  t.equal(run.stats.get('lb1')?.changed, 0)
  t.notOk(run.tasks('lb1').some((x) => x.name === RELOAD))
  t.same(lab.host('lb1').mutations, [])
  t.equal(lab.host('lb1').service('haproxy').reloads, 1, 'still the one reload of the first run')
})

t.test('a drifted configuration is rewritten, checked and reloaded, never restarted', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const lb1 = lab.host('lb1')
  const converged = lb1.readFile(CFG)
  lb1.writeFile(CFG, 'global\n  maxconn 1\n', { group: 'haproxy', mode: '0640' })
  lb1.resetCalls()
  const run = await lab.run(play)
  t.same(run.named('lb1', 'changed'), [CONFIG_TASK, RELOAD])
  t.same(lb1.validations, [VALIDATE])
  t.equal(lb1.readFile(CFG), converged, 'the checked file replaced the drifted one')
  t.same(lb1.service('haproxy'), { enabled: true, active: true, restarts: 0, reloads: 2 })
})

t.test('a configuration that fails haproxy -c is not reloaded', async (t) => {
  const lab = await freshLab(false)
  t.teardown(() => lab.cleanup())
  const lb1 = lab.host('lb1')
  lb1.install('haproxy').setService('haproxy', { enabled: true, active: true })
  lb1.writeFile(CFG, 'global\n  maxconn 1\n', { group: 'haproxy', mode: '0640' })
  const run = await lab.run(play)
  t.notOk(run.success)
  const config = run.tasks('lb1').find((x) => x.name === CONFIG_TASK)
  t.equal(config?.status, 'failed')
  t.match(config?.reason, /parsing error[\s\S]*validation of the new \/etc\/haproxy\/haproxy\.cfg failed/)
  t.same(lb1.validations, [VALIDATE])
  t.equal(lb1.readFile(CFG), 'global\n  maxconn 1\n', 'the live file is left as it was')
  t.notOk(
    [...lb1.fs.keys()].some((p) => p.includes('.hastack-')),
    'no temp file left behind',
  )
  t.notOk(run.tasks('lb1').some((x) => x.name === RELOAD))
  t.equal(lb1.service('haproxy').reloads, 0)
})

t.test('check mode on a fresh host reports the plan and writes nothing', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('lb1', 'changed').includes(CONFIG_TASK))
  t.same(lab.host('lb1').writes, [])
  t.same(lab.host('lb1').mutations, [])
  t.same(lab.host('lb1').unmatched, [], 'every command sent was a known read')
  t.same(lab.host('lb1').validations, [], 'nothing is put, so nothing is checked either')
})

t.test('app hosts are published on the vote and result ports, checked on /healthz, a POST never retried', async (t) => {
  const doc = stackInventory() as { all: { children: Record<string, unknown> } }
  doc.all.children.app = { hosts: { app1: { address: '10.0.0.51' }, app2: { address: '10.0.0.52' } } }
  const lab = await scriptedLab(doc)
  t.teardown(() => lab.cleanup())
  lab.host('lb1').on(/^haproxy -c /, { code: 0 })
  const run = await lab.run(play)
  t.ok(run.success)
  const cfg = lab.host('lb1').readFile(CFG) ?? ''
  t.match(cfg, /frontend app_vote\n {4}mode http\n {4}bind 10\.0\.0\.20:80\n/, 'vote on port 80')
  t.match(cfg, /frontend app_result\n {4}mode http\n {4}bind 10\.0\.0\.20:8088\n/, 'results on port 8088')
  const backend = (name: string) => cfg.slice(cfg.indexOf(`\nbackend ${name}\n`) + 1).split('\n\n')[0]!
  for (const [name, port] of [
    ['app_vote', 8080],
    ['app_result', 8081],
  ] as const) {
    const lines = backend(name)
      .split('\n')
      .map((l) => l.trim())
    for (const line of [
      'http-check send meth GET uri /healthz',
      'option redispatch 1',
      'http-request disable-l7-retry unless METH_GET',
      `server app1 10.0.0.51:${port} check inter 1000ms fall 2 rise 2`,
      `server app2 10.0.0.52:${port} check inter 1000ms fall 2 rise 2`,
    ])
      t.ok(lines.includes(line), `${name}: ${line}`)
  }
})

t.test('an inventory without app hosts has no app section', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  t.notMatch(lab.host('lb1').readFile(CFG), /app_vote|app_result/)
})
