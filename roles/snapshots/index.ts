/**
 * snapshots: on the `backup_repo` group, systemd timers that take a Redis RDB (`redis-cli --rdb`
 * from a replica in sync, else the primary) and an etcd snapshot (`etcdctl snapshot save` from a
 * healthy member, as etcd's root user), each verified (`redis-check-rdb`, `etcdctl snapshot
 * status`), kept with a `.sha256` under `snapshots_dir` (the newest `snapshots_keep` of each kind),
 * and reported to node_exporter's textfile directory as `hastack_backup_last_success_timestamp_seconds`
 * and `hastack_backup_last_size_bytes` with `kind="redis"|"etcd"`. Credentials reach the script only
 * through a root-only EnvironmentFile (REDISCLI_AUTH, ETCDCTL_PASSWORD), never a command line. A
 * converge takes one snapshot of a kind only while none is kept yet, so a second run changes nothing.
 */
import type { CommandProbe, HostRun, Role, Task } from '../../lib/types.ts'
import { command, directory, packages, service, systemdUnit, template } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import { isActiveState } from '../../lib/facts/units.ts'
import { defaults, schema, type SnapshotsVars } from './vars.ts'
import {
  METRICS_DIR,
  SNAPSHOT_SCRIPT,
  envFile,
  extension,
  snapshotEnvView,
  snapshotKinds,
  unitName,
  type SnapshotKind,
} from './render.ts'

const LABEL: Record<SnapshotKind, string> = { redis: 'Redis', etcd: 'etcd' }
const CLIENT_PACKAGES: Record<SnapshotKind, string> = { redis: 'redis-tools', etcd: 'etcd-client' }

/** The timer file's check on the host: systemd parses its OnCalendar= before the file is put in place. */
const CALENDAR_CHECK = `systemd-analyze calendar "$(sed -n 's/^OnCalendar=//p' %s)" >/dev/null`

/** A kept snapshot of this kind exists (its `.sha256` is written last, so it marks a complete one). */
export function snapshotKept(dir: string, kind: SnapshotKind): CommandProbe {
  return { kind: 'entry', dir, pattern: `${kind}-*.${extension(kind)}.sha256` }
}

/** The tasks of one kind; `timerRunning`: its timer ran before this run (a new schedule then restarts it). */
function kindTasks(h: HostRun & { vars: SnapshotsVars }, kind: SnapshotKind, timerRunning: boolean): Task[] {
  const v = h.vars
  const unit = unitName(kind)
  const view = { kind, env_file: envFile(kind), metrics_dir: METRICS_DIR }
  const schedule = kind === 'redis' ? v.snapshots_redis_schedule : v.snapshots_etcd_schedule
  return [
    template({
      src: 'snapshots/snapshot.env.ejs',
      dest: envFile(kind),
      mode: '0600',
      vars: { kind, settings: snapshotEnvView(h, kind) },
      name: `Ensure the ${LABEL[kind]} snapshot settings are current`,
    }),
    systemdUnit({
      unit: `${unit}.service`,
      src: 'snapshots/snapshot.service.ejs',
      vars: view,
      name: `Ensure the ${LABEL[kind]} snapshot service is current`,
    }),
    systemdUnit({
      unit: `${unit}.timer`,
      src: 'snapshots/snapshot.timer.ejs',
      vars: { ...view, schedule },
      validate: CALENDAR_CHECK,
      // A running timer restarts on a new schedule; one not started yet simply starts with it below.
      notify: timerRunning ? `Restart the ${kind} snapshot timer` : undefined,
      name: `Ensure the ${LABEL[kind]} snapshot timer is current`,
    }),
    service({
      service: `${unit}.timer`,
      enabled: true,
      state: 'started',
      name: `Ensure the ${LABEL[kind]} snapshot timer is enabled and started`,
    }),
    command({
      cmd: sh`systemctl start ${`${unit}.service`}`,
      unless: snapshotKept(v.snapshots_dir, kind),
      timeoutMs: (v.snapshots_timeout_seconds + 120) * 1000,
      name: `Take a first ${LABEL[kind]} snapshot when none is kept`,
    }),
  ]
}

const restartTimer = (kind: SnapshotKind) => (h: HostRun) =>
  h.do(service({ service: `${unitName(kind)}.timer`, state: 'restarted', name: `Restart the ${kind} snapshot timer` }))

export const snapshotsRole: Role<SnapshotsVars> = {
  name: 'snapshots',
  description: 'Redis and etcd snapshots on the backup_repo group: timers, checksums, a bounded count, metrics.',
  defaults,
  schema,
  handlers: {
    'Restart the redis snapshot timer': restartTimer('redis'),
    'Restart the etcd snapshot timer': restartTimer('etcd'),
  },
  async tasks(h) {
    const v = h.vars
    const kinds = snapshotKinds(h)
    if (kinds.length === 0) {
      h.log('no redis group and no etcd members in the inventory: no snapshot to take')
      return
    }
    // The timers' states first (no task below starts or stops a timer before its own kind's tasks), then one
    // run of tasks in the order they were always run: their probes answered in one round trip.
    const timers = await h.queryAll(kinds.map((kind) => ({ kind: 'unit', name: `${unitName(kind)}.timer` }) as const))
    await h.doAll([
      packages({ install: kinds.map((k) => CLIENT_PACKAGES[k]), name: 'Ensure the snapshot clients are installed' }),
      directory({ path: v.snapshots_dir, mode: '0700', name: 'Ensure the snapshot directory exists' }),
      // The same directory, owner and mode as Debian's prometheus-node-exporter package ships.
      directory({ path: METRICS_DIR, mode: '0755', name: "Ensure node_exporter's textfile directory exists" }),
      directory({ path: '/etc/hastack', mode: '0755', name: 'Ensure /etc/hastack exists' }),
      template({
        src: 'snapshots/hastack-snapshot.ejs',
        dest: SNAPSHOT_SCRIPT,
        mode: '0755',
        name: 'Ensure the hastack-snapshot script is current',
      }),
      ...kinds.flatMap((kind, i) => kindTasks(h, kind, isActiveState(timers[i]!.stdout))),
    ])
  },
}
