/**
 * Point-in-time restore of the converged lab (destructive), and WAL archiving after a switchover.
 * `restore`: rows written before a noted time, more rows after it; restore.ts without --confirm prints
 * the plan and changes nothing (the data, the leader and its timeline, and a `site.ts --check` run); a
 * target after the newest archived WAL is refused with nothing touched; a restore whose recovery fails
 * (a restore point that does not exist) brings the cluster back on its data; `restore.ts --time <noted>
 * --confirm` leaves exactly the earlier rows, and the cluster is healthy after: one leader, every
 * replica streaming, HAProxy routing writes. `archivingAfterSwitchover`: after a Patroni switchover the
 * new primary's WAL reaches the repository, `pgbackrest check` passes and an incremental backup succeeds.
 * `restorePoint`: `restore.ts --name` restores to a `pg_create_restore_point` made after that backup.
 */
import { isLeader } from '../pg/cluster.ts'
import { until } from '../until.ts'
import { appDatabase } from './clients.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'
import { switchover } from './day2.ts'
import { actualPrimaries } from './status.ts'

const TABLE = 'pitr_check'
const STANZA = 'hastack'
const ARCHIVE = `/var/lib/pgbackrest/archive/${STANZA}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The rows of the check's table, read through HAProxy's write port. */
async function rows(ctx: SiteContext): Promise<number[]> {
  const client = await appDatabase(ctx)
  try {
    return (await client.query(`select n from ${TABLE} order by n`)).rows.map((r) => Number(r.n))
  } finally {
    await client.end()
  }
}

/** The leader and its timeline when the cluster is healthy (one leader streaming to every other member). */
async function healthyCluster(ctx: SiteContext): Promise<{ leader: string; timeline?: number } | undefined> {
  const members = await ctx.patroniCluster()
  const leaders = members?.filter(isLeader) ?? []
  if (leaders.length !== 1) return undefined
  const sql = "select count(*) from pg_stat_replication where state = 'streaming'"
  const r = await ctx.lab.ssh(leaders[0]!.name, `sudo -n -u postgres psql -XAtc "${sql}"`)
  if (Number(r.stdout.trim()) !== members!.length - 1) return undefined
  return { leader: leaders[0]!.name, timeline: leaders[0]!.timeline }
}

const waitHealthy = (ctx: SiteContext, what: string) =>
  until(`one leader and every replica streaming (${what})`, 300_000, () => healthyCluster(ctx), 2000)

/** Writes `first` rows, notes the time, then writes the rest; returns the noted target with its offset. */
async function writeAroundTarget(ctx: SiteContext, first: number, total: number): Promise<string> {
  const writer = await appDatabase(ctx)
  try {
    await writer.query(`drop table if exists ${TABLE}`)
    await writer.query(`create table ${TABLE} (n int primary key, at timestamptz not null default clock_timestamp())`)
    for (let n = 1; n <= first; n++) await writer.query(`insert into ${TABLE} (n) values ($1)`, [n])
    await sleep(1500)
    const noted = await writer.query(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as t`,
    )
    await sleep(1500)
    for (let n = first + 1; n <= total; n++) await writer.query(`insert into ${TABLE} (n) values ($1)`, [n])
    return `${noted.rows[0].t}+00`
  } finally {
    await writer.end()
  }
}

