/**
 * The restore of one stopped member in place (playbooks/restore.ts): pgBackRest restores its data
 * directory (`--delta`) with the recovery settings of the target; PostgreSQL, started apart from
 * Patroni (Unix socket only, hot_standby off), replays the archived WAL to the target and promotes
 * (a new timeline). Its end is read from `pg_control` ("in production"), not from a connection: with
 * hot_standby off none is accepted before the promotion. A PostgreSQL that stops instead (a target
 * recovery never reached) fails the step with the end of its log. Then the recovery settings are
 * dropped, a checkpoint is taken and PostgreSQL is stopped cleanly, ready for Patroni.
 */
import { command, waitUntil, type HostRun } from '../../lib/index.ts'
import { describeTarget, restoreOptions, type RestoreTarget } from '../../roles/pgbackrest/pitr-target.ts'
import { psqlArgv } from '../../roles/patroni/users.ts'
import { pgBinDir } from '../../roles/stack.ts'

/** The log of the recovering PostgreSQL, on the restored member. */
export const RECOVERY_LOG = '/var/log/pgbackrest/hastack-restore-postgresql.log'
/** Every setting pgBackRest's restore may write into postgresql.auto.conf; reset after the promotion. */
const RECOVERY_SETTINGS = [
  'restore_command',
  'recovery_target',
  'recovery_target_time',
  'recovery_target_xid',
  'recovery_target_name',
  'recovery_target_lsn',
  'recovery_target_inclusive',
  'recovery_target_timeline',
  'recovery_target_action',
]
/** Recovery alone: no TCP listener (no client writes before Patroni leads), no waiting for a sync standby. */
const RECOVERY_SERVER_SETTINGS = "-c hot_standby=off -c listen_addresses='' -c synchronous_standby_names=''"
const HOUR_MS = 3_600_000

export const pgBinary = (h: HostRun, name: string) => `${pgBinDir(h.vars.postgresql_version)}/${name}`
const dataDir = (h: HostRun) => String(h.vars.postgresql_data_dir)

/** What the recovery reached, for the log and the report. */
export interface Recovered {
  timeline: string
  /** PostgreSQL's own lines: where recovery stopped and the last transaction it replayed. */
  point: string
}

/** Where PostgreSQL is: whether its postmaster runs, and pg_control's cluster state. */
async function serverState(h: HostRun): Promise<{ running: boolean; state: string }> {
  const script = [
    'test -e "$1/postmaster.pid" && echo running || echo stopped',
    '"$2" -D "$1" | sed -n "s/^Database cluster state: *//p"',
  ].join('; ')
  const r = await h.query(['sh', '-c', script, 'sh', dataDir(h), pgBinary(h, 'pg_controldata')], { user: 'postgres' })
  const [running, state] = r.stdout.trim().split('\n')
  return { running: running === 'running', state: state?.trim() ?? 'unknown' }
}

/** The last lines of the recovery log, to say why PostgreSQL stopped. */
async function logTail(h: HostRun, lines = 12): Promise<string> {
  const r = await h.query(['tail', '-n', String(lines), RECOVERY_LOG], { user: 'postgres' })
  return r.stdout.trim() || '(no log)'
}

/** Wait (bounded) until PostgreSQL has promoted, or fail with its log when it stopped instead. */
async function waitForPromotion(h: HostRun): Promise<void> {
  const probe = async () => {
    const s = await serverState(h)
    if (!s.running) return { promoted: false, state: s.state }
    return s.state === 'in production' ? { promoted: true, state: s.state } : undefined
  }
  const end = await waitUntil('PostgreSQL to reach the target and promote', probe, {
    timeoutMs: HOUR_MS,
    intervalMs: 1000,
  }).catch(async (error: Error) => {
    throw new Error(`${error.message}; the end of ${RECOVERY_LOG}:\n${await logTail(h)}`)
  })
  if (!end.promoted)
    throw new Error(
      `PostgreSQL stopped during recovery (pg_control: ${end.state}); the end of ${RECOVERY_LOG}:\n${await logTail(h)}`,
    )
  // pg_control says "in production" just before the postmaster lets connections in.
  const isReady = [pgBinary(h, 'pg_isready'), '-q', '-p', String(h.vars.postgresql_port)]
  const ready = async () => (await h.query(isReady, { user: 'postgres' })).code === 0
  await waitUntil('the promoted PostgreSQL to accept connections', ready, { timeoutMs: 120_000, intervalMs: 500 })
}

