/**
 * The Redis and etcd snapshots on the backup host (issue 11): a key written through the Redis
 * endpoint, then both snapshot services started as their timers start them. The newest RDB and
 * etcd snapshot are kept (0600, in a 0700 directory) with checksums that verify, no more than
 * snapshots_keep of each, the RDB taken from a replica, and node_exporter serves their metrics.
 * The RDB restored into a scratch redis-server holds the key; the etcd snapshot restored into a
 * scratch member holds Patroni's keys. The scratch servers are transient units on loopback ports,
 * stopped and removed at the end.
 */
import { Redis } from 'ioredis'
import { quote } from '../../../lib/connection/quote.ts'
import { until } from '../until.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'

const DIR = '/var/backups/hastack'
const KEEP = 7
const SCRATCH_REDIS_PORT = 6391
const SCRATCH_ETCD = { client: 23790, peer: 23800 }
const PATRONI_PREFIX = '/service/hastack/'

/** Runs a sh script as root on a lab host; fails the check with its output when it fails. */
async function root(ctx: SiteContext, host: string, script: string, timeoutMs = 60_000): Promise<string> {
  const r = await ctx.lab.ssh(host, `sudo sh -c ${quote(script)}`, { timeoutMs })
  if (r.code !== 0) throw new Error(`on ${host} (exit ${r.code}): ${script}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

/** The newest kept snapshot of a kind (its path). */
async function newest(ctx: SiteContext, host: string, kind: string, ext: string): Promise<string> {
  const listed = await root(ctx, host, `find ${DIR} -maxdepth 1 -name '${kind}-*.${ext}' | sort | tail -n 1`)
  return listed.trim()
}

/** A transient unit that runs a scratch server, stopped (and forgotten when it failed) at the end. */
function scratchUnit(t: Tap, ctx: SiteContext, host: string, unit: string, dir: string): void {
  t.teardown(() =>
    root(
      ctx,
      host,
      `systemctl stop ${unit} 2>/dev/null; systemctl reset-failed ${unit} 2>/dev/null; rm -rf ${dir}; true`,
    ),
  )
}

async function redisKey(ctx: SiteContext): Promise<{ key: string; value: string }> {
  const [balancer] = ctx.hosts('haproxy')
  const redis = new Redis({
    host: ctx.lab.host(balancer!).address,
    port: 6380,
    password: ctx.secrets().redis_password,
    ...ctx.redisTls(),
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 1,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    const key = `snapshots-check:${Date.now()}`
    const value = `written before the snapshot ${new Date().toISOString()}`
    await redis.set(key, value)
    // Both replicas have it before the snapshot is taken from one of them.
    await redis.call('WAIT', 2, 10_000)
    return { key, value }
  } finally {
    redis.disconnect()
  }
}

/** The role (`master`/`slave`) of the Redis server at `address:port`. */
async function redisRole(ctx: SiteContext, source: string): Promise<string> {
  const [host, port] = source.split(':')
  const redis = new Redis({
    host,
    port: Number(port),
    password: ctx.secrets().redis_password,
    ...ctx.redisTls(),
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 1,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return /role:(\w+)/.exec(await redis.info('replication'))?.[1] ?? 'unknown'
  } finally {
    redis.disconnect()
  }
}

export const snapshots: SiteCheck = {
  name: 'snapshots of Redis and etcd are kept, verified, reported, and restore into scratch servers',
  destructive: false,
  async run(t, ctx) {
    const [backup] = ctx.hosts('backup_repo')
    const host = backup!
    const started = Math.floor(Date.now() / 1000)
    const { key, value } = await redisKey(ctx)

    const taken = Date.now()
    await root(ctx, host, 'systemctl start hastack-snapshot-redis.service hastack-snapshot-etcd.service', 300_000)
    t.comment(`both snapshots taken in ${((Date.now() - taken) / 1000).toFixed(1)} s`)

    const rdb = await newest(ctx, host, 'redis', 'rdb')
    const db = await newest(ctx, host, 'etcd', 'db')
    for (const file of [rdb, db]) {
      const stamp = /-(\d{8}T\d{6}Z)\./.exec(file)?.[1] ?? ''
      const when = Date.parse(stamp.replace(/(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z/, '$1-$2-$3T$4:$5:$6Z')) / 1000
      t.ok(when >= started - 1, `${file} was taken by this check`)
      const name = file.slice(DIR.length + 1)
      t.match(await root(ctx, host, `cd ${DIR} && sha256sum -c ${name}.sha256`), `${name}: OK`, 'its checksum verifies')
      t.equal((await root(ctx, host, `stat -c '%a %U' ${file}`)).trim(), '600 root', 'readable by root only')
    }
    t.equal((await root(ctx, host, `stat -c '%a %U' ${DIR}`)).trim(), '700 root')
    const counts = await root(ctx, host, `ls -1 ${DIR} | sed -n 's/^\\(redis\\|etcd\\)-.*\\.\\(rdb\\|db\\)$/\\1/p'`)
    for (const kind of ['redis', 'etcd']) {
      const kept = counts.split('\n').filter((k) => k === kind).length
      t.ok(kept >= 1 && kept <= KEEP, `${kept} ${kind} snapshots kept (at most ${KEEP})`)
    }
    t.equal((await root(ctx, host, `find ${DIR} -name '.*' -type f`)).trim(), '', 'no temporary file left')

    const journal = await root(ctx, host, 'journalctl -u hastack-snapshot-redis -n 30 --no-pager -o cat')
    const source = [...journal.matchAll(/kept \S+ \(\d+ bytes from (\S+) in/g)].pop()?.[1] ?? ''
    t.equal(await redisRole(ctx, source), 'slave', `the RDB came from a replica (${source})`)

    const metrics = await (await fetch(`http://${ctx.lab.host(host).address}:9100/metrics`)).text()
    for (const kind of ['redis', 'etcd']) {
      const at = new RegExp(`^hastack_backup_last_success_timestamp_seconds\\{kind="${kind}"\\} (\\S+)$`, 'm')
      t.ok(Number(at.exec(metrics)?.[1]) >= started, `node_exporter reports the ${kind} snapshot's time`)
      const size = new RegExp(`^hastack_backup_last_size_bytes\\{kind="${kind}"\\} (\\S+)$`, 'm')
      t.ok(Number(size.exec(metrics)?.[1]) > 0, `and its size`)
    }
    t.match(metrics, /^node_textfile_scrape_error 0$/m, 'node_exporter reads every textfile')

    await t.test('the newest RDB restored into a scratch redis-server holds the key written before it', async (t) => {
      const dir = '/var/tmp/hastack-scratch-redis'
      const unit = 'hastack-scratch-redis'
      scratchUnit(t, ctx, host, unit, dir)
      await root(
        ctx,
        host,
        [
          `rm -rf ${dir} && mkdir -m 0700 ${dir} && cp ${rdb} ${dir}/dump.rdb`,
          `systemd-run --quiet --collect --unit=${unit} -p RuntimeMaxSec=300 redis-server --port ${SCRATCH_REDIS_PORT}` +
            ` --bind 127.0.0.1 --dir ${dir} --dbfilename dump.rdb --save '' --appendonly no`,
        ].join(' && '),
      )
      const cli = `redis-cli --raw -p ${SCRATCH_REDIS_PORT}`
      const got = await until('the scratch redis-server has loaded the RDB', 60_000, async () => {
        const r = await ctx.lab.ssh(host, `${cli} GET ${quote(key)}`)
        return r.code === 0 && !/LOADING|Could not connect/.test(r.stdout + r.stderr) ? r.stdout.trim() : undefined
      })
      t.equal(got, value, `the scratch server has ${key}`)
      t.ok(Number((await ctx.lab.ssh(host, `${cli} DBSIZE`)).stdout.trim()) >= 1)
    })

    await t.test('the newest etcd snapshot restored into a scratch member holds the Patroni keys', async (t) => {
      const dir = '/var/tmp/hastack-scratch-etcd'
      const unit = 'hastack-scratch-etcd'
      scratchUnit(t, ctx, host, unit, dir)
      const peer = `http://127.0.0.1:${SCRATCH_ETCD.peer}`
      const client = `http://127.0.0.1:${SCRATCH_ETCD.client}`
      const cluster = `--name scratch --initial-cluster scratch=${peer} --initial-advertise-peer-urls ${peer}`
      await root(
        ctx,
        host,
        [
          `rm -rf ${dir} && mkdir -m 0700 ${dir}`,
          `ETCDCTL_API=3 etcdctl snapshot restore ${db} --data-dir ${dir}/data ${cluster} >${dir}/restore.log 2>&1`,
          `systemd-run --quiet --collect --unit=${unit} -p RuntimeMaxSec=300 etcd ${cluster} --data-dir ${dir}/data` +
            ` --listen-peer-urls ${peer} --listen-client-urls ${client} --advertise-client-urls ${client}`,
        ].join(' && '),
      )
      // As etcd's root, whose password reaches etcdctl from the snapshot unit's settings file only.
      const get =
        'systemd-run --quiet --collect --pipe --wait -p EnvironmentFile=/etc/hastack/snapshot-etcd.env ' +
        `etcdctl --endpoints=${client} --command-timeout=5s get --prefix ${PATRONI_PREFIX} --keys-only`
      const keys = await until('the scratch etcd member answers', 60_000, async () => {
        const r = await ctx.lab.ssh(host, `sudo ${get}`, { timeoutMs: 20_000 })
        return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : undefined
      })
      for (const wanted of ['leader', 'config', 'initialize'])
        t.ok(keys.includes(`${PATRONI_PREFIX}${wanted}`), `${PATRONI_PREFIX}${wanted} is there`)
      t.ok(
        keys.some((k) => k.startsWith(`${PATRONI_PREFIX}members/`)),
        'the members are there',
      )
    })
  },
}
