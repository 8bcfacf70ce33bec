/**
 * The Patroni side of playbooks/restore.ts, one function per member and step: stop a member; make the
 * restored member's data the cluster's (its keys removed from etcd, so its Patroni leads with that data);
 * re-initialise another member from it; and, when the restore failed before the cluster's keys were
 * removed, bring the cluster back on the data it had: Patroni started again on the untouched members, the
 * restored member emptied so that it clones from their leader. The shared `RestoreRun` says how far the
 * restore got, so every member knows which of these to do, and every failure says how to finish by hand.
 */
import { command, service, waitUntil, type HostRun } from '../../lib/index.ts'
import { clusterMembers, isLeader, rest, waitForLeader } from '../../roles/patroni/rest.ts'
import { patroniApiUrl } from '../../roles/tls.ts'
import { isPatroniLeader } from '../../roles/pgbackrest/wal.ts'
import { psqlArgv } from '../../roles/patroni/users.ts'
import type { RestoreTarget } from '../../roles/pgbackrest/pitr-target.ts'
import { stopStrayServer } from './recover.ts'

/** What the restore is asked for, and how far it got (shared by the plays of one run). */
export interface RestoreRun {
  target: RestoreTarget
  confirm: boolean
  restored: string
  others: string[]
  /** Members whose Patroni could not be stopped: nothing is restored then. */
  unstopped: string[]
  /** Set once the cluster's keys are removed from etcd: the restored data is the cluster's from then on. */
  committed: boolean
  /** Set once the restored member leads: the others may then discard their data and clone it. */
  leading: boolean
  /** Why the restore of the restored member failed, when it did. */
  failure?: string
  /** When the first member was stopped (ms since the epoch). */
  startedAt?: number
  /** The leader's newest transaction and its time, written when its WAL was archived. */
  marker?: { xid: bigint; epoch: number }
}

const CONFIG = '/etc/patroni/config.yml'
const MINUTE_MS = 60_000
export const memberApi = (h: HostRun) => patroniApiUrl(h.vars)

/** Stop Patroni (which stops its PostgreSQL) and wait until PostgreSQL has exited. */
export async function stopMember(h: HostRun, run: RestoreRun): Promise<void> {
  run.startedAt ??= Date.now()
  try {
    await h.do(service({ service: 'patroni', state: 'stopped', name: 'Stop Patroni and its PostgreSQL' }))
    if (h.check) return
    const pid = `${h.vars.postgresql_data_dir}/postmaster.pid`
    const stopped = async () => (await h.query(['test', '!', '-e', pid])).code === 0
    await waitUntil(`PostgreSQL on ${h.name} to stop`, stopped, { timeoutMs: 2 * MINUTE_MS, intervalMs: 1000 })
  } catch (error) {
    run.unstopped.push(h.name)
    throw new Error(
      `${(error as Error).message}\nnothing is restored; the other members start Patroni again. ` +
        `Check Patroni on ${h.name} (systemctl status patroni) and start it: systemctl start patroni`,
      { cause: error },
    )
  }
}

/** Empty this member's data directory and start Patroni: it clones the cluster's leader. */
async function emptyAndStart(h: HostRun, why: string): Promise<void> {
  const data = String(h.vars.postgresql_data_dir)
  const empty = 'rm -rf -- "$1" && install -d -o postgres -g postgres -m 0700 -- "$1"'
  await h.do(command({ cmd: ['sh', '-c', empty, 'sh', data], name: `Empty the data directory (${why})` }))
  await h.do(service({ service: 'patroni', state: 'started', name: 'Start Patroni: it clones the leader' }))
}

/**
 * On the restored member after a failure before the commit: its data, overwritten by the restore, is
 * discarded and it clones the leader the untouched members elect again (etcd still holds the cluster's
 * keys, so Patroni waits for that leader and never bootstraps a new cluster). Returns what to tell the user.
 */
export async function discardRestored(h: HostRun, run: RestoreRun): Promise<string> {
  const others = run.others.join(', ') || 'no other member'
  const manual =
    `to finish by hand: systemctl start patroni on ${others}; once one leads, on ${h.name}: ` +
    `empty ${h.vars.postgresql_data_dir} and systemctl start patroni (it clones the leader)`
  try {
    await stopStrayServer(h)
    await emptyAndStart(h, 'the failed restore is discarded')
    return (
      `nothing was committed: the cluster comes back on its data from before the restore (${others} start ` +
      `Patroni again; ${h.name} clones their leader); if it does not, ${manual}`
    )
  } catch (error) {
    return `nothing was committed, but ${h.name} could not be reset (${(error as Error).message}); ${manual}`
  }
}

