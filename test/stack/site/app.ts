/**
 * The vote app on the converged lab: every app host runs its three programs and answers /healthz
 * on the vote and result ports (asked from a HAProxy host: the firewall lets only HAProxy reach them); a
 * vote cast through HAProxy's vote port is acknowledged with its id, then shows in /results (through
 * HAProxy's result port) and in the votes table within a bounded time; the same voter's second, different
 * vote replaces the first and counts `applied` 2.
 */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { until } from '../until.ts'
import type { SiteCheck } from './context.ts'

const PROGRAMS = ['hastack-vote', 'hastack-worker', 'hastack-result']
/** Longest a vote may take from its 201 to PostgreSQL and the results (worker and replica lag). */
const VOTE_VISIBLE_MS = 30_000

interface Counts {
  a: number
  b: number
  total: number
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) })
  return { status: r.status, body: (await r.json()) as T }
}

export const app: SiteCheck = {
  name: 'app: votes through HAProxy reach PostgreSQL and the results',
  destructive: false,
  async run(t, ctx) {
    const apps = ctx.hosts('app')
    t.ok(apps.length >= 2, `two app hosts or more (${apps.join(', ')})`)
    const [balancer] = ctx.hosts('haproxy')
    for (const host of apps) {
      const active = await ctx.lab.ssh(host, `systemctl is-active ${PROGRAMS.join(' ')}`)
      t.same(active.stdout.trim().split('\n'), ['active', 'active', 'active'], `${host}: the three programs run`)
      const address = ctx.lab.host(host).address
      for (const port of [8080, 8081]) {
        const url = `http://${address}:${port}/healthz`
        const health = await ctx.lab.ssh(balancer!, `curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${url}`)
        t.equal(health.stdout.trim(), '200', `${host}:${port}/healthz answers 200 (asked from ${balancer})`)
      }
    }
    const lb = ctx.lab.host(balancer).address
    const db = new pg.Client({
      host: lb,
      port: 5000,
      user: 'app',
      database: 'app',
      password: ctx.secrets().postgresql_app_password,
      ssl: ctx.pgTls(),
      connectionTimeoutMillis: 5000,
    })
    await db.connect()
    t.teardown(() => db.end())
    const before = await until('the results page', 30_000, async () => {
      const r = await getJson<Counts>(`http://${lb}:8088/results`)
      return r.status === 200 ? r.body : undefined
    })
    const voter = `site-${randomUUID()}`
    const cast = async (choice: 'a' | 'b') => {
      const r = await fetch(`http://${lb}:80/vote`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ voter, choice }),
        signal: AbortSignal.timeout(10_000),
      })
      const body = (await r.json()) as { ok: boolean; id: string }
      t.equal(r.status, 201, `vote ${choice} acknowledged`)
      return body.id
    }
    const row = async () =>
      (await db.query('SELECT choice, vote_id, applied FROM votes WHERE voter = $1', [voter])).rows[0] as
        { choice: string; vote_id: string; applied: number } | undefined
    const cast1 = Date.now()
    const first = await cast('a')
    const stored = await until('the vote in the votes table', VOTE_VISIBLE_MS, async () => {
      const r = await row()
      return r?.vote_id === first ? r : undefined
    })
    t.same(stored, { choice: 'a', vote_id: first, applied: 1 }, 'stored once, under its id')
    t.comment(`vote in PostgreSQL ${Date.now() - cast1} ms after the cast`)
    const counted = await until('the vote in /results', VOTE_VISIBLE_MS, async () => {
      const r = await getJson<Counts>(`http://${lb}:8088/results`)
      return r.status === 200 && r.body.total > before.total ? r.body : undefined
    })
    t.ok(counted.a > before.a, 'counted for a in /results')
    const second = await cast('b')
    const replaced = await until('the second vote in the votes table', VOTE_VISIBLE_MS, async () => {
      const r = await row()
      return r?.vote_id === second ? r : undefined
    })
    t.same(replaced, { choice: 'b', vote_id: second, applied: 2 }, 'the second vote replaced the first: applied 2')
    const page = await fetch(`http://${lb}:80/`, { signal: AbortSignal.timeout(5000) })
    t.match(await page.text(), /id="vote-a"/, 'the vote page through HAProxy')
  },
}
