/**
 * The plays of playbooks/restore.ts and the member-side steps they run: archive the leader's newest
 * transaction, check the target against the repository and print the plan (all that runs without
 * --confirm), stop every member, restore one, then re-initialise the others from it or, when the restore
 * failed before its commit, bring them back on their data. One `RestoreRun` object carries how far the
 * restore got from play to play.
 */
import { InputError, type HostRun, type Inventory, type Play } from '../../lib/index.ts'
import { describeTarget, targetProblem, type RestoreTarget } from '../../roles/pgbackrest/pitr-target.ts'
import { isPatroniLeader, writeAndArchive } from '../../roles/pgbackrest/wal.ts'
import { groupMembers, STACK_DEFAULTS } from '../../roles/stack.ts'
import { backupGroup, hasBackupRepository } from '../plays/backup.ts'
import {
  bringBackMember,
  checkRestoredCluster,
  commitRestored,
  discardRestored,
  reinitialiseMember,
  startAgain,
  stopMember,
  type RestoreRun,
} from './cluster.ts'
import { restoreInPlace } from './recover.ts'

const pgbackrest = (h: HostRun, ...args: string[]) => ['pgbackrest', `--stanza=${h.vars.pgbackrest_stanza}`, ...args]
const iso = (s: number) => new Date(s * 1000).toISOString()

/** On the leader: a transaction (its id and time bound the target), then its WAL archived. */
async function archiveLeader(h: HostRun, run: RestoreRun): Promise<void> {
  if (!(await isPatroniLeader(h))) return
  const sql = "select txid_current() || ' ' || extract(epoch from clock_timestamp());"
  const printed = await writeAndArchive(h, sql, "Archive the leader's newest transaction")
  const [xid, epoch] = (printed?.at(-1) ?? '').split(' ')
  if (xid && epoch) run.marker = { xid: BigInt(xid), epoch: Number(epoch) }
}

/** On the repository host: the oldest backup's end and the newest archived point bound the target. */
async function checkTarget(h: HostRun, run: RestoreRun): Promise<void> {
  const info = await h.query(pgbackrest(h, 'info', '--output=json'), { user: 'postgres' })
  const backups = info.code === 0 ? (JSON.parse(info.stdout)[0]?.backup ?? []) : []
  if (backups.length === 0) throw new Error('the repository holds no backup: there is nothing to restore')
  const archive = `${h.vars.pgbackrest_repo_path}/archive/${h.vars.pgbackrest_stanza}`
  const newest = await h.query(`find ${archive} -type f -name '0*-*' -printf '%T@\\n' | sort -n | tail -1`)
  const oldestEnd = Number(backups[0].timestamp.stop)
  // With --confirm the leader's newest transaction was just archived: its time and id are the bounds.
  const window = run.marker
    ? { oldestBackupEnd: oldestEnd, newestArchived: run.marker.epoch, newestXid: run.marker.xid }
    : { oldestBackupEnd: oldestEnd, newestArchived: Number(newest.stdout.trim()) || 0 }
  if (run.confirm && !run.marker && !h.check)
    h.log('no Patroni leader answered: the target is judged against the newest archived WAL file')
  const problem = targetProblem(run.target, window)
  if (problem && run.confirm) throw new Error(`refused: ${problem}; nothing was changed`)
  if (problem)
    h.log(`as things stand the target would be refused: ${problem} (--confirm archives the newest WAL first)`)
  const newestBackup = backups.at(-1)
  h.log(
    `restorable from ${iso(oldestEnd)} (end of backup ${backups[0].label}) to ${iso(window.newestArchived)}; ` +
      `newest backup ${newestBackup.label} (ended ${iso(Number(newestBackup.timestamp.stop))})`,
  )
  if (run.target.kind === 'xid' || run.target.kind === 'name')
    h.log(`a ${run.target.kind} target restores from the newest backup: it must lie after that backup's end`)
  h.log(`plan: restore the cluster to ${describeTarget(run.target)}:`)
  h.log('  1. stop Patroni (and PostgreSQL) on every member')
  h.log(
    `  2. restore ${run.restored} from the repository; PostgreSQL recovers to the target and promotes (new timeline)`,
  )
  h.log(`  3. remove the cluster's keys from etcd; start ${run.restored}'s Patroni: it leads with the restored data`)
  h.log(`  4. re-initialise ${run.others.join(', ') || 'no other member'} from it; wait for every replica to stream`)
  h.log('  if step 2 fails, the other members start again on their untouched data and the cluster comes back')
  if (!run.confirm) h.log('nothing was changed: run again with --confirm to restore')
}

