/**
 * The haproxy role on a scripted load balancer: a fresh host installs,
 * configures, starts and reloads HAProxy; a converged one changes nothing; a
 * drifted configuration is rewritten and reloaded (never restarted) after the
 * file passes `haproxy -c`; a file that fails the check is not reloaded; check
 * mode writes nothing.
 */
import t from 'tap'
import { haproxyRole } from '../../roles/haproxy/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'haproxy', hosts: 'haproxy', roles: [haproxyRole] }]
const CFG = '/etc/haproxy/haproxy.cfg'
const CONFIG_TASK = 'Ensure the HAProxy configuration is current'
const VALIDATE = 'Check the HAProxy configuration before reloading'
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
    'Deny service starts while HAProxy installs',
    'Ensure HAProxy is installed',
    'Allow service starts again after HAProxy is installed',
    CONFIG_TASK,
    'Ensure HAProxy is enabled and started',
    RELOAD,
  ])
  t.same(run.named('lb1', 'ok'), [VALIDATE], 'the check before the reload changes nothing')
  t.ok(lb1.packages.has('haproxy'))
  t.match(
    lb1.readFile(CFG),
    /listen postgres_rw[\s\S]*server db1 10\.0\.0\.11:5432/,
    'the primary port lists the Patroni members',
  )
  t.match(lb1.readFile(CFG), /redis/, 'the Redis endpoint is included when the inventory has Redis hosts')
  t.same(lb1.service('haproxy'), { enabled: true, active: true, restarts: 0, reloads: 1 })
  t.same(lb1.unmatched, [])
})

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
  lb1.writeFile(CFG, 'global\n  maxconn 1\n', { group: 'haproxy', mode: '0640' })
  const run = await lab.run(play)
  t.same(run.named('lb1', 'changed'), [CONFIG_TASK, RELOAD])
  t.same(run.named('lb1', 'ok').slice(-1), [VALIDATE])
  t.same(lb1.service('haproxy'), { enabled: true, active: true, restarts: 0, reloads: 2 })
})

t.test('a configuration that fails haproxy -c is not reloaded', async (t) => {
  const lab = await freshLab(false)
  t.teardown(() => lab.cleanup())
  lab.host('lb1').install('haproxy').setService('haproxy', { enabled: true, active: true })
  const run = await lab.run(play)
  t.notOk(run.success)
  t.equal(run.tasks('lb1').find((x) => x.name === VALIDATE)?.status, 'failed')
  t.notOk(run.tasks('lb1').some((x) => x.name === RELOAD))
  t.equal(lab.host('lb1').service('haproxy').reloads, 0)
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
  t.notOk(
    lab.host('lb1').commands.some((c) => /^haproxy -c/.test(c)),
    "the handler's check command is not run either",
  )
})
