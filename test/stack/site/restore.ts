/**
 * Point-in-time restore of the converged lab (destructive): rows written before a noted time, more
 * rows after it; restore.ts without --confirm changes nothing; a target after the newest archived WAL
 * is refused; `restore.ts --time <noted> --confirm` leaves exactly the earlier rows, and the cluster
 * is healthy after: one leader, every replica streaming, HAProxy routing writes to the new leader.
 */
import pg from 'pg'
import { until } from '../until.ts'
import type { SiteCheck } from './context.ts'

interface Member {
  name: string
  role: string
}

export const restore: SiteCheck = {
  name: 'restore: a PITR of the cluster keeps exactly the rows written before the target, and the cluster is healthy',
  destructive: true,
  async run(t, ctx) {
    const secrets = ctx.secrets()
    const lb = ctx.lab.host(ctx.hosts('haproxy')[0]!).address
    const api = `http://${ctx.lab.host(ctx.hosts('postgres')[0]!).address}:8008`
    const connect = async () => {
      const client = new pg.Client({
        host: lb,
        port: 5000,
        user: 'app',
        database: 'app',
        password: secrets.postgresql_app_password,
        connectionTimeoutMillis: 5000,
      })
      await client.connect()
      return client
    }
    const rows = async () => {
      const client = await connect()
      try {
        return (await client.query('select n from pitr_check order by n')).rows.map((r) => Number(r.n))
      } finally {
        await client.end()
      }
    }
    const writer = await connect()
    await writer.query('drop table if exists pitr_check')
    await writer.query('create table pitr_check (n int primary key, at timestamptz not null default clock_timestamp())')
    for (let n = 1; n <= 5; n++) await writer.query('insert into pitr_check (n) values ($1)', [n])
    await new Promise((r) => setTimeout(r, 1500))
    const noted = (
      await writer.query(`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as t`)
    ).rows[0].t as string
    const target = `${noted}+00`
    await new Promise((r) => setTimeout(r, 1500))
    for (let n = 6; n <= 10; n++) await writer.query('insert into pitr_check (n) values ($1)', [n])
    await writer.end()
    t.comment(`target ${target}`)

    const plan = await ctx.playbook('playbooks/restore.ts', 'restore-plan', ['--time', target])
    t.equal(plan.exitCode, 0, 'without --confirm the plan is printed')
    t.match(plan.stdout, /plan: restore the cluster to the time/)
    t.match(plan.stdout, /nothing was changed/)
    t.same(await rows(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'and nothing changed')

    const later = new Date(Date.now() + 3600_000).toISOString().replace('T', ' ').replace(/\..*/, '+00')
    const refused = await ctx.playbook('playbooks/restore.ts', 'restore-refused', ['--time', later, '--confirm'])
    t.not(refused.exitCode, 0, 'a target after the newest archived WAL is refused')
    t.match(refused.stdout + refused.tail, /after the newest archived WAL/)
    t.same(await rows(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'and nothing changed')

    const done = await ctx.playbook('playbooks/restore.ts', 'restore', ['--time', target, '--confirm'], 1_200_000)
    if (done.exitCode !== 0) t.comment(done.tail)
    t.equal(done.exitCode, 0, 'restore --time --confirm succeeds')
    t.comment(`restore: ${done.seconds.toFixed(0)} s; ${done.stdout.match(/restored cluster: .*/)?.[0] ?? ''}`)
    t.same(await rows(), [1, 2, 3, 4, 5], 'exactly the rows written before the target remain')

    // One leader, streaming to every other member (Patroni 3.0 calls a streaming replica "running").
    const healthy = async () => {
      const answer = await fetch(`${api}/cluster`).catch(() => undefined)
      if (!answer?.ok) return false
      const members = ((await answer.json()) as { members: Member[] }).members
      const leaders = members.filter((m) => m.role === 'leader')
      if (leaders.length !== 1) return false
      const sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
      const r = await ctx.lab.ssh(leaders[0]!.name, `sudo -u postgres psql -XAtc "${sql}"`)
      return Number(r.stdout.trim()) === members.length - 1
    }
    await until('one leader and every replica streaming', 120_000, healthy, 2000).catch(() => {})
    t.ok(await healthy(), 'one leader, every replica streaming')
    const client = await connect()
    await client.query('insert into pitr_check (n) values (11)')
    t.equal((await client.query('select pg_is_in_recovery() as r')).rows[0].r, false, 'HAProxy routes writes')
    await client.query('drop table pitr_check')
    await client.end()
  },
}
