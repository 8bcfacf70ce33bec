/**
 * The target of a point-in-time restore (playbooks/restore.ts): a timestamp with an explicit UTC
 * offset (so no server time zone decides what it means), and the check that it lies within what the
 * repository can restore: not before the end of the oldest backup, not after the newest archived WAL.
 */
import { InputError } from '../../lib/types.ts'

/** `2026-11-30 06:12:00+00`, `2026-11-30T06:12:00.5Z`, `2026-11-30 07:12:00+01:00`. */
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}(?::?\d{2})?)$/

export interface RestoreTarget {
  /** What pgBackRest and PostgreSQL are given (`recovery_target_time`), with its offset. */
  text: string
  /** The same instant, seconds since the epoch. */
  epoch: number
}

/** Parse `--time`: refused (exit 1, before any connection) unless a timestamp with an offset. */
export function parseTarget(value: string): RestoreTarget {
  const m = TIMESTAMP.exec(value.trim())
  const offset = m?.[3] === 'Z' ? 'Z' : (m?.[3] ?? '').replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')
  const iso = m ? `${m[1]}T${m[2]}${offset.length === 3 ? `${offset}:00` : offset}` : ''
  const epoch = Date.parse(iso) / 1000
  if (!m || !Number.isFinite(epoch))
    throw new InputError(
      `--time ${JSON.stringify(value)}: give a timestamp with its UTC offset, such as "2026-11-30 06:12:00+00"`,
    )
  return { text: `${m[1]} ${m[2]}${m[3] === 'Z' ? '+00' : m[3]}`, epoch }
}

/** Why the target cannot be restored to, or undefined when it can. Times in seconds since the epoch. */
export function targetProblem(
  target: RestoreTarget,
  oldestBackupEnd: number,
  newestArchived: number,
): string | undefined {
  const iso = (s: number) => new Date(s * 1000).toISOString()
  if (target.epoch < oldestBackupEnd)
    return `target ${target.text} is before the end of the oldest backup (${iso(oldestBackupEnd)}): nothing restores to it`
  if (target.epoch > newestArchived)
    return `target ${target.text} is after the newest archived WAL (${iso(newestArchived)}): the repository cannot reach it`
  return undefined
}
