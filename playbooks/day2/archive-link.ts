/**
 * Before a PostgreSQL switchover: open the candidate's SSH connection to the pgBackRest repository host.
 * A promoting replica asks the archive (restore_command, pgBackRest's archive-get over SSH) for the next
 * WAL segment as soon as the old primary's stream ends, then for the new timeline's history file and its
 * parent's; postgres's SSH shares one connection per peer (ControlMaster, roles/pgbackrest), but a streaming
 * replica has not used it for minutes, so the first of those lookups paid a full SSH login inside the
 * write pause. One archive-get of a history file no timeline has, just before the switchover, opens the
 * shared connection (it persists 60 s) so the promotion's lookups reuse it. Nothing is written anywhere.
 * With `pgbackrest_tls` the members reach the repository over its TLS server instead: no connection
 * outlives a lookup, so there is none to open.
 */
import { tlsOn } from '../../roles/stack.ts'
import type { Fleet } from './fleet.ts'

/** Timeline 0 does not exist, so the archive never holds its history file: the lookup answers "not found". */
export const NO_SUCH_HISTORY = '00000000.history'

/** archive-get's exit codes when the repository answered: 0 found, 1 not found. Others are errors. */
const REPOSITORY_ANSWERED = new Set([0, 1])

/**
 * The command, run as postgres on `host`, that opens its connection to the repository; undefined when
 * the inventory has no repository host, `host` is the repository host (its archive is local) or the
 * members reach the repository over TLS (no shared connection).
 */
export function archiveLinkCommand(fleet: Fleet, host: string): string[] | undefined {
  const v = fleet.vars(host)
  const repositories = fleet.members(String(v.pgbackrest_group))
  if (repositories.length === 0 || repositories.includes(host) || tlsOn(v, 'pgbackrest')) return undefined
  return ['pgbackrest', `--stanza=${v.pgbackrest_stanza}`, 'archive-get', NO_SUCH_HISTORY, '/dev/null']
}

/**
 * Open `host`'s connection to the repository (see the top of this file). An optimisation only: when the
 * repository does not answer, a warning says so and the switchover goes on (the promotion's own lookups
 * then log in as before).
 */
export async function openArchiveLink(fleet: Fleet, host: string): Promise<void> {
  const command = archiveLinkCommand(fleet, host)
  if (!command) return
  const started = Date.now()
  const r = await (await fleet.conn(host)).run(command, { user: 'postgres', timeoutMs: 15_000 })
  const seconds = ((Date.now() - started) / 1000).toFixed(2)
  if (REPOSITORY_ANSWERED.has(r.code)) fleet.say(`postgres: ${host}'s link to the archive is open (${seconds} s)`)
  else {
    const why = r.stderr.trim().split('\n').pop() || `exit ${r.code}`
    fleet.say(`WARNING: ${host} could not reach the archive before the switchover: ${why}`)
  }
}
