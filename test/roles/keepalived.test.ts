/**
 * The keepalived role on two scripted load balancers with a VIP: on a fresh pair HAProxy may bind the VIP
 * and serves its loopback health listener first, then keepalived is installed with the HAProxy check
 * (bash on loopback) and the configuration (VRRP over unicast to the other host only, VRRPv3 with
 * half-second adverts, BACKUP + nopreempt, priorities by group order, the FAULT-on-failure track
 * script); an existing pair gets HAProxy's reload before the new check; a converged pair
 * changes nothing; without `vip_address` the role does nothing; bad VIP settings are refused before
 * any connection.
 */
import t from 'tap'
import { keepalivedRole } from '../../roles/keepalived/index.ts'
import { haproxyRole } from '../../roles/haproxy/index.ts'
import { vrrpPriority } from '../../roles/keepalived/render.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'lb', hosts: 'haproxy', roles: [haproxyRole, keepalivedRole] }]
const CONF = '/etc/keepalived/keepalived.conf'
const CHECK = '/etc/keepalived/hastack-check-haproxy'
const CONFIG_TASK = 'Ensure the keepalived configuration is current'
const VIP = '10.0.0.30'

/** The role tests' stack with two load balancers (lb1 .20, lb2 .21) and the given variables. */
function pairInventory(vars: Record<string, unknown> = { vip_address: VIP }, lb2: Record<string, unknown> = {}) {
  const doc = stackInventory(vars) as { all: { children: Record<string, { hosts: Record<string, unknown> }> } }
  doc.all.children.haproxy!.hosts = { lb1: { address: '10.0.0.20' }, lb2: { address: '10.0.0.21', ...lb2 } }
  return doc
}

/** A Debian host's answers to what the role runs beyond the built-in ones: sysctl, the script user, checkers. */
function scriptHost(conn: ScriptedConnection): void {
  let nonlocalBind = 0
  let scriptUser = false
  conn.on(/^test "\$\(sysctl -n net\.ipv4\.ip_nonlocal_bind\)" = 1$/, () => ({ code: nonlocalBind === 1 ? 0 : 1 }))
  conn.on(/^sysctl -q -w net\.ipv4\.ip_nonlocal_bind=1$/, (_c, _o, host) => {
    nonlocalBind = 1
    host.mutated('sysctl net.ipv4.ip_nonlocal_bind=1')
    return {}
  })
  conn.on(/^getent passwd keepalived_script && id -nG keepalived_script$/, () =>
    scriptUser
      ? { stdout: 'keepalived_script:x:998:998::/home/keepalived_script:/usr/sbin/nologin\nkeepalived_script\n' }
      : { code: 2 },
  )
  conn.on(/^useradd --system --shell \/usr\/sbin\/nologin keepalived_script$/, (_c, _o, host) => {
    scriptUser = true
    host.mutated('useradd keepalived_script')
    return {}
  })
  conn.on(/^haproxy -c /, {})
}

async function pairLab(doc = pairInventory()): Promise<ScriptedLab> {
  const lab = await scriptedLab(doc)
  for (const name of ['lb1', 'lb2']) scriptHost(lab.host(name))
  return lab
}

t.test('a fresh pair lets HAProxy bind the VIP and serve its health listener, then starts keepalived', async (t) => {
  const lab = await pairLab()
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success, run.lines.join('\n'))
  const changed = run.named('lb1', 'changed')
  t.same(changed.slice(0, 3), [
    'Ensure HAProxy may bind the VIP before holding it (sysctl file)',
    'Ensure HAProxy may bind the VIP before holding it (running kernel)',
    'Ensure HAProxy is installed',
  ])
  const keepalived = [
    'Ensure keepalived is installed',
    "Ensure the user of keepalived's check exists",
    'Ensure the HAProxy check of keepalived is current',
    CONFIG_TASK,
    'Ensure keepalived is enabled and started',
    'Reload keepalived',
  ]
  t.same(changed.slice(-keepalived.length), keepalived, 'keepalived last')
  t.ok(
    changed.indexOf('Ensure HAProxy is enabled and started') < changed.indexOf('Ensure keepalived is installed'),
    'HAProxy (its loopback health listener) serves before keepalived starts asking it',
  )
  t.notOk('vip_auth_password' in lab.inventory.secrets, 'no VRRP password: VRRPv3 has no authentication')
  for (const [name, self, peer, priority] of [
    ['lb1', '10.0.0.20', '10.0.0.21', 250],
    ['lb2', '10.0.0.21', '10.0.0.20', 240],
  ] as const) {
    const host = lab.host(name)
    const conf = host.readFile(CONF)!
    t.match(conf, /state BACKUP\n\s+nopreempt\n/, `${name}: BACKUP with nopreempt`)
    t.match(conf, /interface eth0\n/, `${name}: the interface that holds the host's address`)
    t.match(conf, new RegExp(`priority ${priority}\\n`))
    t.match(conf, /vrrp_version 3\n\s+vrrp_check_unicast_src\n/, `${name}: VRRPv3, adverts from the peers only`)
    t.match(conf, /advert_int 0\.5\n/)
    t.match(conf, new RegExp(`unicast_src_ip ${self}\\n\\s+unicast_peer \\{\\n\\s+${peer}\\n\\s+\\}`))
    t.notMatch(conf, /auth_type|auth_pass/)
    t.match(conf, /virtual_ipaddress \{\n\s+10\.0\.0\.30\/32 dev eth0\n/)
    t.match(
      conf,
      /script "\/etc\/keepalived\/hastack-check-haproxy"\n\s+interval 1\n\s+timeout 1\n\s+fall 2\n\s+rise 2/,
    )
    t.match(conf, /weight 0\n/, 'a failed check means FAULT: the VIP goes even under nopreempt')
    t.match(conf, /script_user keepalived_script\n\s+enable_script_security/)
    t.same(host.validations, ['haproxy -c -f /etc/haproxy/.haproxy.cfg.hastack-scripted'], 'only HAProxy has a checker')
    t.match(
      host.readFile(CHECK),
      /^#!\/bin\/bash\n[\s\S]*\/dev\/tcp\/127\.0\.0\.1\/7000 \|\| exit 1\n/,
      'loopback, no curl',
    )
    t.match(host.readFile(CHECK), /GET \/healthz HTTP\/1\.0/)
    t.match(host.readFile('/etc/sysctl.d/60-hastack-vip.conf'), /^net\.ipv4\.ip_nonlocal_bind = 1$/m)
    t.ok(host.mutations.includes('sysctl net.ipv4.ip_nonlocal_bind=1'), 'the running kernel too')
    t.same(host.service('keepalived'), { enabled: true, active: true, restarts: 0, reloads: 1 })
    const cfg = host.readFile('/etc/haproxy/haproxy.cfg')!
    t.match(cfg, new RegExp(`listen postgres_rw\\n\\s+bind ${self}:5000,10\\.0\\.0\\.30:5000\\n`), 'rw on the VIP')
    t.match(cfg, new RegExp(`listen postgres_ro\\n\\s+bind ${self}:5001,10\\.0\\.0\\.30:5001\\n`), 'ro on the VIP')
    t.match(cfg, new RegExp(`bind ${self}:6379,10\\.0\\.0\\.30:6379\\n\\s+bind 127\\.0\\.0\\.1:6379`), 'Redis too')
    t.match(
      cfg,
      new RegExp(
        `frontend stats\\n\\s+mode http\\n\\s+bind ${self}:7000\\n\\s+timeout client 30s\\n[^\\n]*\\n\\s+monitor-uri /healthz`,
      ),
      'stats on its own address only',
    )
    t.match(
      cfg,
      /frontend healthz\n\s+mode http\n\s+bind 127\.0\.0\.1:7000\n[\s\S]*?monitor-uri \/healthz\n\s+http-request deny\n/,
      "the track script's health listener on loopback, answering /healthz only",
    )
    t.same(host.unmatched, [])
  }
})

