/**
 * The hastack-snapshot script (templates/snapshots/hastack-snapshot.ejs) run here with bash against
 * fake redis-cli, redis-check-rdb and etcdctl: it takes from a replica in sync (else the primary,
 * else the first healthy etcd member), keeps `<kind>-<UTC time>.<ext>` with a `.sha256` that
 * `sha256sum -c` accepts, only the newest SNAPSHOT_KEEP, writes the textfile metrics, and leaves
 * nothing behind, not even a metrics update, when a snapshot does not verify. Credentials stay in
 * the environment: no fake client ever sees one on its command line.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { renderTemplate } from '../../lib/template.ts'
import type { Facts, HostView, Inventory } from '../../lib/types.ts'

const host: HostView = {
  name: 'mon1',
  vars: {},
  facts: {} as Facts,
  groups: [],
  inventory: {} as Inventory,
  hostvars: () => ({}),
}
const SCRIPT = renderTemplate('snapshots/hastack-snapshot.ejs', host)
const PASSWORD = 'secret-password-0123456789'

/** Fake clients: INFO answers from `info-<port>`, health from `healthy-<port>`, every call logged to `calls`. */
const FAKES: Record<string, string> = {
  'redis-cli': `#!/bin/bash
echo "redis-cli $*" >>"$FAKE/calls"
while [ $# -gt 0 ]; do
  case $1 in -p) port=$2; shift ;; --rdb) out=$2; shift ;; INFO) info=1 ;; esac
  shift
done
[ -f "$FAKE/info-$port" ] || { echo "Could not connect to Redis at 127.0.0.1:$port"; exit 1; }
if [ -n "\${info:-}" ]; then cat "$FAKE/info-$port"; exit 0; fi
[ "$REDISCLI_AUTH" = "$FAKE_PASSWORD" ] || { echo 'AUTH failed'; exit 1; }
printf 'REDIS0010 from %s' "$port" >"$out"
`,
  'redis-check-rdb': `#!/bin/bash
[ ! -f "$FAKE/corrupt" ]
`,
  etcdctl: `#!/bin/bash
echo "etcdctl $*" >>"$FAKE/calls"
for a in "$@"; do case $a in --endpoints=*) port=\${a##*:} ;; esac; done
case "$*" in
  *"endpoint health"*) [ -f "$FAKE/healthy-$port" ] ;;
  *"snapshot save"*) [ "$ETCDCTL_PASSWORD" = "$FAKE_PASSWORD" ] && printf 'etcd db from %s' "$port" >"\${@: -1}" ;;
  *"snapshot status"*) [ ! -f "$FAKE/corrupt" ] ;;
  *) exit 1 ;;
esac
`,
}

interface World {
  dir: string
  out: string
  metrics: string
  fake: string
  run(kind: string, env?: Record<string, string>): { code: number; stderr: string }
  kept(): string[]
}

function world(t: Test): World {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-snapshot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const [out, metrics, fake, bin] = ['out', 'metrics', 'fake', 'bin'].map((d) => join(dir, d)) as [
    string,
    string,
    string,
    string,
  ]
  for (const d of [out, metrics, fake, bin]) mkdirSync(d)
  for (const [name, text] of Object.entries(FAKES)) {
    writeFileSync(join(bin, name), text)
    chmodSync(join(bin, name), 0o755)
  }
  writeFileSync(join(dir, 'hastack-snapshot'), SCRIPT, { mode: 0o755 })
  return {
    dir,
    out,
    metrics,
    fake,
    run(kind, env = {}) {
      const r = spawnSync('bash', [join(dir, 'hastack-snapshot'), kind], {
        encoding: 'utf8',
        timeout: 30_000,
        env: {
          PATH: `${bin}:/usr/bin:/bin`,
          FAKE: fake,
          FAKE_PASSWORD: PASSWORD,
          SNAPSHOT_DIR: out,
          SNAPSHOT_KEEP: '3',
          SNAPSHOT_TIMEOUT: '20',
          SNAPSHOT_METRICS_DIR: metrics,
          REDIS_SOURCES: '127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003',
          REDISCLI_AUTH: PASSWORD,
          ETCD_SOURCES: 'http://127.0.0.1:2401 http://127.0.0.1:2402',
          ETCDCTL_PASSWORD: PASSWORD,
          ...env,
        },
      })
      return { code: r.status ?? -1, stderr: r.stderr }
    },
    kept: () => readdirSync(out).sort(),
  }
}

