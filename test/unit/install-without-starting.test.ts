/**
 * installWithoutStarting on scripted hosts: with its packages installed it reads their states and any
 * policy-rc.d in one round trip, removes hastack's deny-all policy an interrupted install left behind,
 * and leaves the host's own policy alone.
 */
import t from 'tap'
import type { Play } from '../../lib/types.ts'
import { POLICY_MARKER, POLICY_RC_D } from '../../lib/tasks/apt.ts'
import { installWithoutStarting } from '../../roles/common/apt.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'

const TASK = 'Ensure no package start policy is left behind'
const play: Play[] = [
  {
    name: 'install',
    hosts: 'all',
    tasks: async (h) => void (await installWithoutStarting(h, ['etcd-server'], 'etcd')),
  },
]

async function world(t: { teardown(fn: () => unknown): void }, policy?: string): Promise<ScriptedLab> {
  const lab = await scriptedLab({ all: { hosts: { a1: { address: '10.0.0.1' } }, vars: { ssh_user: 'root' } } })
  t.teardown(() => lab.cleanup())
  lab.host('a1').install('etcd-server')
  if (policy !== undefined) lab.host('a1').writeFile(POLICY_RC_D, policy)
  return lab
}

t.test("removes hastack's deny-all policy-rc.d left by an interrupted install", async (t) => {
  const lab = await world(t, `#!/bin/sh\n${POLICY_MARKER}\nexit 101\n`)
  const run = await lab.run(play)
  t.ok(run.success)
  t.same(run.named('a1', 'changed'), [TASK])
  t.equal(lab.host('a1').readFile(POLICY_RC_D), undefined, 'removed')
})

t.test("leaves the host's own policy-rc.d alone", async (t) => {
  const own = '#!/bin/sh\nexit 0\n'
  const lab = await world(t, own)
  const run = await lab.run(play)
  t.equal(run.tasks('a1').find((x) => x.name === TASK)?.reason, "the host's own policy-rc.d: left alone")
  t.equal(lab.host('a1').readFile(POLICY_RC_D), own)
})

t.test('with no policy-rc.d there is nothing to do, and no install', async (t) => {
  const lab = await world(t)
  const run = await lab.run(play)
  t.same(
    run.tasks('a1').map((x) => [x.name, x.status, x.reason]),
    [[TASK, 'ok', 'no policy-rc.d']],
  )
  t.notOk(
    lab.host('a1').commands.some((c) => c.startsWith('apt-get') || c.includes('apt-get install')),
    'no apt-get',
  )
})
