#!/usr/bin/env -S npx zx
/**
 * The restore drill: proves that the newest backup and the WAL archived after it restore. A canary
 * row with a fresh token is written on the Patroni leader and its WAL segment archived; then, on the
 * repository host, the newest backup is restored into a scratch PostgreSQL (its own port and
 * directory, the live cluster untouched), the archived WAL replayed, the canary rows checked and
 * `pgbackrest verify` run; the scratch instance is removed whatever happened. Prints the restore
 * seconds and the recovered point; exits 2 with the reason on any failure (a damaged repository too).
 * `npx zx playbooks/restore-drill.ts -i inventory/lab-small.yml`
 */
import { randomBytes } from 'node:crypto'
import { command, InputError, playbook, type HostRun, type Inventory } from '../lib/index.ts'
import { allRoles } from '../roles/index.ts'
import { CANARY_TABLE, DRILL_SCRIPT } from '../roles/pgbackrest/repository.ts'
import { isPatroniLeader, writeAndArchive } from '../roles/pgbackrest/wal.ts'
import { backupGroup, hasBackupRepository } from './plays/backup.ts'

/** The canary written on the leader in the first play, looked for in the restored copy in the second. */
const canary = { token: randomBytes(9).toString('hex'), rows: 0, written: false }

const CANARY_SQL = [
  `create table if not exists ${CANARY_TABLE} (`,
  '  id bigserial primary key, token text not null, at timestamptz not null default now());',
  `insert into ${CANARY_TABLE} (token) values ('${canary.token}');`,
  `select count(*) from ${CANARY_TABLE};`,
].join('\n')

/** On the leader: write the canary row, switch WAL and wait (bounded) until that segment is archived. */
async function writeCanary(h: HostRun): Promise<void> {
  if (!(await isPatroniLeader(h))) return
  const printed = await writeAndArchive(h, CANARY_SQL, 'Write a canary row on the leader and archive its WAL')
  if (!printed) return
  Object.assign(canary, { rows: Number(printed.at(-1)), written: true })
  h.log(`canary ${canary.token}: row ${canary.rows} of ${CANARY_TABLE}`)
}

/** On the repository host: the drill script, its figures printed. */
async function runDrill(h: HostRun): Promise<void> {
  if (!canary.written && !h.check) throw new Error('no canary was written: no Patroni leader answered')
  const args = ['--canary-token', canary.token, '--canary-rows', String(canary.rows)]
  const name = 'Restore the newest backup into a scratch instance and check it'
  const outcome = await h.do(command({ cmd: [DRILL_SCRIPT, ...args], timeoutMs: 3 * 3600_000, name }))
  if (!outcome.stdout) return
  const r = JSON.parse(outcome.stdout.trim().split('\n').pop()!)
  h.log(
    `restore drill passed: backup ${r.backup} restored and recovered in ${r.restore_seconds} s ` +
      `(files ${r.files_seconds} s), ` +
      `recovered point ${r.recovered_point ?? 'unknown'}, canary rows ${r.canary}, pgbackrest verify ok`,
  )
}

await playbook({
  name: 'restore-drill',
  script: import.meta.url,
  roles: allRoles,
  plays: (inventory: Inventory) => {
    if (!hasBackupRepository(inventory))
      throw new InputError(`the inventory has no ${backupGroup(inventory)} host: there is no backup to drill`)
    const members = String(inventory.hosts.values().next().value?.vars.patroni_group ?? 'postgres')
    return [
      {
        name: 'Write a canary on the leader',
        hosts: members,
        tasks: writeCanary,
        anyErrorsFatal: true,
        maxFailPercentage: 0,
      },
      { name: 'Restore the newest backup on the repository host', hosts: backupGroup(inventory), tasks: runDrill },
    ]
  },
})
