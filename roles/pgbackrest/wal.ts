/**
 * Closing the current WAL segment on the Patroni leader and waiting (bounded) until pgBackRest has
 * archived it: what the restore drill does after its canary row, and the PITR restore before it
 * judges its target, so everything committed so far is in the repository.
 */
import type { HostRun } from '../../lib/types.ts'
import { command, waitUntil } from '../../lib/tasks/index.ts'
import { rest } from '../patroni/rest.ts'
import { patroniApiUrl } from '../tls.ts'
import { psqlArgv } from '../patroni/users.ts'

/** Whether this member is the Patroni leader (its REST API answers 200 to GET /primary). */
export async function isPatroniLeader(h: HostRun): Promise<boolean> {
  return (await rest(h, 'GET', `${patroniApiUrl(h.vars)}/primary`)).status === 200
}

/**
 * Run `sql` (may be empty) then switch WAL on the leader, and wait until that segment is archived.
 * Returns the lines `sql` printed; undefined in check mode (nothing ran).
 */
export async function writeAndArchive(h: HostRun, sql: string, name: string): Promise<string[] | undefined> {
  const stdin = `${sql}\nselect pg_walfile_name(pg_switch_wal());\n`
  const outcome = await h.do(command({ cmd: psqlArgv(h.vars), user: 'postgres', stdin, name }))
  if (!outcome.stdout) return undefined
  const lines = outcome.stdout.trim().split('\n')
  const segment = lines.pop()!
  const archived = `select coalesce(last_archived_wal, '') >= '${segment}' from pg_stat_archiver`
  const probe = async () =>
    (await h.query([...psqlArgv(h.vars), '-c', archived], { user: 'postgres' })).stdout.trim() === 't'
  await waitUntil(`WAL segment ${segment} to reach the repository`, probe, { timeoutMs: 120_000, intervalMs: 1000 })
  h.log(`WAL segment ${segment} archived`)
  return lines
}
