#!/usr/bin/env -S npx zx
/**
 * Point-in-time restore of the whole Patroni cluster from pgBackRest's repository.
 * Without --confirm it checks the target against the repository, prints the plan and changes
 * nothing. With --confirm: the leader's current WAL is archived; a target before the end of the
 * oldest backup or after the newest archived WAL is refused; then Patroni is stopped on every member,
 * one member (the repository host when it is one, else the first) is restored to the target and
 * recovered there by PostgreSQL (a new timeline), the cluster's keys in etcd are removed so that
 * member starts as the leader from its own data, and the others are re-initialised from it.
 * `npx zx playbooks/restore.ts -i inventory/lab-small.yml (--time "2026-11-30 06:12:00+00" | --latest) [--confirm]`
 */
import {
  command,
  InputError,
  playbook,
  service,
  waitUntil,
  type HostRun,
  type Inventory,
  type Play,
} from '../lib/index.ts'
import type { CliOptions } from '../lib/cli/args.ts'
import { allRoles } from '../roles/index.ts'
import { clusterMembers } from '../roles/patroni/rest.ts'
import { parseTarget, targetProblem, type RestoreTarget } from '../roles/pgbackrest/pitr-target.ts'
import { isPatroniLeader, psql, writeAndArchive } from '../roles/pgbackrest/wal.ts'
import { groupMembers, STACK_DEFAULTS } from '../roles/stack.ts'
import { backupGroup, hasBackupRepository } from './plays/backup.ts'

const RECOVERY_SETTINGS = ['restore_command', 'recovery_target', 'recovery_target_time', 'recovery_target_action']
const RECOVERY_LOG = '/var/log/pgbackrest/hastack-restore-postgresql.log'

/** What the restore is asked for, and the member restored first. */
interface Request {
  target?: RestoreTarget
  confirm: boolean
  restored: string
  others: string[]
}

const pgbackrest = (h: HostRun, ...args: string[]) => ['pgbackrest', `--stanza=${h.vars.pgbackrest_stanza}`, ...args]
const binary = (h: HostRun, name: string) => `/usr/lib/postgresql/${h.vars.postgresql_version}/bin/${name}`
const api = (h: HostRun) => `http://${h.vars.address}:${h.vars.patroni_restapi_port}`

/** On the repository host: the oldest backup's end and the newest archived WAL bound the target. */
async function checkTarget(h: HostRun, request: Request): Promise<void> {
  const info = await h.query(pgbackrest(h, 'info', '--output=json'), { user: 'postgres' })
  const backups = info.code === 0 ? (JSON.parse(info.stdout)[0]?.backup ?? []) : []
  if (backups.length === 0) throw new Error('the repository holds no backup: there is nothing to restore')
  const archive = `${h.vars.pgbackrest_repo_path}/archive/${h.vars.pgbackrest_stanza}`
  const newest = await h.query(`find ${archive} -type f -name '0*-*' -printf '%T@\\n' | sort -n | tail -1`)
  const newestArchived = Number(newest.stdout.trim()) || 0
  const oldestEnd = Number(backups[0].timestamp.stop)
  const iso = (s: number) => new Date(s * 1000).toISOString()
  const problem = request.target && targetProblem(request.target, oldestEnd, newestArchived)
  // The plan alone archives nothing: with --confirm the leader's current WAL is archived before this check.
  if (problem && request.confirm) throw new Error(`refused: ${problem}`)
  if (problem)
    h.log(`as things stand the target would be refused: ${problem} (--confirm archives the current WAL first)`)
  const goal = request.target ? `the time ${request.target.text}` : `the newest archived WAL (${iso(newestArchived)})`
  h.log(`restorable from ${iso(oldestEnd)} (end of backup ${backups[0].label}) to ${iso(newestArchived)}`)
  h.log(`plan: restore the cluster to ${goal}:`)
  h.log('  1. stop Patroni (and PostgreSQL) on every member')
  h.log(`  2. restore ${request.restored} from the repository and let PostgreSQL recover to the target (new timeline)`)
  h.log(`  3. remove the cluster's keys from etcd; start ${request.restored}'s Patroni: it leads with its data`)
  h.log(
    `  4. re-initialise ${request.others.join(', ') || 'no other member'} from it; wait for every replica to stream`,
  )
  if (!request.confirm) h.log('nothing was changed: run again with --confirm to restore')
}

