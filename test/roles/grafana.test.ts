/**
 * The grafana role on a scripted monitoring host. Where Grafana's repository does not answer (as
 * in the lab) and Grafana is not installed, the role is skipped with the reason and touches
 * nothing, run after run. Where it answers with the pinned key: the key and a `signed-by` source,
 * Grafana installed, its settings, the Prometheus datasource and every dashboard provisioned,
 * then a converged host changes nothing. A key with another fingerprint is refused before
 * anything is written; a .deb from the controller is copied and installed instead of the
 * repository, and a missing .deb skips the role.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { grafanaRole, KEYRING, REMOTE_DEB, SOURCES_LIST } from '../../roles/grafana/index.ts'
import { dashboardFiles, DASHBOARDS_REMOTE_DIR, DATASOURCE_FILE } from '../../roles/grafana/provisioning.ts'
import type { ScriptedConnection } from '../fixtures/scripted.ts'
import { MONITORING_ADDRESS, MONITORING_HOST, monitoringInventory, monitoringWorld } from './monitoring-world.ts'

const play = [{ name: 'grafana', hosts: 'monitoring', roles: [grafanaRole] }]
const SOURCE_TASK = 'Ensure the Grafana package source is reachable'
const KEY = readFileSync(new URL('../fixtures/apt-keys/test-rsa.asc', import.meta.url), 'utf8')
const KEY_FINGERPRINT = 'B8CA330FD9524C0AC26E6B4C565CF247D49928A2'
const OTHER_FINGERPRINT = '15EFB975D19CF2E3FAF64B9AE71B38F6D3D14C90'

/** The host's answer to the repository probe: the key's text, or no answer (apt-helper fails). */
function repository(conn: ScriptedConnection, answer: string | undefined): void {
  conn.on(/\/usr\/lib\/apt\/apt-helper/, () =>
    answer === undefined ? { code: 100, stderr: '' } : { code: 0, stdout: answer },
  )
  conn.on(/urlopen\("http:\/\/[\d.]+:3000\/api\/health"/, (command, _o, c) => {
    const listening = command.includes(`http://${c.address}:3000/`) && c.service('grafana-server').active
    return { code: listening ? 0 : 1 }
  })
}

async function grafanaWorld(vars: Record<string, unknown>, answer: string | undefined) {
  const world = await monitoringWorld(monitoringInventory(vars))
  const mon = world.lab.host(MONITORING_HOST)
  repository(mon, answer)
  return { lab: world.lab, mon }
}

t.test('with no source set (the lab) the role skips without probing anything', async (t) => {
  const { lab, mon } = await grafanaWorld({ grafana_apt_url: '' }, KEY)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const tasks = run.tasks(MONITORING_HOST)
  t.same(
    tasks.map((x) => `${x.name}: ${x.status}`),
    [`${SOURCE_TASK}: skipped`],
  )
  t.match(tasks[0]?.reason, /no Grafana source is set \(grafana_deb and grafana_apt_url are empty\)/)
  t.notOk(
    mon.commands.some((c) => c.includes('apt-helper')),
    'no repository was asked',
  )
})

t.test('an unreachable repository skips the role with the reason and touches nothing, run after run', async (t) => {
  const { lab, mon } = await grafanaWorld({}, undefined)
  t.teardown(() => lab.cleanup())
  const engineState = (path: string) => path.startsWith('/var/lib/hastack/')
  for (const run of [await lab.run(play), await lab.run(play)]) {
    t.ok(run.success, 'the run succeeds')
    const tasks = run.tasks(MONITORING_HOST)
    t.same(
      tasks.map((x) => `${x.name}: ${x.status}`),
      [`${SOURCE_TASK}: skipped`],
    )
    const unreachable = 'https://apt.grafana.com could not be reached (apt-helper exit 100, bounded at 30 s)'
    t.equal(tasks[0]?.reason, `${unreachable}: Grafana is not installed (Grafana is not in Debian)`)
    t.equal(run.stats.get(MONITORING_HOST)?.changed, 0)
  }
  t.same(
    mon.writes.filter((w) => !engineState(w)),
    [],
    "nothing written but the engine's own state",
  )
  t.same(
    mon.mutations.filter((m) => !m.endsWith(' /var/lib/hastack')),
    [],
    'nothing changed',
  )
  t.notOk(mon.packages.has('grafana'))
})

t.test('a reachable repository with the pinned key: Grafana installed and provisioned, then converged', async (t) => {
  const { lab, mon } = await grafanaWorld({ grafana_apt_key_fingerprint: KEY_FINGERPRINT }, KEY)
  t.teardown(() => lab.cleanup())
  const first = await lab.run(play)
  t.ok(first.success)
  t.equal(mon.readFile(KEYRING), KEY, 'the downloaded key is the keyring')
  t.equal(mon.readFile(SOURCES_LIST)?.split('\n')[1], `deb [signed-by=${KEYRING}] https://apt.grafana.com stable main`)
  t.ok(mon.packages.has('grafana'))
  const ini = mon.readFile('/etc/grafana/grafana.ini') ?? ''
  t.match(ini, `http_addr = ${MONITORING_ADDRESS}\nhttp_port = 3000`)
  t.match(ini, /\[auth\.anonymous\]\nenabled = false/)
  const secret = lab.inventory.hosts.get(MONITORING_HOST)!.vars.grafana_admin_password as string
  t.ok(secret.length >= 16 && ini.includes(`admin_password = """${secret}"""`), 'the generated admin password')
  t.ok(!first.lines.some((l) => l.includes(secret)), 'the password is never printed')
  t.match(mon.fs.get('/etc/grafana/grafana.ini'), { owner: 'root', group: 'grafana', mode: '0640' })
  const datasource = parse(mon.readFile(DATASOURCE_FILE) ?? '')
  t.match(datasource.datasources[0], { uid: 'hastack-prometheus', url: `http://${MONITORING_ADDRESS}:9090` })
  for (const { name, json } of dashboardFiles()) t.equal(mon.readFile(`${DASHBOARDS_REMOTE_DIR}/${name}`), json, name)
  t.same(mon.service('grafana-server'), { enabled: true, active: true, restarts: 1, reloads: 0 })
  t.equal(first.tasks(MONITORING_HOST).find((x) => x.name === 'Wait for Grafana to be ready')?.status, 'ok')
  mon.resetCalls()
  const second = await lab.run(play)
  t.equal(second.stats.get(MONITORING_HOST)?.changed, 0, 'a converged host changes nothing')
  t.same(mon.mutations, [])
  t.same(mon.unmatched, [])
})

t.test('a repository key with another fingerprint is refused before anything is written', async (t) => {
  const { lab, mon } = await grafanaWorld({ grafana_apt_key_fingerprint: OTHER_FINGERPRINT }, KEY)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.notOk(run.success)
  const source = run.tasks(MONITORING_HOST).find((x) => x.name === SOURCE_TASK)
  t.equal(source?.status, 'failed')
  const refusal = 'refusing the Grafana repository at https://apt.grafana.com: the downloaded key has fingerprint(s)'
  t.match(source?.reason, `${refusal} ${KEY_FINGERPRINT}, not the pinned ${OTHER_FINGERPRINT}`)
  t.same(
    mon.writes.filter((w) => !w.startsWith('/var/lib/hastack/')),
    [],
  )
})

t.test('a .deb from the controller is copied and installed instead of the repository', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-grafana-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const deb = join(dir, 'grafana_11.0.0_amd64.deb')
  writeFileSync(deb, Buffer.from('!<arch>\nnot really a package\n'))
  const { lab, mon } = await grafanaWorld({ grafana_deb: deb }, KEY)
  t.teardown(() => lab.cleanup())
  mon.onInstall(REMOTE_DEB, (c) => void c.install('grafana'))
  const run = await lab.run(play)
  t.ok(run.success)
  t.equal(mon.readFile(REMOTE_DEB), '!<arch>\nnot really a package\n')
  t.ok(mon.packages.has('grafana'), 'installed from the copied file')
  t.notOk(
    mon.commands.some((c) => c.includes('apt-helper')),
    'the repository is not asked',
  )
  t.notOk(mon.fs.has(SOURCES_LIST))
  t.ok(mon.service('grafana-server').active)
  rmSync(deb)
  mon.resetCalls()
  const again = await lab.run(play)
  t.ok(again.success, 'once installed, a .deb gone from the controller keeps the installed Grafana')
  t.equal(again.stats.get(MONITORING_HOST)?.changed, 0)
})

t.test('a missing .deb skips the role when Grafana is not installed', async (t) => {
  const { lab, mon } = await grafanaWorld({ grafana_deb: '/nonexistent/grafana.deb' }, KEY)
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  const [source] = run.tasks(MONITORING_HOST)
  t.equal(source?.status, 'skipped')
  t.match(source?.reason, /grafana_deb \/nonexistent\/grafana\.deb does not exist on this machine/)
  t.same(
    mon.writes.filter((w) => !w.startsWith('/var/lib/hastack/')),
    [],
  )
})
