/**
 * The snapshots role on a scripted backup host (mon1) beside the stack's etcd and Redis hosts: a
 * fresh host gets the clients, the script, a root-only settings file per kind holding the credentials
 * (never a command line), a service and a timer per kind, and one first snapshot of each; a second
 * run changes nothing; a kind whose snapshots are gone is taken again, the other is not; the
 * schedule and count reach the units; an inventory without Redis snapshots only etcd; a bad
 * schedule is refused before any connection, and one the host's systemd rejects leaves no timer;
 * check mode writes nothing and takes no snapshot.
 */
import t from 'tap'
import { snapshotsRole } from '../../roles/snapshots/index.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'snapshots', hosts: 'backup_repo', roles: [snapshotsRole] }]
const DIR = '/var/backups/hastack'
const REDIS_ENV = '/etc/hastack/snapshot-redis.env'
const ETCD_ENV = '/etc/hastack/snapshot-etcd.env'
const UNITS = '/etc/systemd/system'
const FIRST_REDIS = 'Take a first Redis snapshot when none is kept'
const FIRST_ETCD = 'Take a first etcd snapshot when none is kept'

/** The stack inventory with a backup host of its own; `vars` apply to every host. */
function backupInventory(vars: Record<string, unknown> = {}, withRedis = true): Record<string, unknown> {
  const doc = stackInventory(vars) as { all: { children: Record<string, unknown> } }
  doc.all.children.backup_repo = { hosts: { mon1: { address: '10.0.0.40' } } }
  if (!withRedis) {
    delete doc.all.children.redis
    delete doc.all.children.sentinel
  }
  return doc
}

/**
 * The backup host's answers: the find that looks for a kept snapshot, `systemctl start` of a
 * snapshot service (it keeps one snapshot of its kind), and systemd-analyze judging a timer file.
 */