async function changesNothing(t: Tap, ctx: SiteContext, before: { leader: string; timeline?: number }) {
  t.same(await rows(ctx), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the data is unchanged')
  t.same(await healthyCluster(ctx), before, `the same leader (${before.leader}) on the same timeline`)
}

export const restore: SiteCheck = {
  name: 'restore: a PITR of the cluster keeps exactly the rows written before the target, and the cluster is healthy',
  destructive: true,
  async run(t, ctx) {
    const before = await waitHealthy(ctx, 'before')
    const target = await writeAroundTarget(ctx, 5, 10)
    t.comment(`target ${target}; leader ${before.leader} on timeline ${before.timeline}`)

    // site.ts --check before and after the plan: what it would change (nothing, on a converged stack) is the same.
    const checkBefore = await ctx.playbook('playbooks/site.ts', 'restore-check-before', ['--check'])
    const plan = await ctx.playbook('playbooks/restore.ts', 'restore-plan', ['--time', target])
    t.equal(plan.exitCode, 0, 'without --confirm the plan is printed')
    t.match(plan.stdout, /plan: restore the cluster to the time/)
    t.match(plan.stdout, /nothing was changed/)
    t.equal(plan.totals.changed, 0, 'no task changed anything')
    const checkAfter = await ctx.playbook('playbooks/site.ts', 'restore-check-after', ['--check'])
    t.same([checkBefore.exitCode, checkAfter.exitCode], [0, 0])
    t.same(checkAfter.changed, checkBefore.changed, `site.ts --check: the same before and after the plan`)
    t.comment(`site.ts --check would change: ${JSON.stringify(checkAfter.changed)}`)
    await changesNothing(t, ctx, before)

    const later = new Date(Date.now() + 3600_000).toISOString().replace('T', ' ').replace(/\..*/, '+00')
    const refused = await ctx.playbook('playbooks/restore.ts', 'restore-refused', ['--time', later, '--confirm'])
    t.equal(refused.exitCode, 2, 'a target after the newest archived WAL is refused: exit 2')
    t.match(refused.stdout + refused.tail, /after the newest archived WAL.*nothing was changed/)
    await changesNothing(t, ctx, before)

    // A recovery that never reaches its target: PostgreSQL stops, and the run brings the cluster back.
    const missing = ['--name', 'hastack-no-such-restore-point', '--confirm']
    const failed = await ctx.playbook('playbooks/restore.ts', 'restore-failed', missing, 900_000)
    t.equal(failed.exitCode, 2, 'a restore to a restore point that does not exist fails: exit 2')
    t.match(failed.stdout + failed.tail, /restore failed: .*PostgreSQL stopped during recovery/)
    t.match(failed.stdout + failed.tail, /recovery ended before configured recovery target was reached/)
    t.match(failed.stdout + failed.tail, /nothing was committed: the cluster comes back/)
    t.comment(`failed restore and the way back: ${failed.seconds.toFixed(0)} s`)
    const back = await waitHealthy(ctx, 'after the failed restore')
    t.pass(`the cluster is back: ${back.leader} leads on timeline ${back.timeline}`)
    t.same(await rows(ctx), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'with its data')

    const done = await ctx.playbook('playbooks/restore.ts', 'restore', ['--time', target, '--confirm'], 1_200_000)
    if (done.exitCode !== 0) t.comment(done.tail)
    t.equal(done.exitCode, 0, 'restore --time --confirm succeeds')
    const restored = done.stdout.match(/restored cluster in .*/)?.[0] ?? ''
    const point = done.stdout.match(/leads on timeline .*/)?.[0] ?? ''
    t.comment(`restore playbook ${done.seconds.toFixed(0)} s; ${restored}; ${point}`)
    const after = await waitHealthy(ctx, 'after the restore')
    t.pass(`one leader (${after.leader}, timeline ${after.timeline}), every replica streaming`)
    t.same(await rows(ctx), [1, 2, 3, 4, 5], 'exactly the rows written before the target remain')
    const client = await until('HAProxy to route writes to the restored leader', 60_000, async () =>
      appDatabase(ctx).catch(() => undefined),
    )
    try {
      await client.query(`insert into ${TABLE} (n) values (11)`)
      t.equal((await client.query('select pg_is_in_recovery() as r')).rows[0].r, false, 'HAProxy routes writes')
      await client.query(`drop table ${TABLE}`)
    } finally {
      await client.end()
    }
  },
}

export const archivingAfterSwitchover: SiteCheck = {
  name: 'restore: after a Patroni switchover WAL archiving continues from the new primary and a backup succeeds',
  destructive: true,
  async run(t, ctx) {
    await waitHealthy(ctx, 'before the switchover')
    await switchover(t, ctx, 'postgres')
    const { postgres: primary } = await actualPrimaries(ctx)
    const [repo] = ctx.hosts('backup_repo')
    const asPostgres = (host: string, sql: string) => ctx.lab.ssh(host, `sudo -n -u postgres psql -XAtc "${sql}"`)
    const started = Date.now()
    await asPostgres(primary!, 'select txid_current()')
    const segment = (await asPostgres(primary!, 'select pg_walfile_name(pg_switch_wal())')).stdout.trim()
    t.match(segment, /^[0-9A-F]{24}$/, `${primary} switched to a new WAL segment after ${segment}`)
    const inRepository = async () =>
      (await ctx.lab.ssh(repo!, `sudo -n find ${ARCHIVE} -name '${segment}-*'`)).stdout.trim() || undefined
    const file = await until(`${segment} in the repository`, 120_000, inRepository, 500)
    t.pass(`the new primary's segment reached the repository in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    t.match(file, /\.lz4$/, `${file}: compressed as the repository's backups are (lz4)`)
    const checked = await ctx.lab.ssh(repo!, `sudo -n -u postgres pgbackrest --stanza=${STANZA} check`, {
      timeoutMs: 180_000,
    })
    t.equal(checked.code, 0, `pgbackrest check passes after the switchover ${checked.stderr.trim()}`)
    const backup = await ctx.playbook('playbooks/backup.ts', 'backup-after-switchover', ['--type', 'incr'])
    if (backup.exitCode !== 0) t.comment(backup.tail)
    t.equal(backup.exitCode, 0, 'the next backup succeeds')
    const summary = backup.stdout.match(/backup \S+ \(incr, from the \w+\): .*/)?.[0]
    t.ok(summary, 'and prints its figures')
    t.comment(`${summary} (playbook ${backup.seconds.toFixed(0)} s)`)
  },
}

export const restorePoint: SiteCheck = {
  name: 'restore: to a restore point made with pg_create_restore_point, after the newest backup',
  destructive: true,
  async run(t, ctx) {
    await waitHealthy(ctx, 'before the restore point')
    const { postgres: primary } = await actualPrimaries(ctx)
    const point = `hastack-site-${Date.now()}`
    const db = await appDatabase(ctx)
    try {
      await db.query(`drop table if exists ${TABLE}`)
      await db.query(`create table ${TABLE} (n int primary key)`)
      await db.query(`insert into ${TABLE} (n) values (1), (2)`)
      const made = await ctx.lab.ssh(
        primary!,
        `sudo -n -u postgres psql -XAtc "select pg_create_restore_point('${point}')"`,
      )
      t.equal(made.code, 0, `restore point ${point} made on ${primary} at ${made.stdout.trim()}`)
      await db.query(`insert into ${TABLE} (n) values (3)`)
    } finally {
      await db.end()
    }
    const done = await ctx.playbook('playbooks/restore.ts', 'restore-point', ['--name', point, '--confirm'], 900_000)
    if (done.exitCode !== 0) t.comment(done.tail)
    t.equal(done.exitCode, 0, 'restore --name --confirm succeeds')
    t.comment(
      `restore playbook ${done.seconds.toFixed(0)} s; ${done.stdout.match(/restored cluster in [\d.]+ s/)?.[0]}`,
    )
    const after = await waitHealthy(ctx, 'after the restore to the point')
    t.pass(`one leader (${after.leader}, timeline ${after.timeline}), every replica streaming`)
    t.same(await rows(ctx), [1, 2], 'the rows written before the restore point remain, not the one after')
    const client = await until('HAProxy to route writes', 60_000, async () => appDatabase(ctx).catch(() => undefined))
    try {
      await client.query(`drop table ${TABLE}`)
    } finally {
      await client.end()
    }
  },
}
