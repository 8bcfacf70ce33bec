/**
 * The app's bundles (roles/app/bundles.ts) are whole programs: each loads with nothing beside it
 * (pg and ioredis inside) on plain `node`, and a program started without its environment stops at
 * once with exit 78 naming the first missing variable, as systemd will show it.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { APP_PROGRAMS, appBundles, DIST_DIR, KEY_FILE, sourcesKey } from '../../roles/app/bundles.ts'

t.test('each bundle runs alone and refuses a missing environment with exit 78', async (t) => {
  const bundles = await appBundles()
  // A directory with no node_modules anywhere above it: the bundle must need nothing else.
  const dir = mkdtempSync(join(tmpdir(), 'hastack-bundle-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const program of APP_PROGRAMS) {
    const file = join(dir, `${program}.cjs`)
    writeFileSync(file, bundles[program])
    const run = spawnSync(process.execPath, [file], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 20_000,
    })
    t.equal(run.status, 78, `${program}: exit 78`)
    t.equal(run.stderr.trim(), `${program}: APP_LISTEN_ADDRESS is not set`, `${program}: names the variable`)
  }
})

t.test('the bundles hold pg and ioredis and nothing the hosts would have to install', async (t) => {
  const bundles = await appBundles()
  for (const program of APP_PROGRAMS) {
    const required = [...bundles[program].matchAll(/\brequire\("([^"./][^"]*)"\)/g)].map((m) => m[1]!)
    const foreign = required.filter((name) => !name.startsWith('node:') && !BUILTINS.has(name) && name !== 'pg-native')
    t.same([...new Set(foreign)], [], `${program}: requires only Node's own modules`)
  }
  t.match(bundles.worker, /BLMOVE|blmove/, 'the worker holds ioredis')
  t.match(bundles.result, /scram-sha-256|SCRAM-SHA-256/, 'the result program holds pg')
})

const BUILTINS = new Set((await import('node:module')).builtinModules)

t.test('written bundles carry the key of their sources: the next process reads them instead of building', async (t) => {
  const bundles = await appBundles()
  t.equal(readFileSync(KEY_FILE, 'utf8').trim(), await sourcesKey(), 'the key names these sources')
  for (const program of APP_PROGRAMS)
    t.equal(readFileSync(join(DIST_DIR, `${program}.cjs`), 'utf8'), bundles[program], `${program}.cjs is the bundle`)
  const script = `import { appBundles } from ${JSON.stringify(join(import.meta.dirname, '../../roles/app/bundles.ts'))}
const b = await appBundles(); console.log(JSON.stringify({ vote: b.vote.length }))`
  const written = statSync(join(DIST_DIR, 'vote.cjs')).ino
  const run = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  const answer = JSON.parse(run.stdout) as { vote: number }
  t.equal(answer.vote, bundles.vote.length, 'the same vote bundle, read back')
  t.equal(statSync(join(DIST_DIR, 'vote.cjs')).ino, written, 'not built and written again')
})
