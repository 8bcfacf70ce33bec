/**
 * The app role on scripted app hosts: a fresh host gets Node.js, the unprivileged user, the three
 * bundles (exactly what esbuild built), a root-only environment file and three hardened units,
 * and its programs started once; a converged host changes and restarts nothing; a changed bundle
 * restarts only its program and a changed environment all three; no secret reaches the output,
 * even with --diff; check mode writes nothing; and inventories the app cannot work with are refused.
 */
import t from 'tap'
import { appRole } from '../../roles/app/index.ts'
import { appBundles } from '../../roles/app/bundles.ts'
import { secretValues } from '../../lib/inventory/index.ts'
import { clearSecrets, registerSecrets } from '../../lib/output/mask.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'app', hosts: 'app', roles: [appRole] }]
const ENV_FILE = '/etc/hastack-app/app.env'
const UNITS = { vote: 'hastack-vote', worker: 'hastack-worker', result: 'hastack-result' }
const PROGRAMS = ['vote', 'worker', 'result'] as const
const SECRETS = ['redis_password', 'sentinel_password', 'postgresql_app_password']

/** The shared role-test inventory with two app hosts. */
function appInventory(vars: Record<string, unknown> = {}): Record<string, unknown> {
  const doc = stackInventory(vars) as { all: { children: Record<string, unknown> } }
  doc.all.children.app = { hosts: { app1: { address: '10.0.0.51' }, app2: { address: '10.0.0.52' } } }
  return doc
}

