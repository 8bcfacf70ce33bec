/**
 * The main job, as the README's demo runs it: boot inventory/lab-small.yml
 * (three hosts, every role colocated), converge playbooks/site.ts from bare
 * hosts through `npx zx`, then converge again and require `changed: 0`
 * everywhere, and `--check` to report nothing either. Checks the services
 * answer through HAProxy. Needs root (the lab).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import pg from 'pg'
import { Redis } from 'ioredis'
import { parse } from 'yaml'
import { Lab } from '../../lab/lab.ts'
import { runPlaybook } from './playbook-run.ts'

const repo = resolve(import.meta.dirname, '../..')
// A copy of inventory/lab-small.yml in a directory of its own, so the lab's host_vars and the
// generated secrets of this test never touch a demo lab the user may have up.
const dir = mkdtempSync(join(tmpdir(), 'hastack-site-'))
const inventory = join(dir, 'lab-small.yml')
writeFileSync(
  inventory,
  readFileSync(join(repo, 'inventory/lab-small.yml'), 'utf8').replace(
    'ssh_key: ../.lab/ssh/id_ed25519',
    `ssh_key: ${repo}/.lab/ssh/id_ed25519`,
  ),
)
const lab = new Lab({ inventory, name: 'site-ci', log: (m) => t.comment(`lab: ${m}`) })

t.teardown(async () => {
  await lab.down().catch((e) => t.comment(`lab down failed: ${e}`))
  rmSync(dir, { recursive: true, force: true })
})

async function site(label: string, extra: string[] = []) {
  const r = await runPlaybook({
    cwd: repo,
    launcher: 'zx',
    playbook: 'playbooks/site.ts',
    inventory,
    json: join(repo, `reports/site-${label}.json`),
    extra,
    timeoutMs: 1_500_000,
  })
  if (r.exitCode !== 0) t.comment(r.tail)
  t.comment(`site ${label}: ${r.seconds.toFixed(0)} s, totals ${JSON.stringify(r.totals)}`)
  return { exitCode: r.exitCode, totals: r.totals, changed: r.changed, seconds: r.seconds, output: r.stdout }
}

t.test('site.ts converges bare lab-small hosts, then changes nothing', async (t) => {
  const boot = await lab.up()
  t.comment(`lab up: ${JSON.stringify(boot)}`)
  const first = await site('first')
  t.equal(first.exitCode, 0, 'first converge succeeds')
  t.ok(first.totals.changed > 50, 'the first run did the work')
  t.match(first.output, /PLAY RECAP/)
  const second = await site('second')
  t.equal(second.exitCode, 0)
  t.same(second.changed, [], 'second run: changed 0 on every host')
  const check = await site('check', ['--check'])
  t.equal(check.exitCode, 0)
  t.same(check.changed, [], '--check after a converge reports nothing to change')
})

t.test('clients reach PostgreSQL and Redis through HAProxy on node1', async (t) => {
  const secrets = parse(readFileSync(join(dir, 'lab-small.secrets.yml'), 'utf8'))
  const lb = lab.host('node1').address
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
})