const replica = (up: boolean) => `# Replication\r\nrole:slave\r\nmaster_link_status:${up ? 'up' : 'down'}\r\n`
const PRIMARY = '# Replication\r\nrole:master\r\nconnected_slaves:2\r\n'

t.test('takes the RDB from a replica in sync, keeps it with a checksum that verifies, and reports it', async (t) => {
  const w = world(t)
  writeFileSync(join(w.fake, 'info-7001'), PRIMARY)
  writeFileSync(join(w.fake, 'info-7002'), replica(false))
  writeFileSync(join(w.fake, 'info-7003'), replica(true))
  const r = w.run('redis')
  t.equal(r.code, 0, r.stderr)
  const [rdb, sum, ...rest] = w.kept()
  t.match(rdb, /^redis-\d{8}T\d{6}Z\.rdb$/)
  t.equal(sum, `${rdb}.sha256`)
  t.same(rest, [], 'no temporary file is left')
  t.equal(readFileSync(join(w.out, rdb!), 'utf8'), 'REDIS0010 from 7003', 'from the replica in sync')
  t.equal((statSync(join(w.out, rdb!)).mode & 0o777).toString(8), '600')
  t.match(execFileSync('sha256sum', ['-c', sum!], { cwd: w.out, encoding: 'utf8' }), `${rdb}: OK`)
  const prom = readFileSync(join(w.metrics, 'hastack_backup_redis.prom'), 'utf8')
  const stamp = Number(/hastack_backup_last_success_timestamp_seconds\{kind="redis"\} (\d+)/.exec(prom)?.[1])
  t.ok(Math.abs(stamp - Date.now() / 1000) < 60, 'the success time is now')
  t.match(prom, `hastack_backup_last_size_bytes{kind="redis"} ${'REDIS0010 from 7003'.length}\n`)
  t.match(prom, '# TYPE hastack_backup_last_size_bytes gauge')
  t.equal((statSync(join(w.metrics, 'hastack_backup_redis.prom')).mode & 0o777).toString(8), '644')
  t.same(readdirSync(w.metrics), ['hastack_backup_redis.prom'])
  t.notOk(readFileSync(join(w.fake, 'calls'), 'utf8').includes(PASSWORD), 'no password on a command line')
})

t.test('takes the RDB from the primary when no replica is in sync, and says so', async (t) => {
  const w = world(t)
  writeFileSync(join(w.fake, 'info-7001'), replica(false))
  writeFileSync(join(w.fake, 'info-7002'), PRIMARY)
  const r = w.run('redis')
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, 'no replica is in sync: taking the snapshot from the primary 127.0.0.1:7002')
  t.equal(readFileSync(join(w.out, w.kept()[0]!), 'utf8'), 'REDIS0010 from 7002')
})

t.test("with REDIS_CLI_TLS, every redis-cli call takes the stack's TLS options", async (t) => {
  const w = world(t)
  writeFileSync(join(w.fake, 'info-7001'), PRIMARY)
  writeFileSync(join(w.fake, 'info-7002'), replica(true))
  const r = w.run('redis', { REDIS_CLI_TLS: '--tls --cacert /etc/hastack/tls/ca.crt' })
  t.equal(r.code, 0, r.stderr)
  const calls = readFileSync(join(w.fake, 'calls'), 'utf8').trim().split('\n')
  t.ok(calls.length >= 2)
  for (const call of calls) t.match(call, /^redis-cli --tls --cacert \/etc\/hastack\/tls\/ca\.crt --no-auth-warning /)
  t.equal(readFileSync(join(w.out, w.kept()[0]!), 'utf8'), 'REDIS0010 from 7002')
})

