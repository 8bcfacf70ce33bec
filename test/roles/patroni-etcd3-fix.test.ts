/**
 * The patroni role's carried fix of Patroni 3.0.2's etcd3 leader key on three scripted members: Debian's
 * etcd3.py is patched (compiled first, written atomically) before Patroni first starts; a patched file is
 * left as it is; any other file (a newer package) is left alone with the reason; a running member whose
 * package put Debian's file back is patched again and restarted through the role's one-at-a-time restart.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { patroniRole } from '../../roles/patroni/index.ts'
import { ETCD3_MODULE, PATCHED_ETCD3_SHA256 } from '../../roles/patroni/etcd3-fix.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { DEBIAN_ETCD3, PatroniCluster } from './patroni-world.ts'
import { stackInventory } from './stack.ts'

const MEMBERS = ['db1', 'db2', 'db3']
const play = [{ name: 'patroni', hosts: 'postgres', roles: [patroniRole] }]
const FIX = "Ensure Patroni's etcd3 module carries upstream's leader-key fix"

async function world(): Promise<{ lab: ScriptedLab; cluster: PatroniCluster }> {
  const lab = await scriptedLab(stackInventory({}))
  return { lab, cluster: new PatroniCluster(lab) }
}

const sha256 = (text: string | undefined) =>
  createHash('sha256')
    .update(text ?? '')
    .digest('hex')
const fixOutcome = (run: Awaited<ReturnType<ScriptedLab['run']>>, member: string) =>
  run.tasks(member).find((x) => x.name === FIX)

t.test(
  "a fresh member's etcd3.py is patched, compiled before it replaces the file, before Patroni starts",
  async (t) => {
    const { lab } = await world()
    t.teardown(() => lab.cleanup())
    const run = await lab.run(play)
    t.ok(run.success)
    for (const m of MEMBERS) {
      const host = lab.host(m)
      t.equal(fixOutcome(run, m)?.status, 'changed', `${m}: patched`)
      t.equal(sha256(host.readFile(ETCD3_MODULE)), PATCHED_ETCD3_SHA256, `${m}: the known patched file`)
      const put = host.calls.find((c) => c.kind === 'put' && c.target === ETCD3_MODULE)
      const compiled = host.calls.find((c) => c.kind === 'validate' && c.target.startsWith('python3 -c'))
      const started = host.calls.find((c) => /systemctl start patroni\b/.test(c.target))
      t.ok(put && compiled && started, `${m}: written with a compile check, and Patroni started`)
      t.ok(compiled!.seq < started!.seq && put!.seq < started!.seq, `${m}: patched before Patroni's first start`)
      t.equal(host.service('patroni').restarts, 0, `${m}: a fresh member is not restarted`)
      t.same(host.unmatched, [], `${m}: only expected commands`)
    }
  },
)

t.test('a patched member changes nothing on the next run', async (t) => {
  const { lab } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  for (const m of MEMBERS) lab.host(m).resetCalls()
  const run = await lab.run(play)
  for (const m of MEMBERS) {
    t.equal(fixOutcome(run, m)?.status, 'ok', `${m}: ok`)
    t.equal(fixOutcome(run, m)?.reason, 'already patched', `${m}: says why`)
    t.same(lab.host(m).writes, [], `${m}: nothing written`)
  }
})

t.test("an etcd3.py that is not Debian's 3.0.2 one is left alone with the reason", async (t) => {
  const { lab } = await world()
  t.teardown(() => lab.cleanup())
  const newer = DEBIAN_ETCD3.replace('def _update_leader(self):', 'def _update_leader(self, leader):')
  for (const m of MEMBERS) lab.host(m).onInstall('patroni', (c) => void c.writeFile(ETCD3_MODULE, newer))
  const run = await lab.run(play)
  t.ok(run.success, 'Patroni still converges')
  for (const m of MEMBERS) {
    t.equal(fixOutcome(run, m)?.status, 'ok', `${m}: no change`)
    t.match(fixOutcome(run, m)?.reason, `left alone: sha256 ${sha256(newer)} is not Debian's Patroni 3.0.2 etcd3.py`)
    t.equal(lab.host(m).readFile(ETCD3_MODULE), newer, `${m}: the file is as the package left it`)
  }
})

t.test(
  "a running member whose package put Debian's file back is patched again and restarted one at a time",
  async (t) => {
    const { lab } = await world()
    t.teardown(() => lab.cleanup())
    await lab.run(play)
    for (const m of ['db2', 'db3']) lab.host(m).writeFile(ETCD3_MODULE, DEBIAN_ETCD3)
    const run = await lab.run(play)
    t.ok(run.success)
    for (const m of ['db2', 'db3']) {
      t.same(run.named(m, 'changed'), [FIX, 'Restart Patroni'], `${m}: patched, then restarted`)
      t.equal(lab.host(m).service('patroni').restarts, 1, `${m}: one restart`)
      t.equal(sha256(lab.host(m).readFile(ETCD3_MODULE)), PATCHED_ETCD3_SHA256)
    }
    t.equal(run.stats.get('db1')?.changed, 0, 'db1 (already patched) is not touched')
    t.equal(lab.host('db1').service('patroni').restarts, 0)
  },
)
