/**
 * The common role on scripted hosts: a fresh host gets every setting, a
 * converged host changes nothing, a drifted file is the only change (and the
 * sysctl handler runs only for the kernel settings), check mode writes nothing.
 */
import t from 'tap'
import { commonRole } from '../../roles/common/index.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'common', hosts: 'db1', roles: [commonRole] }]
const SYSCTL = 'Ensure the kernel settings are current'
const HANDLER = 'Apply the sysctl settings'

/** A bare Debian host as the installer leaves it. */
async function freshLab(): Promise<ScriptedLab> {
  const lab = await scriptedLab(stackInventory())
  lab.host('db1').runningHostname = 'debian'
  lab.host('db1').writeFile('/etc/hostname', 'debian\n').writeFile('/etc/hosts', '127.0.0.1\tlocalhost\n')
  return lab
}

t.test('a fresh host changes every setting and applies the kernel settings once', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  t.same(run.named('db1', 'ok'), [], 'nothing was already right')
  t.same(run.named('db1', 'changed'), [
    'Ensure /etc/hostname names the host',
    'Ensure the running host name is the inventory name',
    'Ensure /etc/hosts names every host of the inventory',
    'Ensure the base packages are installed',
    'Ensure the time zone is Etc/UTC',
    'Ensure /etc/timezone names the time zone',
    SYSCTL,
    'Ensure the open-file limits are current',
    HANDLER,
  ])
  const db1 = lab.host('db1')
  t.equal(db1.runningHostname, 'db1')
  t.ok(db1.packages.has('ca-certificates'))
  t.match(db1.readFile('/etc/hosts'), /10\.0\.0\.31\tredis1/, '/etc/hosts names the peers')
  t.equal(db1.service('systemd-sysctl').restarts, 1)
  t.same(db1.unmatched, [], 'every command was one the role is expected to send')
})

t.test('a converged host changes nothing', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('db1').resetCalls()
  const again = await lab.run(play)
  t.equal(again.stats.get('db1')?.changed, 0)
  t.same(lab.host('db1').writes, [], 'no file written')
  t.same(lab.host('db1').mutations, [], 'no command changed the host')
})

t.test('a drifted file is the only change, with its handler when it has one', async (t) => {
  const drifts = [
    { what: 'kernel settings', path: '/etc/sysctl.d/60-hastack.conf', changed: [SYSCTL, HANDLER] },
    { what: 'host list', path: '/etc/hosts', changed: ['Ensure /etc/hosts names every host of the inventory'] },
    {
      what: 'open-file limits',
      path: '/etc/security/limits.d/60-hastack.conf',
      changed: ['Ensure the open-file limits are current'],
    },
  ]
  for (const drift of drifts) {
    const lab = await freshLab()
    await lab.run(play)
    lab.host('db1').writeFile(drift.path, 'edited by hand\n')
    const run = await lab.run(play)
    t.same(run.named('db1', 'changed'), drift.changed, `drifted ${drift.what}`)
    await lab.cleanup()
  }
})

t.test('a file with the right content but the wrong mode gets its mode back, nothing else', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('db1').writeFile('/etc/timezone', 'Etc/UTC\n', { mode: '0600' })
  const run = await lab.run(play)
  t.same(run.named('db1', 'changed'), ['Ensure /etc/timezone names the time zone'])
  t.match(run.tasks('db1').find((x) => x.status === 'changed')?.reason, /mode 0600 → 0644/)
})

t.test('check mode on a fresh host reports the changes and writes nothing', async (t) => {
  const lab = await freshLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.equal(run.stats.get('db1')?.changed, 9, 'eight tasks and the handler would change')
  const db1 = lab.host('db1')
  t.same(db1.writes, [], 'no put')
  t.same(db1.mutations, [], 'no apply command')
  t.same(db1.unmatched, [], 'every command sent was a known read')
  t.equal(db1.runningHostname, 'debian')
})
