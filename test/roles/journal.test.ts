/**
 * The central logs on scripted hosts: the logging host gets systemd-journal-remote on its
 * cluster address only, over HTTP, with a timer that vacuums the store to its bound; every host
 * gets systemd-journal-upload pointed at it, retrying without a start limit. A converged stack
 * changes nothing; a new bound rewrites the vacuum without restarting the receiver; a new port
 * moves the socket (a restart of the receiver) and every uploader's URL (a restart of each);
 * check mode writes nothing; a second logging host is refused.
 */
import t from 'tap'
import {
  journalRemoteRole,
  REMOTE_JOURNAL_DIR,
  validateJournalRemote,
  VACUUM_UNIT,
} from '../../roles/journal_remote/index.ts'
import { journalUploadRole, UPLOAD_CONF } from '../../roles/journal_upload/index.ts'
import { loggingPlays } from '../../playbooks/plays/logging.ts'
import { monitoringWorld } from './monitoring-world.ts'
import { stackInventory } from './stack.ts'

const STORE = 'log1'
const STORE_ADDRESS = '10.0.0.50'
const SOCKET_DROP_IN = '/etc/systemd/system/systemd-journal-remote.socket.d/hastack.conf'
const SERVICE_DROP_IN = '/etc/systemd/system/systemd-journal-remote.service.d/hastack.conf'
const UPLOAD_DROP_IN = '/etc/systemd/system/systemd-journal-upload.service.d/hastack.conf'
const VACUUM_SERVICE = `/etc/systemd/system/${VACUUM_UNIT}.service`

/** The stack inventory with a logging host of its own; `vars` apply to every host. */
function loggingInventory(vars: Record<string, unknown> = {}): Record<string, unknown> {
  const doc = stackInventory(vars) as { all: { children: Record<string, unknown> } }
  doc.all.children.logging = { hosts: { [STORE]: { address: STORE_ADDRESS } } }
  return doc
}

t.test('the store listens on its cluster address over HTTP, bounded; every host uploads to it', async (t) => {
  const { lab } = await monitoringWorld(loggingInventory())
  t.teardown(() => lab.cleanup())
  const run = await lab.run(loggingPlays)
  t.ok(run.success)
  const store = lab.host(STORE)
  t.match(store.readFile(SOCKET_DROP_IN), `[Socket]\nListenStream=\nListenStream=${STORE_ADDRESS}:19532\n`)
  t.match(store.readFile(SERVICE_DROP_IN), `--listen-http=-3 --output=${REMOTE_JOURNAL_DIR}/`)
  t.match(store.readFile(VACUUM_SERVICE), `--directory=${REMOTE_JOURNAL_DIR} --vacuum-size=1G`)
  t.match(store.service(`${VACUUM_UNIT}.timer`), { enabled: true, active: true })
  t.match(store.service('systemd-journal-remote.socket'), { enabled: true, active: true })
  t.match(store.service('systemd-journal-remote'), { active: true })
  t.equal(run.tasks(STORE).find((x) => x.name === 'Wait for journal-remote to listen')?.status, 'ok')
  for (const name of lab.inventory.hosts.keys()) {
    const host = lab.host(name)
    t.equal(host.readFile(UPLOAD_CONF), `# Managed by hastack.\n[Upload]\nURL=http://${STORE_ADDRESS}:19532\n`, name)
    t.match(host.readFile(UPLOAD_DROP_IN), 'StartLimitIntervalSec=0')
    t.match(host.service('systemd-journal-upload'), { enabled: true, active: true })
    t.ok(host.packages.has('systemd-journal-remote'))
    t.same(host.unmatched, [], `${name}: every command was known`)
  }
})

t.test('a converged stack changes nothing', async (t) => {
  const { lab } = await monitoringWorld(loggingInventory())
  t.teardown(() => lab.cleanup())
  await lab.run(loggingPlays)
  for (const name of lab.inventory.hosts.keys()) lab.host(name).resetCalls()
  const run = await lab.run(loggingPlays)
  t.ok(run.success)
  for (const name of lab.inventory.hosts.keys()) {
    t.equal(run.stats.get(name)?.changed, 0, name)
    t.same(lab.host(name).mutations, [])
  }
})

t.test('a new bound rewrites the vacuum and restarts no receiver', async (t) => {
  const { lab } = await monitoringWorld(loggingInventory())
  t.teardown(() => lab.cleanup())
  await lab.run(loggingPlays)
  const store = lab.host(STORE)
  const before = store.service('systemd-journal-remote').restarts
  await lab.reconfigure(loggingInventory({ journal_remote_max_use: '256M' }))
  const run = await lab.run(loggingPlays)
  t.same(run.named(STORE, 'changed'), ['Ensure the store is vacuumed to its bound'])
  t.match(store.readFile(VACUUM_SERVICE), '--vacuum-size=256M')
  t.equal(store.service('systemd-journal-remote').restarts, before)
})

t.test('a new port moves the socket (a receiver restart) and every uploader (a restart each)', async (t) => {
  const { lab } = await monitoringWorld(loggingInventory())
  t.teardown(() => lab.cleanup())
  await lab.run(loggingPlays)
  const socketRestarts = lab.host(STORE).service('systemd-journal-remote.socket').restarts
  const uploads = new Map(
    [...lab.inventory.hosts.keys()].map((n) => [n, lab.host(n).service('systemd-journal-upload')]),
  )
  const restarts = new Map([...uploads].map(([n, s]) => [n, s.restarts]))
  await lab.reconfigure(loggingInventory({ journal_remote_port: 19600 }))
  const run = await lab.run(loggingPlays)
  t.ok(run.success)
  const store = lab.host(STORE)
  t.match(store.readFile(SOCKET_DROP_IN), `ListenStream=${STORE_ADDRESS}:19600`)
  t.ok(run.named(STORE, 'changed').includes('Restart journal-remote on its socket'))
  t.match(store.service('systemd-journal-remote.socket'), { active: true, restarts: socketRestarts + 1 })
  for (const [name, before] of restarts) {
    t.match(lab.host(name).readFile(UPLOAD_CONF), `URL=http://${STORE_ADDRESS}:19600`)
    t.equal(lab.host(name).service('systemd-journal-upload').restarts, before + 1, `${name} restarted its upload`)
  }
})

t.test('check mode on fresh hosts reports the plan and writes nothing', async (t) => {
  const { lab } = await monitoringWorld(loggingInventory())
  t.teardown(() => lab.cleanup())
  const run = await lab.run(loggingPlays, { check: true })
  t.ok(run.success)
  t.ok(run.named(STORE, 'changed').includes('Ensure journal-remote listens on the cluster address only'))
  for (const name of lab.inventory.hosts.keys()) {
    t.same(lab.host(name).writes, [], name)
    t.same(lab.host(name).mutations, [])
  }
})

t.test('an inventory with two logging hosts is refused: one central store', async (t) => {
  const two = { groups: new Map([['logging', {}]]), groupHosts: () => ['log1', 'log2'] } as never
  t.same(validateJournalRemote(two), ['group logging has 2 hosts (log1, log2): one central log store is supported'])
  const one = { groups: new Map([['logging', {}]]), groupHosts: () => ['log1'] } as never
  t.same(validateJournalRemote(one), [])
  t.equal(journalUploadRole.name, 'journal_upload')
  t.equal(journalRemoteRole.validate, validateJournalRemote)
})