function backupHost(lab: ScriptedLab, calendarOk = true): ScriptedConnection {
  const mon1 = lab.host('mon1')
  mon1.on(/^test -n "\$\(find /, (command, _o, c) => {
    const [, dir = '', pattern = ''] = /find (\S+) -maxdepth 1 -name '(\S+)'/.exec(command)!
    const re = new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace('*', '.*')}$`)
    const kept = [...c.fs.keys()].some((p) => p.startsWith(`${dir}/`) && re.test(p.slice(dir.length + 1)))
    return { code: kept ? 0 : 1 }
  })
  mon1.on(/^systemctl start hastack-snapshot-(redis|etcd)\.service$/, (command, _o, c) => {
    const kind = /snapshot-(\w+)\./.exec(command)![1]!
    const name = `${kind}-20261130T052200Z.${kind === 'redis' ? 'rdb' : 'db'}`
    c.writeFile(`${DIR}/${name}`, 'snapshot', { mode: '0600' })
    c.writeFile(`${DIR}/${name}.sha256`, `0123  ${name}\n`, { mode: '0600' })
    c.mutated(`snapshot ${kind}`)
    return { code: 0 }
  })
  mon1.on(/^systemd-analyze calendar /, () =>
    calendarOk ? { code: 0 } : { code: 1, stderr: 'Failed to parse calendar specification\n' },
  )
  return mon1
}

async function world(doc = backupInventory(), calendarOk = true) {
  const lab = await scriptedLab(doc)
  return { lab, mon1: backupHost(lab, calendarOk) }
}

t.test('a fresh backup host gets timers, root-only credentials and one first snapshot of each kind', async (t) => {
  const { lab, mon1 } = await world()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success, run.lines.join('\n'))
  t.ok(mon1.mutations.some((m) => m.startsWith('apt-get install redis-tools etcd-client')))
  t.match(mon1.fs.get(DIR), { type: 'directory', mode: '0700', owner: 'root' })
  t.match(mon1.fs.get('/usr/local/sbin/hastack-snapshot'), { mode: '0755' })
  const vars = lab.inventory.hosts.get('mon1')!.vars
  const redisEnv = mon1.readFile(REDIS_ENV) ?? ''
  t.match(mon1.fs.get(REDIS_ENV), { mode: '0600', owner: 'root' })
  t.ok(redisEnv.includes(`REDISCLI_AUTH="${String(vars.redis_password)}"`), 'the Redis password, quoted')
  t.match(redisEnv, 'REDIS_SOURCES="10.0.0.31:6379 10.0.0.32:6379 10.0.0.33:6379"')
  t.match(redisEnv, 'SNAPSHOT_KEEP="7"')
  const etcdEnv = mon1.readFile(ETCD_ENV) ?? ''
  t.match(mon1.fs.get(ETCD_ENV), { mode: '0600', owner: 'root' })
  t.match(etcdEnv, 'ETCD_SOURCES="http://10.0.0.11:2379 http://10.0.0.12:2379 http://10.0.0.13:2379"')
  t.ok(etcdEnv.includes('ETCDCTL_USER="root"'))
  t.ok(etcdEnv.includes(`ETCDCTL_PASSWORD="${String(vars.etcd_root_password)}"`), "etcd root's password")
  for (const kind of ['redis', 'etcd']) {
    const service = mon1.readFile(`${UNITS}/hastack-snapshot-${kind}.service`) ?? ''
    t.match(service, `EnvironmentFile=/etc/hastack/snapshot-${kind}.env`)
    t.match(service, `ExecStart=/usr/local/sbin/hastack-snapshot ${kind}\n`)
    t.match(service, 'ReadWritePaths=/var/backups/hastack /var/lib/prometheus/node-exporter')
    t.ok(mon1.service(`hastack-snapshot-${kind}.timer`).active, `the ${kind} timer runs`)
    t.ok(mon1.service(`hastack-snapshot-${kind}.timer`).enabled)
    t.ok(mon1.mutations.includes(`snapshot ${kind}`), `a first ${kind} snapshot`)
  }
  t.match(mon1.readFile(`${UNITS}/hastack-snapshot-redis.timer`), 'OnCalendar=*-*-* 02:30:00\n')
  t.equal(mon1.validations.filter((c) => c.startsWith('systemd-analyze calendar')).length, 2, 'both timers checked')
  const secrets = [vars.redis_password, vars.etcd_root_password].map(String)
  t.notOk(
    mon1.commands.some((c) => secrets.some((s) => c.includes(s))),
    'no password on any command line',
  )
  t.same(mon1.unmatched, [])
})

t.test('a converged backup host changes nothing and takes no snapshot', async (t) => {
  const { lab, mon1 } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  mon1.resetCalls()
  const run = await lab.run(play)
  t.ok(run.success)
  t.equal(run.stats.get('mon1')?.changed, 0)
  t.same(mon1.mutations, [])
  t.same(mon1.writes, [])
})

t.test('a kind whose snapshots are gone is taken again at converge, the other is not', async (t) => {
  const { lab, mon1 } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  for (const path of [...mon1.fs.keys()]) if (path.startsWith(`${DIR}/redis-`)) mon1.fs.delete(path)
  mon1.resetCalls()
  const run = await lab.run(play)
  t.same(run.named('mon1', 'changed'), [FIRST_REDIS])
  t.same(mon1.mutations, ['snapshot redis'])
})

t.test('the schedule, count, directory and timeout from the inventory reach the units', async (t) => {
  const vars = {
    snapshots_redis_schedule: 'hourly',
    snapshots_etcd_schedule: 'Mon..Fri 01:00',
    snapshots_keep: 3,
    snapshots_dir: '/srv/snapshots',
    snapshots_timeout_seconds: 600,
  }
  const { lab, mon1 } = await world(backupInventory(vars))
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  t.match(mon1.readFile(`${UNITS}/hastack-snapshot-redis.timer`), 'OnCalendar=hourly\n')
  t.match(mon1.readFile(`${UNITS}/hastack-snapshot-etcd.timer`), 'OnCalendar=Mon..Fri 01:00\n')
  t.match(mon1.readFile(REDIS_ENV), 'SNAPSHOT_KEEP="3"')
  t.match(mon1.readFile(REDIS_ENV), 'SNAPSHOT_DIR="/srv/snapshots"')
  t.match(mon1.readFile(`${UNITS}/hastack-snapshot-etcd.service`), 'TimeoutStartSec=660\n')
  t.match(mon1.fs.get('/srv/snapshots'), { type: 'directory', mode: '0700' })
})

t.test('a changed schedule rewrites the timer and restarts it', async (t) => {
  const { lab, mon1 } = await world()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  await lab.reconfigure(backupInventory({ snapshots_etcd_schedule: 'hourly' }))
  mon1.resetCalls()
  const run = await lab.run(play)
  t.same(run.named('mon1', 'changed'), ['Ensure the etcd snapshot timer is current', 'Restart the etcd snapshot timer'])
  t.equal(mon1.service('hastack-snapshot-etcd.timer').restarts, 1)
  t.equal(mon1.service('hastack-snapshot-redis.timer').restarts, 0)
})

t.test('an inventory without Redis takes only etcd snapshots', async (t) => {
  const { lab, mon1 } = await world(backupInventory({}, false))
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  t.ok(mon1.mutations.some((m) => m.startsWith('apt-get install etcd-client')))
  t.notOk(mon1.mutations.some((m) => m.includes('redis')))
  t.equal(mon1.readFile(REDIS_ENV), undefined)
  t.notOk(run.tasks('mon1').some((x) => x.name === FIRST_REDIS))
  t.ok(run.named('mon1', 'changed').includes(FIRST_ETCD))
})

t.test('a schedule that is no calendar event is refused before any connection', async (t) => {
  await t.rejects(
    scriptedLab(backupInventory({ snapshots_redis_schedule: 'daily; rm -rf /' })),
    /snapshots_redis_schedule.*systemd calendar event/s,
  )
})

t.test("a schedule the host's systemd rejects leaves no timer and fails the host", async (t) => {
  const { lab, mon1 } = await world(backupInventory(), false)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.notOk(run.success)
  t.equal(mon1.readFile(`${UNITS}/hastack-snapshot-redis.timer`), undefined)
  t.notOk(
    mon1.mutations.some((m) => m.startsWith('snapshot')),
    'no snapshot taken',
  )
})

t.test('check mode on a fresh backup host reports the plan and writes nothing', async (t) => {
  const { lab, mon1 } = await world()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('mon1', 'changed').includes(FIRST_REDIS))
  t.same(mon1.writes, [])
  t.same(mon1.mutations, [])
  t.same(mon1.unmatched, [], 'every command sent was a known read')
})