/** App hosts that know the user task's commands and answer /healthz while the program on that port runs. */
function answerAppProbes(lab: ScriptedLab, conn: ScriptedConnection): void {
  let userExists = false
  conn.on(/^getent passwd hastack-app && id -nG hastack-app$/, () =>
    userExists ? { stdout: 'hastack-app:x:998:998::/home/hastack-app:/usr/sbin/nologin\nhastack-app\n' } : { code: 2 },
  )
  conn.on(/^useradd /, (command, _o, c) => {
    userExists = true
    c.mutated(command)
    return {}
  })
  conn.on(/urlopen\("http:\/\/[\d.]+:\d+\/healthz"/, (command) => {
    const vars = lab.inventory.hosts.get(conn.host)!.vars
    const [, address = '', port = ''] = /http:\/\/([\d.]+):(\d+)\//.exec(command)!
    const unit = Number(port) === vars.app_vote_port ? UNITS.vote : UNITS.result
    return { code: address === conn.address && conn.service(unit).active ? 0 : 1 }
  })
}

async function appLab(document = appInventory()): Promise<ScriptedLab> {
  const lab = await scriptedLab(document)
  for (const name of ['app1', 'app2']) answerAppProbes(lab, lab.host(name))
  return lab
}

const restarts = (conn: ScriptedConnection) => PROGRAMS.map((p) => conn.service(UNITS[p]).restarts)

t.test('a fresh app host gets Node.js, its user, the bundles, a root-only environment and three units', async (t) => {
  const lab = await appLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const app1 = lab.host('app1')
  t.ok(app1.packages.has('nodejs'))
  t.ok(app1.mutations.some((m) => /^useradd --system --shell \/usr\/sbin\/nologin hastack-app$/.test(m)))
  const bundles = await appBundles()
  for (const program of PROGRAMS) {
    t.equal(app1.readFile(`/opt/hastack-app/${program}.cjs`), bundles[program], `${program}: the built bundle`)
    const unit = app1.readFile(`/etc/systemd/system/${UNITS[program]}.service`) ?? ''
    for (const line of [
      `ExecStart=/usr/bin/node /opt/hastack-app/${program}.cjs`,
      'User=hastack-app',
      `EnvironmentFile=${ENV_FILE}`,
      'Restart=always',
      'NoNewPrivileges=true',
      'ProtectSystem=strict',
      'PrivateTmp=true',
    ])
      t.ok(unit.split('\n').includes(line), `${program} unit: ${line}`)
  }
  t.match(app1.fs.get(ENV_FILE), { owner: 'root', group: 'root', mode: '0600' }, 'the environment is root-only')
  const env = app1.readFile(ENV_FILE) ?? ''
  const vars = lab.inventory.hosts.get('app1')!.vars
  for (const line of [
    'APP_LISTEN_ADDRESS="10.0.0.51"',
    'APP_VOTE_PORT="8080"',
    'APP_RESULT_PORT="8081"',
    'APP_VOTE_RETRY_MS="4000"',
    'APP_REDIS_SENTINELS="10.0.0.31:26379,10.0.0.32:26379,10.0.0.33:26379"',
    'APP_REDIS_MASTER_NAME="hastack-redis"',
    'APP_PG_HOST="10.0.0.20"',
    'APP_PG_WRITE_PORT="5000"',
    'APP_PG_READ_PORT="5001"',
    `APP_PG_PASSWORD="${String(vars.postgresql_app_password)}"`,
  ])
    t.ok(env.split('\n').includes(line), line.startsWith('APP_PG_PASSWORD') ? 'the app password' : line)
  for (const program of PROGRAMS)
    t.same(app1.service(UNITS[program]), { enabled: true, active: true, restarts: 1, reloads: 0 }, program)
  t.equal(run.tasks('app1').find((x) => x.name === 'Wait for the vote program to answer /healthz')?.status, 'ok')
  t.same(app1.unmatched, [])
})

t.test('a converged host changes nothing and restarts nothing', async (t) => {
  const lab = await appLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('app1').resetCalls()
  const run = await lab.run(play)
  t.equal(run.stats.get('app1')?.changed, 0)
  t.same(lab.host('app1').mutations, [])
  t.same(restarts(lab.host('app1')), [1, 1, 1], 'still the one start of the first run')
})

t.test('a changed bundle restarts only its own program', async (t) => {
  const lab = await appLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const app1 = lab.host('app1')
  app1.writeFile('/opt/hastack-app/worker.cjs', 'an older worker\n')
  const run = await lab.run(play)
  t.same(run.named('app1', 'changed'), ['Ensure the worker program is current', 'Restart the worker program'])
  t.same(restarts(app1), [1, 2, 1])
  t.same(restarts(lab.host('app2')), [1, 1, 1], 'the other app host is left alone')
})

t.test('a changed environment restarts all three programs, and neither run prints a secret', async (t) => {
  const lab = await appLab()
  t.teardown(() => lab.cleanup())
  // As a playbook does once it has loaded the inventory: the output masks every secret's value.
  registerSecrets(secretValues(lab.inventory))
  t.teardown(clearSecrets)
  const first = await lab.run(play, { diff: true })
  await lab.reconfigure(appInventory({ app_redis_wait_replicas: 2 }))
  const run = await lab.run(play, { diff: true })
  t.same(run.named('app1', 'changed'), [
    'Ensure the app environment is current',
    'Restart the vote program',
    'Restart the worker program',
    'Restart the result program',
  ])
  t.same(restarts(lab.host('app1')), [2, 2, 2])
  const output = [...first.lines, ...run.lines].join('\n')
  t.match(output, /\+APP_REDIS_WAIT_REPLICAS="2"/, 'the diff shows the change')
  t.match(output, /\+APP_PG_PASSWORD="\*\*\*"/, 'the new file shows the password masked')
  const vars = lab.inventory.hosts.get('app1')!.vars
  for (const name of SECRETS) t.notOk(output.includes(String(vars[name])), `${name} is not in the output`)
})

t.test('check mode on a fresh host reports the plan and writes nothing', async (t) => {
  const lab = await appLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play, { check: true })
  t.ok(run.success)
  t.ok(run.named('app1', 'changed').includes('Ensure the app environment is current'))
  t.same(lab.host('app1').writes, [])
  t.same(lab.host('app1').mutations, [])
})

t.test('refuses an inventory the app cannot work with, naming the variables', async (t) => {
  await t.rejects(
    scriptedLab(appInventory({ app_result_port: 8080 })),
    /app_vote_port and app_result_port are the same port \(8080\)/,
  )
  await t.rejects(
    scriptedLab(appInventory({ app_redis_wait_replicas: 3 })),
    /app_redis_wait_replicas is 3 but the redis group has 2 replica\(s\)/,
  )
  await t.rejects(scriptedLab(appInventory({ app_http_port: 5000 })), /app_http_port and haproxy_pg_rw_port/)
  await t.rejects(scriptedLab(appInventory({ app_pg_host: 'db;rm' })), /app_pg_host/)
})
