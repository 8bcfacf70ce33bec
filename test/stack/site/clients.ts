/** Clients reach PostgreSQL (write port) and Redis (the safe endpoint) through HAProxy, on the VIP. */
import pg from 'pg'
import { Redis } from 'ioredis'
import type { SiteCheck } from './context.ts'

export const clients: SiteCheck = {
  name: 'clients reach PostgreSQL and Redis through HAProxy',
  destructive: false,
  async run(t, ctx) {
    const secrets = ctx.secrets()
    const lb = ctx.clientAddress()
    const client = new pg.Client({
      host: lb,
      port: 5000,
      user: 'app',
      database: 'app',
      password: secrets.postgresql_app_password,
      connectionTimeoutMillis: 5000,
    })
    await client.connect()
    t.teardown(() => client.end())
    const { rows } = await client.query('select pg_is_in_recovery() as replica')
    t.equal(rows[0].replica, false, 'port 5000 reaches the primary')
    const redis = new Redis({
      host: lb,
      port: 6380,
      password: secrets.redis_password,
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
