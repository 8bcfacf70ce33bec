/**
 * bin/play.mjs, the bundled start of a playbook: it runs the playbook with its own arguments from an esbuild
 * bundle, builds that bundle again whenever anything it was built from changed (so a stale bundle never runs),
 * keeps `import.meta.url` naming each source file and `__dirname` each bundled package file, refuses what is
 * not a playbook of its repository, and lists exactly the tasks that `node --import=tsx` lists for the site
 * playbook.
 */
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'

const REPO = resolve(import.meta.dirname, '../..')
const LAUNCHER = join(REPO, 'bin/play.mjs')

/** A repository of its own: the launcher, node_modules (for esbuild), one playbook importing one module. */
function fixtureRepo(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-play-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'bin'))
  mkdirSync(join(dir, 'lib'))
  mkdirSync(join(dir, 'playbooks'))
  copyFileSync(LAUNCHER, join(dir, 'bin/play.mjs'))
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'))
  copyFileSync(join(REPO, 'tsconfig.json'), join(dir, 'tsconfig.json'))
  writeGreeting(dir, 'hello')
  writeFileSync(
    join(dir, 'playbooks/greet.ts'),
    "import { greeting, source } from '../lib/greet.ts'\n" +
      'const args: string[] = process.argv.slice(3)\n' +
      'console.log(JSON.stringify({ greeting, source, args }))\n',
  )
  return dir
}

function writeGreeting(dir: string, word: string): void {
  writeFileSync(
    join(dir, 'lib/greet.ts'),
    `export const greeting: string = '${word}'\nexport const source: string = import.meta.url\n`,
  )
}

