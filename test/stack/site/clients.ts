/**
 * Clients reach PostgreSQL (write port) and Redis (the safe endpoint) through HAProxy, on the VIP; and
 * the one way the site checks open a PostgreSQL client as the app does (`appDatabase`).
 */
import pg from 'pg'
import { Redis } from 'ioredis'
import type { SiteCheck, SiteContext } from './context.ts'

/** A connected client of the app's database through HAProxy's write port (5000) where clients connect. */
export async function appDatabase(ctx: SiteContext): Promise<pg.Client> {
  const client = new pg.Client({
    host: ctx.clientAddress(),
    port: 5000,
    user: 'app',
    database: 'app',
    password: ctx.secrets().postgresql_app_password,
    ssl: ctx.pgTls(),
    connectionTimeoutMillis: 5000,
  })
  await client.connect()
  return client
}

export const clients: SiteCheck = {
  name: 'clients reach PostgreSQL and Redis through HAProxy',
  destructive: false,
  async run(t, ctx) {
    const client = await appDatabase(ctx)
    t.teardown(() => client.end())
    const { rows } = await client.query('select pg_is_in_recovery() as replica')
    t.equal(rows[0].replica, false, 'port 5000 reaches the primary')
    const redis = new Redis({
      host: ctx.clientAddress(),
      port: 6380,
      password: ctx.secrets().redis_password,
      ...ctx.redisTls(),
      lazyConnect: true,
      connectTimeout: 3000,
      maxRetriesPerRequest: 1,
    })
    redis.on('error', () => {})
    t.teardown(() => redis.disconnect())
    await redis.connect()
    t.equal(await redis.set('site-test', 'ok'), 'OK', 'the Redis endpoint accepts writes')
    t.equal(await redis.get('site-test'), 'ok')
  },
}
