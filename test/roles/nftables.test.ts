/**
 * The nftables role on scripted hosts whose `nft` keeps one flag (hastack's table loaded or not): the
 * ruleset is checked with `nft -c` before it replaces /etc/nftables.conf and loaded once; a second run
 * changes nothing; a rejected ruleset leaves the file and the running rules as they were; a table lost
 * from the kernel is loaded again; turning the switch off removes hastack's table; without a known
 * control address the role refuses rather than lock SSH out.
 */
import t from 'tap'
import { nftablesRole, NFT_CONFIG } from '../../roles/nftables/index.ts'
import { scriptedLab, type ScriptedConnection, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'firewall', hosts: 'db1', roles: [nftablesRole] }]
const CONTROL = '10.0.0.1'

interface NftHost {
  conn: ScriptedConnection
  loaded: boolean
  /** The checker's verdict: undefined accepts, a message rejects. */
  rejectWith?: string
}

function scriptedNft(conn: ScriptedConnection): NftHost {
  const host: NftHost = { conn, loaded: false }
  conn.controlAddress = CONTROL
  conn.on(/^nft -c -f \S+$/, () =>
    host.rejectWith === undefined ? { code: 0 } : { code: 1, stderr: `Error: ${host.rejectWith}\n` },
  )
  conn.on(/nft list table inet hastack/, (command, _o, c) => {
    const installed = c.packages.has('nftables')
    return { code: installed && host.loaded ? 0 : 1 }
  })
  conn.on(/^nft -f \S+$/, (command, _o, c) => ((host.loaded = true), c.mutated(command), { code: 0 }))
  conn.on(
    /^nft delete table inet hastack$/,
    (command, _o, c) => ((host.loaded = false), c.mutated(command), { code: 0 }),
  )
  return host
}

async function firewallLab(vars: Record<string, unknown> = { firewall_enabled: true }) {
  const lab: ScriptedLab = await scriptedLab(stackInventory(vars))
  t.teardown(() => lab.cleanup())
  return { lab, db1: scriptedNft(lab.host('db1')) }
}

t.test('the ruleset is checked, written, loaded once and kept for boot; a second run changes nothing', async (t) => {
  const { lab, db1 } = await firewallLab()
  const run = await lab.run(play)
  t.ok(run.success, run.lines.join('\n'))
  t.same(run.named('db1', 'changed'), [
    'Ensure nftables is installed',
    'Ensure the firewall ruleset is current',
    'Load the firewall rules',
    'Ensure the firewall is loaded at boot',
  ])
  const rules = db1.conn.readFile(NFT_CONFIG) ?? ''
  t.match(rules, /tcp dport 22 ip saddr \{ 10\.0\.0\.1 \} accept comment "ssh"/)
  t.match(rules, /tcp dport 2380 ip saddr \{ 10\.0\.0\.11, 10\.0\.0\.12, 10\.0\.0\.13 \} accept/)
  t.ok(
    db1.conn.validations.some((v) => /^nft -c -f /.test(v)),
    'checked with nft -c before it replaced the file',
  )
  t.ok(db1.loaded)
  t.equal(db1.conn.service('nftables').enabled, true)
  t.same(db1.conn.unmatched, [])
  db1.conn.resetCalls()
  const again = await lab.run(play)
  t.equal(again.stats.get('db1')?.changed, 0)
  t.same(db1.conn.mutations, [])
})

t.test('a ruleset nft rejects replaces neither the file nor the running rules', async (t) => {
  const { lab, db1 } = await firewallLab()
  await lab.run(play)
  const good = db1.conn.readFile(NFT_CONFIG)
  db1.rejectWith = 'syntax error'
  await lab.reconfigure(stackInventory({ firewall_enabled: true, etcd_peer_port: 2390 }))
  db1.conn.resetCalls()
  const run = await lab.run(play)
  t.notOk(run.success)
  t.match(
    run.tasks('db1').find((x) => x.name === 'Ensure the firewall ruleset is current'),
    { status: 'failed' },
  )
  t.equal(db1.conn.readFile(NFT_CONFIG), good, 'the good ruleset stays')
  t.notOk(
    db1.conn.commands.some((c) => /^nft -f /.test(c)),
    'nothing loaded',
  )
})

t.test('a table lost from the kernel is loaded again', async (t) => {
  const { lab, db1 } = await firewallLab()
  await lab.run(play)
  db1.loaded = false
  const run = await lab.run(play)
  t.same(run.named('db1', 'changed'), ['Ensure the firewall ruleset is loaded'])
  t.ok(db1.loaded)
})

t.test("switched off, hastack's table and boot ruleset go; a host without nft is left alone", async (t) => {
  const { lab, db1 } = await firewallLab()
  await lab.run(play)
  await lab.reconfigure(stackInventory({}))
  const run = await lab.run(play)
  t.same(run.named('db1', 'changed'), [
    "Ensure hastack's firewall table is not loaded",
    "Ensure hastack's ruleset is not loaded at boot",
  ])
  t.notOk(db1.loaded)
  t.equal(db1.conn.readFile(NFT_CONFIG), undefined)
  t.equal(db1.conn.service('nftables').enabled, false)
  const fresh = await firewallLab({})
  const untouched = await fresh.lab.run(play)
  t.equal(untouched.stats.get('db1')?.changed, 0)
  t.same(fresh.db1.conn.mutations, [])
})

t.test('without a known control address the role refuses rather than drop SSH', async (t) => {
  const { lab, db1 } = await firewallLab()
  db1.conn.controlAddress = ''
  const run = await lab.run(play)
  t.notOk(run.success)
  t.match(run.lines.join('\n'), /cannot tell the address of the control machine/)
  t.equal(db1.conn.readFile(NFT_CONFIG), undefined)
  const admin = await firewallLab({ firewall_enabled: true, firewall_admin_networks: ['192.168.7.0/24'] })
  admin.db1.conn.controlAddress = ''
  t.ok((await admin.lab.run(play)).success)
  t.match(admin.db1.conn.readFile(NFT_CONFIG), /tcp dport 22 ip saddr \{ 192\.168\.7\.0\/24 \} accept/)
})