t.test('fails, keeping nothing, when no Redis server answers', async (t) => {
  const w = world(t)
  const r = w.run('redis')
  t.not(r.code, 0)
  t.match(r.stderr, 'no Redis server of 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 answers')
  t.same(w.kept(), [])
  t.same(readdirSync(w.metrics), [])
})

t.test(
  'keeps only the newest SNAPSHOT_KEEP of a kind, with their checksums, and no other kind is touched',
  async (t) => {
    const w = world(t)
    writeFileSync(join(w.fake, 'info-7001'), replica(true))
    const old = ['20260101T000000Z', '20260102T000000Z', '20260103T000000Z'].map((s) => `redis-${s}.rdb`)
    for (const name of old) {
      writeFileSync(join(w.out, name), 'old')
      writeFileSync(join(w.out, `${name}.sha256`), 'old')
    }
    writeFileSync(join(w.out, 'etcd-20250101T000000Z.db'), 'another kind')
    const r = w.run('redis')
    t.equal(r.code, 0, r.stderr)
    const rdbs = w.kept().filter((n) => n.endsWith('.rdb'))
    t.equal(rdbs.length, 3)
    t.same(rdbs.slice(0, 2), old.slice(1), 'the oldest went')
    t.notOk(existsSync(join(w.out, `${old[0]}.sha256`)), 'with its checksum')
    t.ok(existsSync(join(w.out, 'etcd-20250101T000000Z.db')))
    t.match(r.stderr, `removed ${old[0]} (more than 3 kept)`)
  },
)

t.test('a snapshot that does not verify is not kept and leaves the last metrics as they were', async (t) => {
  const w = world(t)
  writeFileSync(join(w.fake, 'info-7001'), replica(true))
  writeFileSync(join(w.metrics, 'hastack_backup_redis.prom'), 'earlier\n')
  writeFileSync(join(w.fake, 'corrupt'), '')
  const r = w.run('redis')
  t.not(r.code, 0)
  t.match(r.stderr, 'the RDB from 127.0.0.1:7001 does not verify')
  t.same(w.kept(), [], 'no snapshot and no temporary file')
  t.equal(readFileSync(join(w.metrics, 'hastack_backup_redis.prom'), 'utf8'), 'earlier\n')
})

t.test('takes the etcd snapshot from the first healthy member', async (t) => {
  const w = world(t)
  writeFileSync(join(w.fake, 'healthy-2402'), '')
  const r = w.run('etcd')
  t.equal(r.code, 0, r.stderr)
  const [db, sum] = w.kept()
  t.match(db, /^etcd-\d{8}T\d{6}Z\.db$/)
  t.equal(readFileSync(join(w.out, db!), 'utf8'), 'etcd db from 2402')
  t.match(execFileSync('sha256sum', ['-c', sum!], { cwd: w.out, encoding: 'utf8' }), `${db}: OK`)
  t.match(
    readFileSync(join(w.metrics, 'hastack_backup_etcd.prom'), 'utf8'),
    'hastack_backup_last_size_bytes{kind="etcd"} 17',
  )
  t.match(readFileSync(join(w.fake, 'calls'), 'utf8'), '--command-timeout=20s snapshot save')
})

t.test('fails when no etcd member is healthy, and refuses an unknown kind', async (t) => {
  const w = world(t)
  const r = w.run('etcd')
  t.not(r.code, 0)
  t.match(r.stderr, 'no etcd member of http://127.0.0.1:2401 http://127.0.0.1:2402 is healthy')
  t.same(w.kept(), [])
  const unknown = w.run('postgres')
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, 'usage: hastack-snapshot redis|etcd')
})