t.test("an existing pair's HAProxy reloads onto its health listener before keepalived's check asks it", async (t) => {
  const lab = await pairLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  // The pair as an earlier version left it: no loopback health listener, a check that asked the stats port.
  const host = lab.host('lb1')
  const cfg = host.readFile('/etc/haproxy/haproxy.cfg')!
  host.writeFile('/etc/haproxy/haproxy.cfg', cfg.replace(/\nfrontend healthz\n[\s\S]*?http-request deny\n/, '\n'))
  host.writeFile(CHECK, '#!/bin/bash\nexec curl --silent --fail https://10.0.0.20:7000/healthz\n', { mode: '0755' })
  const run = await lab.run(play)
  t.same(run.named('lb1', 'changed'), [
    'Ensure the HAProxy configuration is current',
    'Reload HAProxy',
    'Ensure the HAProxy check of keepalived is current',
  ])
})

t.test('a converged pair changes nothing and keepalived is not reloaded', async (t) => {
  const lab = await pairLab()
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  lab.host('lb1').resetCalls()
  const run = await lab.run(play)
  t.equal(run.stats.get('lb1')?.changed, 0)
  t.equal(run.stats.get('lb2')?.changed, 0)
  t.same(lab.host('lb1').mutations, [])
  t.equal(lab.host('lb1').service('keepalived').reloads, 1, 'still the one reload of the first run')
})

t.test('without vip_address the role does nothing and HAProxy binds its own address only', async (t) => {
  const lab = await pairLab(pairInventory({}))
  t.teardown(() => lab.cleanup())
  const run = await lab.run(play)
  t.ok(run.success)
  t.notOk(
    run.tasks('lb1').some((x) => /keepalived|VIP/.test(x.name)),
    'no keepalived task runs',
  )
  t.notOk(lab.host('lb1').packages.has('keepalived'))
  t.match(lab.host('lb1').readFile('/etc/haproxy/haproxy.cfg'), /bind 10\.0\.0\.20:5000\n/)
  t.notMatch(lab.host('lb1').readFile('/etc/haproxy/haproxy.cfg'), /frontend healthz/, 'no loopback health listener')
})

t.test('bad VIP settings are refused before any connection', async (t) => {
  const refused = (doc: Record<string, unknown>) => scriptedLab(doc)
  await t.rejects(refused(pairInventory({ vip_address: '10.0.0.300' })), /vip_address.*must be an IPv4 address/s)
  await t.rejects(refused(pairInventory({ vip_address: VIP, vip_vrrp_id: 256 })), /vip_vrrp_id/)
  await t.rejects(refused(pairInventory({ vip_address: VIP, vip_interface: 'eth0; reboot' })), /vip_interface/)
  await t.rejects(
    refused(pairInventory({ vip_address: '10.0.0.21' })),
    /vip_address 10\.0\.0\.21 is the address of host lb2/,
  )
  await t.rejects(
    refused(pairInventory({ vip_address: VIP }, { vip_address: '10.0.0.31' })),
    /the haproxy hosts must share one vip_address \(lb1: 10\.0\.0\.30, lb2: 10\.0\.0\.31\)/,
  )
})

t.test('priorities follow the group order, the first host highest, never below 1', async (t) => {
  t.same(
    ['a', 'b', 'c'].map((h) => vrrpPriority(['a', 'b', 'c'], h)),
    [250, 240, 230],
  )
  t.equal(
    vrrpPriority(
      Array.from({ length: 40 }, (_, i) => `h${i}`),
      'h39',
    ),
    1,
  )
})