/** The recovery's own account of where it stopped (the target's transaction, the last one replayed), from its log. */
async function recoveredPoint(h: HostRun): Promise<string> {
  const pattern = 'recovery stopping .*|last completed transaction was at log time .*'
  const r = await h.query(['grep', '-oE', pattern, RECOVERY_LOG], { user: 'postgres' })
  const lines = r.stdout.trim().split('\n')
  const last = (prefix: string) => lines.filter((l) => l.startsWith(prefix)).at(-1)
  const point = [last('recovery stopping'), last('last completed transaction')].filter(Boolean)
  return point.join('; ') || 'no point in the log'
}

/**
 * Restore this stopped member to the target and recover it; PostgreSQL is stopped again at the end.
 * In check mode the commands are only listed. Throws with PostgreSQL's log when recovery fails.
 */
export async function restoreInPlace(h: HostRun, target: RestoreTarget): Promise<Recovered | undefined> {
  const asPostgres = (cmd: string[], name: string, stdin?: string, timeoutMs = HOUR_MS) =>
    h.do(command({ cmd, user: 'postgres', stdin, timeoutMs, name }))
  const stanza = `--stanza=${h.vars.pgbackrest_stanza}`
  await asPostgres(
    ['pgbackrest', stanza, '--delta', ...restoreOptions(target), 'restore'],
    `Restore the data directory from the repository for ${describeTarget(target)}`,
  )
  const start = 'rm -f -- "$1" && exec "$2" -D "$3" -l "$1" -o "$4" -w -t 3600 start'
  await asPostgres(
    ['sh', '-c', start, 'sh', RECOVERY_LOG, pgBinary(h, 'pg_ctl'), dataDir(h), RECOVERY_SERVER_SETTINGS],
    'Start PostgreSQL alone to replay the archived WAL',
    undefined,
    HOUR_MS + 60_000,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}\nthe end of ${RECOVERY_LOG}:\n${await logTail(h)}`)
  })
  if (!h.check) await waitForPromotion(h)
  const reset = RECOVERY_SETTINGS.map((s) => `alter system reset ${s};`).join('\n')
  const sql = `${reset}\nselect pg_reload_conf();\ncheckpoint;\nselect timeline_id from pg_control_checkpoint();\n`
  const printed = await asPostgres(psqlArgv(h.vars), 'Drop the recovery settings and note the timeline', sql)
  await asPostgres(
    [pgBinary(h, 'pg_ctl'), '-D', dataDir(h), '-m', 'fast', '-w', '-t', '300', 'stop'],
    'Stop the recovered PostgreSQL (Patroni starts it next)',
  )
  if (h.check) return undefined
  return { timeline: printed.stdout?.trim().split('\n').pop() ?? '?', point: await recoveredPoint(h) }
}

/** Stop a PostgreSQL this run may have left running outside Patroni (immediate: its data is discarded next). */
export async function stopStrayServer(h: HostRun): Promise<void> {
  const script = 'test ! -e "$1/postmaster.pid" || "$2" -D "$1" -m immediate -w -t 120 stop'
  await h.do(
    command({
      cmd: ['sh', '-c', script, 'sh', dataDir(h), pgBinary(h, 'pg_ctl')],
      user: 'postgres',
      timeoutMs: 180_000,
      name: 'Stop the PostgreSQL started for the recovery, if it runs',
    }),
  )
}