/** Stop Patroni (which stops its PostgreSQL) and wait until PostgreSQL has exited. */
async function stopMember(h: HostRun): Promise<void> {
  await h.do(service({ service: 'patroni', state: 'stopped', name: 'Stop Patroni and its PostgreSQL' }))
  if (h.check) return
  const pid = `${h.vars.postgresql_data_dir}/postmaster.pid`
  const stopped = async () => (await h.query(['test', '!', '-e', pid])).code === 0
  await waitUntil(`PostgreSQL on ${h.name} to stop`, stopped, { timeoutMs: 120_000, intervalMs: 1000 })
}

/** Restore this member to the target, recover it, make its data the cluster's, and start it as the leader. */
async function restoreMember(h: HostRun, request: Request): Promise<void> {
  const data = String(h.vars.postgresql_data_dir)
  const target = request.target
    ? ['--type=time', `--target=${request.target.text}`, '--target-action=promote']
    : ['--type=default']
  const asPostgres = (cmd: string[], name: string, stdin?: string, timeoutMs = 3_600_000) =>
    h.do(command({ cmd, user: 'postgres', stdin, timeoutMs, name }))
  await asPostgres(pgbackrest(h, '--delta', ...target, 'restore'), 'Restore the data directory from the repository')
  const settings = "-c hot_standby=off -c synchronous_standby_names=''"
  await asPostgres(
    [binary(h, 'pg_ctl'), '-D', data, '-l', RECOVERY_LOG, '-o', settings, '-w', '-t', '3600', 'start'],
    'Start PostgreSQL to recover to the target',
  )
  if (!h.check) {
    // pg_ctl returns once recovery is consistent; with hot_standby off, connections wait for the promotion.
    const isReady = [binary(h, 'pg_isready'), '-q', '-p', String(h.vars.postgresql_port)]
    const recovering = [...psql(h.vars.postgresql_port), '-c', 'select pg_is_in_recovery()']
    const promoted = async () =>
      (await h.query(isReady, { user: 'postgres' })).code === 0 &&
      (await h.query(recovering, { user: 'postgres' })).stdout.trim() === 'f'
    await waitUntil('PostgreSQL to reach the target and promote', promoted, { timeoutMs: 3_600_000, intervalMs: 1000 })
  }
  const reset = RECOVERY_SETTINGS.map((s) => `alter system reset ${s};`).join('\n')
  const sql = `${reset}\nselect pg_reload_conf();\ncheckpoint;\nselect timeline_id from pg_control_checkpoint();\n`
  const printed = await asPostgres(
    psql(h.vars.postgresql_port),
    'Drop the recovery settings and note the timeline',
    sql,
  )
  await asPostgres(
    [binary(h, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', '-t', '300', 'stop'],
    'Stop the recovered PostgreSQL',
  )
  const scope = String(h.vars.patroni_scope)
  await asPostgres(
    ['patronictl', '-c', '/etc/patroni/config.yml', 'remove', scope],
    "Remove the cluster's keys from etcd",
    `${scope}\nYes I am aware\n`,
    120_000,
  )
  await h.do(service({ service: 'patroni', state: 'started', name: 'Start Patroni on the restored member' }))
  if (h.check) return
  await waitUntil(`${h.name} to lead`, () => isPatroniLeader(h), { timeoutMs: 600_000, intervalMs: 2000 })
  const point = await h.query(`grep -o 'last completed transaction was at log time .*' ${RECOVERY_LOG} | tail -1`)
  h.log(
    `${h.name} leads on timeline ${printed.stdout?.trim().split('\n').pop()}; ${point.stdout.trim() || 'recovered'}`,
  )
}

/** Empty this member's data directory and start Patroni: it clones the restored leader. */
async function reinitialiseMember(h: HostRun): Promise<void> {
  const data = String(h.vars.postgresql_data_dir)
  await h.do(
    command({
      cmd: `rm -rf -- '${data}' && install -d -o postgres -g postgres -m 0700 -- '${data}'`,
      name: 'Empty the data directory of the old timeline',
    }),
  )
  await h.do(service({ service: 'patroni', state: 'started', name: 'Start Patroni: it clones the restored leader' }))
  if (h.check) return
  const replica = async () =>
    (await h.query(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${api(h)}/replica`])).stdout === '200'
  await waitUntil(`${h.name} to replicate from the restored leader`, replica, { timeoutMs: 900_000, intervalMs: 2000 })
}

/** The cluster after the restore: this member leads and streams to every other member. */
async function checkCluster(h: HostRun, request: Request): Promise<void> {
  if (h.check) return
  const sql = "select count(*) from pg_stat_replication where state = 'streaming'"
  const streaming = async () => {
    const r = await h.query([...psql(h.vars.postgresql_port), '-c', sql], { user: 'postgres' })
    return (await isPatroniLeader(h)) && Number(r.stdout.trim()) === request.others.length
  }
  await waitUntil('the restored leader to stream to every replica', streaming, { timeoutMs: 300_000, intervalMs: 2000 })
  const members = (await clusterMembers(h, api(h))) ?? []
  h.log(`restored cluster: ${members.map((m) => `${m.name} ${m.role} ${m.state} (timeline ${m.timeline})`).join(', ')}`)
}

await playbook({
  name: 'restore',
  script: import.meta.url,
  roles: allRoles,
  options: {
    time: { type: 'string', valueName: 'TIMESTAMP', description: 'restore to this time, with its UTC offset' },
    latest: { type: 'boolean', description: 'restore to the newest archived WAL' },
    confirm: { type: 'boolean', description: 'do it (without: print the plan and change nothing)' },
  },
  plays: (inventory: Inventory, options: CliOptions): Play[] => {
    const { time, latest, confirm } = options.playbookOptions
    if (Boolean(time) === Boolean(latest)) throw new InputError('give exactly one of --time TIMESTAMP and --latest')
    if (!hasBackupRepository(inventory))
      throw new InputError(`the inventory has no ${backupGroup(inventory)} host: there is no backup to restore`)
    const group = String(inventory.hosts.values().next().value?.vars.patroni_group ?? STACK_DEFAULTS.patroni_group)
    const members = groupMembers(inventory, group)
    const repo = backupGroup(inventory)
    const restored = members.find((m) => groupMembers(inventory, repo).includes(m)) ?? members[0]!
    const others = members.filter((m) => m !== restored)
    const request: Request = {
      target: time ? parseTarget(String(time)) : undefined,
      confirm: Boolean(confirm),
      restored,
      others,
    }
    // Any failure anywhere ends the run: a refused target on the repository host must never let the other
    // members go on to stop and wipe (the engine's anyErrorsFatal ends the whole run at the first failure).
    const fatal = { anyErrorsFatal: true }
    const archiveNow = async (h: HostRun) => {
      if (await isPatroniLeader(h)) await writeAndArchive(h, '', "Archive the leader's current WAL")
    }
    const check: Play = {
      name: 'Check the target against the repository',
      hosts: repo,
      tasks: (h) => checkTarget(h, request),
      ...fatal,
    }
    if (!request.confirm) return [check]
    return [
      { name: 'Archive the WAL written so far', hosts: group, tasks: archiveNow, ...fatal },
      check,
      { name: 'Stop Patroni on every member', hosts: group, tasks: stopMember, ...fatal },
      { name: `Restore ${restored} to the target`, hosts: restored, tasks: (h) => restoreMember(h, request), ...fatal },
      ...(others.length
        ? [
            {
              name: 'Re-initialise the other members from it',
              hosts: others.join(':'),
              tasks: reinitialiseMember,
              ...fatal,
            },
          ]
        : []),
      { name: 'Check the restored cluster', hosts: restored, tasks: (h) => checkCluster(h, request), ...fatal },
    ]
  },
})
