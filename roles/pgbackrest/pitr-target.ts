/**
 * The target of a point-in-time restore (playbooks/restore.ts): a timestamp with an explicit UTC offset
 * (so no server time zone decides what it means), a transaction id, a named restore point
 * (`pg_create_restore_point`), or the newest archived WAL; the pgBackRest options each one restores with;
 * and the check that a time or a transaction id lies within what the repository can restore.
 */
import { InputError } from '../../lib/types.ts'

/** `2026-11-30 06:12:00+00`, `2026-11-30T06:12:00.5Z`, `2026-11-30 07:12:00+01:00`. */
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}(?::?\d{2})?)$/
/** A transaction id as `txid_current()` prints it (3 and up: 0 to 2 are reserved). */
const XID = /^[1-9]\d{0,19}$/
/** A restore point name as `pg_create_restore_point` takes it, limited to characters that need no quoting. */
const RESTORE_POINT = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/

export type RestoreTarget =
  | {
      kind: 'time'
      /** What pgBackRest and PostgreSQL are given (`recovery_target_time`), with its offset. */
      text: string
      /** The same instant, seconds since the epoch. */
      epoch: number
    }
  | { kind: 'xid'; text: string; xid: bigint }
  | { kind: 'name'; text: string }
  | { kind: 'latest'; text: string }

/** Parse `--time`: refused (exit 1, before any connection) unless a timestamp with an offset. */
export function parseTarget(value: string): RestoreTarget & { kind: 'time' } {
  const m = TIMESTAMP.exec(value.trim())
  const offset = m?.[3] === 'Z' ? 'Z' : (m?.[3] ?? '').replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')
  const iso = m ? `${m[1]}T${m[2]}${offset.length === 3 ? `${offset}:00` : offset}` : ''
  const epoch = Date.parse(iso) / 1000
  if (!m || !Number.isFinite(epoch))
    throw new InputError(
      `--time ${JSON.stringify(value)}: give a timestamp with its UTC offset, such as "2026-11-30 06:12:00+00"`,
    )
  return { kind: 'time', text: `${m[1]} ${m[2]}${m[3] === 'Z' ? '+00' : m[3]}`, epoch }
}

/** Parse `--xid`: a transaction id of 3 or more, as `txid_current()` prints it. */
export function parseXid(value: string): RestoreTarget & { kind: 'xid' } {
  const text = value.trim()
  if (!XID.test(text) || BigInt(text) < 3n || BigInt(text) >= 2n ** 63n)
    throw new InputError(
      `--xid ${JSON.stringify(value)}: give a transaction id (3 or more) as txid_current() prints it`,
    )
  return { kind: 'xid', text, xid: BigInt(text) }
}

/** Parse `--name`: a restore point made with `select pg_create_restore_point('NAME')`. */
export function parseRestorePoint(value: string): RestoreTarget & { kind: 'name' } {
  if (!RESTORE_POINT.test(value))
    throw new InputError(
      `--name ${JSON.stringify(value)}: a restore point name is 1 to 63 letters, digits, '_', '.', ':' or '-'`,
    )
  return { kind: 'name', text: value }
}

/** The one target the options ask for; exactly one of --time, --xid, --name and --latest. */
export function targetFromOptions(options: { time?: unknown; xid?: unknown; name?: unknown; latest?: unknown }) {
  const given = (['time', 'xid', 'name', 'latest'] as const).filter(
    (k) => options[k] !== undefined && options[k] !== false,
  )
  if (given.length !== 1)
    throw new InputError('give exactly one of --time TIMESTAMP, --xid XID, --name RESTORE_POINT and --latest')
  if (options.time !== undefined) return parseTarget(String(options.time))
  if (options.xid !== undefined) return parseXid(String(options.xid))
  if (options.name !== undefined) return parseRestorePoint(String(options.name))
  return { kind: 'latest', text: 'the newest archived WAL' } as const
}

/** pgBackRest's restore options for the target: recovery stops there and promotes (a new timeline). */
export function restoreOptions(target: RestoreTarget): string[] {
  if (target.kind === 'latest') return ['--type=default']
  return [`--type=${target.kind}`, `--target=${target.text}`, '--target-action=promote']
}

/** What the plan and the log call the target. */
export function describeTarget(target: RestoreTarget): string {
  if (target.kind === 'time') return `the time ${target.text}`
  if (target.kind === 'xid') return `transaction ${target.text} (included)`
  if (target.kind === 'name') return `the restore point ${JSON.stringify(target.text)}`
  return target.text
}

/** What bounds a target: the end of the oldest backup, and the newest point archived (a time and a transaction id). */
export interface RestorableWindow {
  /** Seconds since the epoch. */
  oldestBackupEnd: number
  newestArchived: number
  /** The newest transaction id the leader had assigned when its WAL was archived, when known. */
  newestXid?: bigint
}

/** Why the target cannot be restored to, or undefined when it can (or when only recovery can tell: a name). */
export function targetProblem(target: RestoreTarget, window: RestorableWindow): string | undefined {
  const oldest = new Date(window.oldestBackupEnd * 1000).toISOString()
  const newest = new Date(window.newestArchived * 1000).toISOString()
  if (target.kind === 'time' && target.epoch < window.oldestBackupEnd)
    return `target ${target.text} is before the end of the oldest backup (${oldest}): nothing restores to it`
  if (target.kind === 'time' && target.epoch >= window.newestArchived)
    return `target ${target.text} is after the newest archived WAL (${newest}): the repository cannot reach it`
  if (target.kind === 'xid' && window.newestXid !== undefined && target.xid > window.newestXid)
    return `transaction ${target.text} is after the newest archived WAL (its newest transaction is ${window.newestXid})`
  return undefined
}
