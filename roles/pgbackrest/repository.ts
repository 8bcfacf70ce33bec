/**
 * pgbackrest_repository: the repository host's part, after every host has its configuration and
 * SSH link (roles/pgbackrest/index.ts): the stanza created once, `pgbackrest check` (archiving works
 * end to end), the backup and drill scripts, the full and differential backup timers, the restore
 * drill's timer, and a first full backup when the repository holds none.
 */
import type { HostRun, Plan, Role, Task } from '../../lib/types.ts'
import { sh } from '../../lib/connection/quote.ts'
import {
  command,
  defineTask,
  noChange,
  service,
  systemdUnit,
  template,
  verifyAfterChange,
} from '../../lib/tasks/index.ts'
import { renderTemplate } from '../../lib/template.ts'
import { pgbackrestRole, type PgbackrestVars } from './index.ts'
import { drillSections, replicaChecks } from './render.ts'
import { patroniApiCa } from '../tls.ts'
import { pgBinDir } from '../stack.ts'

/** Where node_exporter's textfile collector reads (Debian's default directory). */
export const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
export const BACKUP_SCRIPT = '/usr/local/sbin/hastack-pgbackrest-backup'
export const DRILL_SCRIPT = '/usr/local/sbin/hastack-pgbackrest-drill'
export const DRILL_CONFIG = '/etc/pgbackrest/drill.conf'
/** The timer that runs the restore drill on `pgbackrest_drill_schedule` (its service runs DRILL_SCRIPT). */
export const DRILL_TIMER = 'hastack-pgbackrest-drill.timer'
/** The table the restore drill writes canary rows into (database postgres) and looks for after a restore. */
export const CANARY_TABLE = 'hastack_backup_canary'
const BACKUP_TIMEOUT_S = 6 * 3600

type RepositoryHost = HostRun & { vars: PgbackrestVars }

const asPostgres = (stanza: string, ...args: string[]) => ['pgbackrest', `--stanza=${stanza}`, ...args]

/** The stanza's status as JSON, read as postgres: one command text, so a batch answers every task that asks it. */
const infoCommand = (stanza: string) => sh`runuser -u postgres -- pgbackrest ${`--stanza=${stanza}`} info --output=json`

/**
 * `pgbackrest check`: a WAL switch reaches the repository, and the stanza matches the cluster. Changes nothing.
 * When nothing changed in the run, reading the stanza's status (`pgbackrest info`: the repository holds the
 * stanza, a valid backup and archived WAL) in the batch is enough; the check, which forces a WAL switch and
 * waits for its archiving (seconds), runs after any change.
 */
function checkArchiving(h: RepositoryHost): Task {
  return verifyAfterChange(strictArchivingCheck(h), {
    command: infoCommand(h.vars.pgbackrest_stanza),
    judge: (r) => {
      const status = r.code === 0 ? stanzaStatus(r.stdout) : undefined
      return status ? `the stanza is sound (${status})` : undefined
    },
  })
}

/** "WAL a…b archived, N backups" when `info --output=json` shows the stanza ok with archived WAL; else undefined. */
export function stanzaStatus(infoJson: string): string | undefined {
  try {
    const [stanza] = JSON.parse(infoJson) as {
      status?: { code?: number }
      archive?: { min?: string; max?: string }[]
      backup?: unknown[]
    }[]
    const archive = stanza?.archive?.[0]
    if (stanza?.status?.code !== 0 || !archive?.max) return undefined
    return `WAL ${archive.min}…${archive.max} archived, ${stanza.backup?.length ?? 0} backups`
  } catch {
    return undefined
  }
}

function strictArchivingCheck(h: RepositoryHost): Task {
  return defineTask('Ensure pgBackRest check passes (WAL reaches the repository)', {}, async (ctx): Promise<Plan> => {
    if (ctx.check) return { change: false, skip: true, reason: 'check mode runs no pgbackrest check' }
    const r = await ctx.conn.run(asPostgres(h.vars.pgbackrest_stanza, 'check'), {
      user: 'postgres',
      timeoutMs: 180_000,
    })
    if (r.code !== 0) throw new Error(`pgbackrest check failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`)
    return noChange('archiving and the stanza are sound')
  })
}