function play(cwd: string, args: string[]) {
  const run = spawnSync(process.execPath, ['bin/play.mjs', ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH },
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

t.test(
  'runs the playbook from its bundle with the playbook arguments and each source file import.meta.url',
  async (t) => {
    const dir = fixtureRepo(t)
    const run = play(dir, ['playbooks/greet.ts', '-i', 'inventory.yml'])
    t.equal(run.status, 0, run.stderr)
    t.same(JSON.parse(run.stdout), {
      greeting: 'hello',
      source: `file://${join(dir, 'lib/greet.ts')}`,
      args: ['-i', 'inventory.yml'],
    })
    t.match(readFileSync(join(dir, '.build/playbooks/greet.mjs'), 'utf8'), /hello/, 'the bundle is kept in .build/')
  },
)

t.test('builds the bundle again when an imported source changes, so a stale bundle never runs', async (t) => {
  const dir = fixtureRepo(t)
  t.equal(JSON.parse(play(dir, ['playbooks/greet.ts']).stdout).greeting, 'hello')
  writeGreeting(dir, 'changed')
  t.equal(JSON.parse(play(dir, ['playbooks/greet.ts']).stdout).greeting, 'changed', 'the edited module runs')
  writeGreeting(dir, 'hello')
  t.equal(JSON.parse(play(dir, ['playbooks/greet.ts']).stdout).greeting, 'hello', 'and the edit undone runs too')
})

t.test(
  'a source touched but not changed keeps the bundle; a changed one old enough to be judged by its time does not',
  async (t) => {
    const dir = fixtureRepo(t)
    const source = join(dir, 'lib/greet.ts')
    const longAgo = new Date(Date.now() - 60_000)
    utimesSync(source, longAgo, longAgo)
    play(dir, ['playbooks/greet.ts'])
    const bundle = join(dir, '.build/playbooks/greet.mjs')
    const built = statSync(bundle).mtimeMs
    utimesSync(source, new Date(), new Date())
    t.equal(JSON.parse(play(dir, ['playbooks/greet.ts']).stdout).greeting, 'hello')
    t.equal(statSync(bundle).mtimeMs, built, 'the same content under a new time: the bundle is not built again')
    writeGreeting(dir, 'hellO')
    const alsoLongAgo = new Date(Date.now() - 50_000)
    utimesSync(source, alsoLongAgo, alsoLongAgo)
    t.equal(
      JSON.parse(play(dir, ['playbooks/greet.ts']).stdout).greeting,
      'hellO',
      'same size, other time: hashed, rebuilt',
    )
  },
)

t.test('bundles the npm packages a playbook imports, each file keeping its own __dirname and require', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-play-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const sub of ['bin', 'playbooks', 'node_modules/where']) mkdirSync(join(dir, sub), { recursive: true })
  copyFileSync(LAUNCHER, join(dir, 'bin/play.mjs'))
  copyFileSync(join(REPO, 'tsconfig.json'), join(dir, 'tsconfig.json'))
  // Every installed package but the fixture's own (the test runner's loader may need them).
  for (const name of readdirSync(join(REPO, 'node_modules')))
    if (name !== 'where') symlinkSync(join(REPO, 'node_modules', name), join(dir, 'node_modules', name))
  writeFileSync(join(dir, 'node_modules/where/package.json'), '{ "name": "where", "main": "index.js" }\n')
  writeFileSync(
    join(dir, 'node_modules/where/index.js'),
    "module.exports = { dir: __dirname, file: __filename, sep: require('node:path').sep }\n",
  )
  writeFileSync(join(dir, 'playbooks/where.ts'), "import where from 'where'\nconsole.log(JSON.stringify(where))\n")
  const run = play(dir, ['playbooks/where.ts'])
  t.equal(run.status, 0, run.stderr)
  t.same(JSON.parse(run.stdout), {
    dir: join(dir, 'node_modules/where'),
    file: join(dir, 'node_modules/where/index.js'),
    sep: '/',
  })
  t.match(
    readFileSync(join(dir, '.build/playbooks/where.mjs'), 'utf8'),
    /module\.exports = \{ dir: __dirname/,
    'the package is in the bundle',
  )
  const key = JSON.parse(readFileSync(join(dir, '.build/playbooks/where.key'), 'utf8'))
  t.ok(key.inputs['node_modules/where/index.js'], "the package's file is an input of the key")
})

t.test('builds the bundle again when its key names other tooling', async (t) => {
  const dir = fixtureRepo(t)
  play(dir, ['playbooks/greet.ts'])
  const keyFile = join(dir, '.build/playbooks/greet.key')
  const key = JSON.parse(readFileSync(keyFile, 'utf8'))
  writeFileSync(keyFile, JSON.stringify({ ...key, tooling: { ...key.tooling, esbuild: '0.0.0' } }))
  writeFileSync(join(dir, '.build/playbooks/greet.mjs'), "console.log('stale')\n")
  const run = play(dir, ['playbooks/greet.ts'])
  t.equal(JSON.parse(run.stdout).greeting, 'hello', 'the stale bundle is not run')
  t.same(JSON.parse(readFileSync(keyFile, 'utf8')).tooling, key.tooling, 'the key names the current tooling again')
})

t.test('refuses a file outside its repository or not a .ts file with exit 1', async (t) => {
  const dir = fixtureRepo(t)
  for (const args of [[], ['/etc/passwd'], ['../outside.ts'], ['lib/greet.js']]) {
    const run = play(dir, args)
    t.equal(run.status, 1, `${args.join(' ') || 'no argument'}: exit 1`)
    t.match(run.stderr, /name a playbook's \.ts file inside/)
  }
})

t.test('lists exactly the tasks the TypeScript loader lists for the site playbook', async (t) => {
  const args = ['playbooks/site.ts', '-i', 'inventory/lab-small.yml', '--list-tasks']
  const bundled = spawnSync(process.execPath, ['bin/play.mjs', ...args], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  })
  const loaded = spawnSync(process.execPath, ['--import=tsx', ...args], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(bundled.status, 0, bundled.stderr)
  t.equal(loaded.status, 0, loaded.stderr)
  t.ok(bundled.stdout.includes('Close every port the stack does not use'), 'the listing has the firewall play')
  t.equal(bundled.stdout, loaded.stdout)
})