/** Remove the cluster's keys from etcd and start Patroni here: with no initialize key, it leads with its data. */
export async function commitRestored(h: HostRun, run: RestoreRun): Promise<void> {
  const scope = String(h.vars.patroni_scope)
  await h.do(
    command({
      cmd: ['patronictl', '-c', CONFIG, 'remove', scope],
      user: 'postgres',
      stdin: `${scope}\nYes I am aware\n`,
      timeoutMs: 2 * MINUTE_MS,
      name: "Remove the cluster's keys from etcd",
    }),
  )
  run.committed = !h.check
  await h.do(service({ service: 'patroni', state: 'started', name: 'Start Patroni on the restored member' }))
  if (h.check) return
  await waitUntil(`${h.name} to lead with the restored data`, () => isPatroniLeader(h), {
    timeoutMs: 10 * MINUTE_MS,
    intervalMs: 2000,
  }).catch((error: Error) => {
    throw new Error(
      `${error.message}\nthe restored data is on ${h.name} and the cluster's keys are gone from etcd: see ` +
        `journalctl -u patroni on ${h.name}. Once it leads, on ${run.others.join(', ')}: empty ` +
        `${h.vars.postgresql_data_dir} and systemctl start patroni. To go back to the data from before the ` +
        `restore instead: systemctl stop patroni on ${h.name}, patronictl -c ${CONFIG} remove ${scope}, ` +
        `systemctl start patroni on ${run.others.join(', ')}`,
    )
  })
  run.leading = true
}

/** After the commit: empty this member and start Patroni, so it clones the restored leader. */
export async function reinitialiseMember(h: HostRun, run: RestoreRun): Promise<void> {
  await emptyAndStart(h, 'its data is of the timeline before the restore')
  if (h.check) return
  const replica = async () => (await rest(h, 'GET', `${memberApi(h)}/replica`)).status === 200
  await waitUntil(`${h.name} to replicate from the restored leader`, replica, {
    timeoutMs: 15 * MINUTE_MS,
    intervalMs: 2000,
  }).catch((error: Error) => {
    throw new Error(
      `${error.message}\n${run.restored} leads with the restored data; see journalctl -u patroni on ${h.name}, ` +
        `and retry with: patronictl -c ${CONFIG} reinit ${h.vars.patroni_scope} ${h.name}`,
    )
  })
}

/** Start Patroni again on this member's untouched data (nothing was restored), without waiting for the others. */
export async function startAgain(h: HostRun): Promise<void> {
  await h.do(service({ service: 'patroni', state: 'started', name: 'Start Patroni again on the data it had' }))
}

/**
 * Nothing was committed (a member did not stop, or the restore failed): start Patroni again on this
 * untouched member and wait until the cluster has a leader and every member runs again.
 */
export async function bringBackMember(h: HostRun, run: RestoreRun): Promise<void> {
  await startAgain(h)
  if (h.check) return
  await h.do(waitForLeader(h, memberApi(h), 5 * MINUTE_MS))
  const everyone = [run.restored, ...run.others].filter((m) => !run.unstopped.includes(m))
  const running = async () => {
    const members = (await clusterMembers(h, memberApi(h))) ?? []
    const up = members.filter((m) => m.state === 'running' || m.state === 'streaming' || isLeader(m))
    return everyone.every((name) => up.some((m) => m.name === name)) ? members : undefined
  }
  const members = await waitUntil('every member to run again', running, { timeoutMs: 15 * MINUTE_MS, intervalMs: 2000 })
  h.log(`the restore was not done; the cluster is back: ${members.map((m) => `${m.name} ${m.role}`).join(', ')}`)
}

/** The cluster after the restore: this member leads and streams to every other member. */
export async function checkRestoredCluster(h: HostRun, run: RestoreRun): Promise<void> {
  if (h.check) return
  const sql = "select count(*) from pg_stat_replication where state = 'streaming'"
  const streaming = async () => {
    const r = await h.query([...psqlArgv(h.vars), '-c', sql], { user: 'postgres' })
    return (await isPatroniLeader(h)) && Number(r.stdout.trim()) === run.others.length
  }
  await waitUntil('the restored leader to stream to every replica', streaming, {
    timeoutMs: 5 * MINUTE_MS,
    intervalMs: 2000,
  })
  const members = (await clusterMembers(h, memberApi(h))) ?? []
  const seconds = run.startedAt ? ((Date.now() - run.startedAt) / 1000).toFixed(1) : '?'
  h.log(
    `restored cluster in ${seconds} s (first stop to every replica streaming): ` +
      members.map((m) => `${m.name} ${m.role} ${m.state} (timeline ${m.timeline})`).join(', '),
  )
}