/** On the restored member: restore and recover, then commit; before the commit a failure discards it. */
async function restoreMember(h: HostRun, run: RestoreRun): Promise<void> {
  // A member did not stop: nothing is restored; the other members' play waits for the cluster to come back.
  if (run.unstopped.length) return startAgain(h)
  let recovered
  try {
    recovered = await restoreInPlace(h, run.target)
  } catch (error) {
    run.failure = (error as Error).message
    if (h.check) throw error
    throw new Error(`restore failed: ${run.failure}\n${await discardRestored(h, run)}`, { cause: error })
  }
  await commitRestored(h, run)
  if (recovered) h.log(`${h.name} leads on timeline ${recovered.timeline}; ${recovered.point}`)
}

/** On the other members: clone the restored leader after a commit, else start again on the data they had. */
async function otherMember(h: HostRun, run: RestoreRun): Promise<void> {
  if (run.leading || (h.check && !run.failure && !run.unstopped.length)) return reinitialiseMember(h, run)
  if (run.failure !== undefined || run.unstopped.length) return bringBackMember(h, run)
  // The restored member did not lead (or did not report): this member keeps its data and stays stopped.
  throw new Error(
    `${run.restored} does not lead with the restored data; ${h.name} is stopped with its data untouched: ` +
      `follow the message of ${run.restored} above`,
  )
}

/** The plays of a restore to `target`: the check and the plan alone without `confirm`. */
export function restorePlays(inventory: Inventory, target: RestoreTarget, confirm: boolean): Play[] {
  if (!hasBackupRepository(inventory))
    throw new InputError(`the inventory has no ${backupGroup(inventory)} host: there is no backup to restore`)
  const group = String(inventory.hosts.values().next().value?.vars.patroni_group ?? STACK_DEFAULTS.patroni_group)
  const members = groupMembers(inventory, group)
  const repo = backupGroup(inventory)
  const restored = members.find((m) => groupMembers(inventory, repo).includes(m)) ?? members[0]!
  const others = members.filter((m) => m !== restored)
  const run: RestoreRun = {
    target,
    confirm,
    restored,
    others,
    unstopped: [],
    committed: false,
    leading: false,
  }
  // Before anything is stopped, any failure ends the whole run: a refused target must touch nothing.
  const fatal = { anyErrorsFatal: true }
  const check: Play = {
    name: 'Check the target against the repository',
    hosts: repo,
    tasks: (h) => checkTarget(h, run),
    ...fatal,
  }
  if (!run.confirm) return [check]
  // From the first stop on, each play runs on every member it names whatever another one did: the members
  // read from `run` how far the restore got, and a failure before the commit brings the cluster back.
  return [
    { name: "Archive the leader's newest transaction", hosts: group, tasks: (h) => archiveLeader(h, run), ...fatal },
    check,
    { name: 'Stop Patroni on every member', hosts: group, tasks: (h) => stopMember(h, run) },
    { name: `Restore ${restored} to the target`, hosts: restored, tasks: (h) => restoreMember(h, run) },
    ...(others.length
      ? [
          {
            name: 'Re-initialise the other members, or bring them back',
            hosts: others.join(':'),
            tasks: (h: HostRun) => otherMember(h, run),
          },
        ]
      : []),
    {
      name: 'Check the restored cluster',
      hosts: restored,
      tasks: async (h) => (run.leading ? checkRestoredCluster(h, run) : undefined),
    },
  ]
}