/** A first full backup when the repository holds none, so the drill and a restore have one from the start. */
function firstBackup(h: RepositoryHost): Task {
  const info = infoCommand(h.vars.pgbackrest_stanza)
  return defineTask(
    'Ensure the repository holds a backup',
    { probes: [{ kind: 'run', command: info }] },
    async (ctx) => {
      const read = await ctx.conn.run(info)
      const backups = read.code === 0 ? (JSON.parse(read.stdout)[0]?.backup ?? []) : []
      if (backups.length > 0) return noChange(`${backups.length} backups`)
      return {
        change: true,
        reason: 'no backup yet',
        apply: async () => {
          const r = await ctx.conn.run([BACKUP_SCRIPT, 'full'], { timeoutMs: BACKUP_TIMEOUT_S * 1000 })
          if (r.code !== 0) throw new Error(`first full backup failed: ${(r.stderr || r.stdout).trim()}`)
          return { stdout: r.stdout }
        },
      }
    },
  )
}

export const pgbackrestRepositoryRole: Role<PgbackrestVars> = {
  name: 'pgbackrest_repository',
  description: 'The backup repository host: stanza, pgbackrest check, scheduled backups, the scheduled restore drill.',
  defaults: pgbackrestRole.defaults,
  schema: pgbackrestRole.schema,
  async tasks(h) {
    const v = h.vars
    const stanza = v.pgbackrest_stanza
    await h.doAll([
      template({
        src: 'pgbackrest/pgbackrest.conf.ejs',
        dest: DRILL_CONFIG,
        group: 'postgres',
        mode: '0640',
        vars: { sections: drillSections(h) },
        name: "Ensure the restore drill's pgBackRest configuration is current",
      }),
      command({
        cmd: asPostgres(stanza, 'stanza-create'),
        user: 'postgres',
        creates: `${v.pgbackrest_repo_path}/backup/${stanza}/backup.info`,
        timeoutMs: 300_000,
        name: 'Ensure the pgBackRest stanza exists',
      }),
      checkArchiving(h),
    ])
    const backup = {
      stanza,
      replicaChecks: replicaChecks(h),
      // The CA an https check verifies the members with ('': plain http; the script is Python, not JSON).
      caFile: patroniApiCa(h.vars) ?? '',
      metricsFile: `${TEXTFILE_DIR}/hastack_backup.prom`,
      timeoutSeconds: BACKUP_TIMEOUT_S,
    }
    const drill = {
      stanza,
      config: DRILL_CONFIG,
      dir: v.pgbackrest_drill_dir,
      port: v.pgbackrest_drill_port,
      binDir: pgBinDir(v.postgresql_version),
      canaryTable: CANARY_TABLE,
      metricsFile: `${TEXTFILE_DIR}/hastack_restore_drill.prom`,
    }
    const script = (src: string, dest: string, what: string) =>
      template({ src, dest, mode: '0755', vars: { backup, drill }, name: `Ensure the ${what} script is current` })
    await h.doAll([
      script('pgbackrest/backup.py.ejs', BACKUP_SCRIPT, 'backup'),
      script('pgbackrest/drill.py.ejs', DRILL_SCRIPT, 'restore drill'),
      systemdUnit({
        unit: 'hastack-pgbackrest-backup@.service',
        src: 'pgbackrest/backup@.service.ejs',
        name: 'Ensure the backup service unit is current',
      }),
    ])
    const timers = [
      { kind: 'full', schedule: v.pgbackrest_full_schedule },
      { kind: 'diff', schedule: v.pgbackrest_diff_schedule },
    ]
    for (const timer of timers) {
      const unit = `hastack-pgbackrest-${timer.kind}.timer`
      await h.doAll([
        systemdUnit({
          unit,
          content: renderTemplate('pgbackrest/backup.timer.ejs', h, { timer }),
          name: `Ensure the ${timer.kind} backup timer is current`,
        }),
        service({ service: unit, enabled: true, state: 'started', name: `Ensure ${unit} is scheduled` }),
      ])
    }
    await h.do(
      systemdUnit({
        unit: 'hastack-pgbackrest-drill.service',
        src: 'pgbackrest/drill.service.ejs',
        name: 'Ensure the restore drill service unit is current',
      }),
    )
    await h.do(
      systemdUnit({
        unit: DRILL_TIMER,
        src: 'pgbackrest/drill.timer.ejs',
        name: 'Ensure the restore drill timer is current',
      }),
    )
    await h.do(
      service({ service: DRILL_TIMER, enabled: true, state: 'started', name: `Ensure ${DRILL_TIMER} is scheduled` }),
    )
    await h.do(firstBackup(h))
  },
}
