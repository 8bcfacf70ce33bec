/**
 * What the lab reads before it boots anything: each host's address octet from the
 * topology shared with the Vagrantfile, the load balancers' VIP, and the lab CLI's
 * answers to bad input (run without root and without booting a host).
 */
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import t from 'tap'
import { addedHostOctet, hostOctets, loadMachines, loadTopology, loadVip, vipOctet } from '../../lab/topology.ts'

const repo = resolve(import.meta.dirname, '../..')

t.test("a host the topology names gets its Vagrant address's last octet in the lab", async (t) => {
  const lab = loadTopology(join(repo, 'inventory/lab.yml'))
  const machines = loadMachines()
  const octets = hostOctets(
    lab.hosts.map((h) => h.name),
    machines,
  )
  t.same(
    octets,
    lab.hosts.map((h) => Number(machines.find((m) => m.name === h.name)!.ip.split('.')[3])),
  )
  t.same(octets.slice(0, 4), [11, 12, 13, 21])
})

t.test('other hosts get free octets from 10 upwards, never one a named host has', async (t) => {
  const machines = [{ name: 'db1', ip: '192.168.56.11', groups: ['db'] }]
  t.same(hostOctets(['node1', 'node2', 'node3'], machines), [10, 11, 12], 'lab-small keeps .10, .11, .12')
  t.same(hostOctets(['node1', 'db1', 'node2', 'node3'], machines), [10, 11, 12, 13])
  t.same(hostOctets(['node1', 'node2', 'db1'], machines), [10, 12, 11])
})

t.test('the topology file refuses an address outside the Vagrant network', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'hastack-topology-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'topology.json')
  writeFileSync(file, JSON.stringify({ hosts: [{ name: 'db1', ip: '10.0.0.1', groups: [] }] }))
  t.throws(() => loadMachines(file), /db1 has address 10\.0\.0\.1, not a host of 192\.168\.56\.0\/24/)
})

t.test('a lab with two haproxy hosts gets the topology VIP octet, or the highest free one', async (t) => {
  t.equal(loadVip(), '192.168.56.200', "the VIP of the Vagrantfile's network")
  const small = loadTopology(join(repo, 'inventory/lab-small.yml'))
  const smallOctets = hostOctets(small.hosts.map((h) => h.name))
  t.equal(vipOctet(small.hosts, smallOctets), 200, 'lab-small: node1 and node2 share .200')
  const full = loadTopology(join(repo, 'inventory/lab.yml'))
  t.equal(vipOctet(full.hosts, hostOctets(full.hosts.map((h) => h.name))), 200, 'lab.yml: lb1 and lb2 share .200')
  const lb = (name: string) => ({ name, groups: ['all', 'haproxy'] })
  t.equal(vipOctet([lb('a'), lb('b')], [200, 254]), 253, 'a host on the preferred octet: the highest free one')
  t.equal(vipOctet([lb('a'), { name: 'b', groups: ['all'] }], [10, 11]), undefined, 'one load balancer: no VIP')
  const full254 = Array.from({ length: 253 }, (_, i) => i + 2)
  t.throws(() => vipOctet([lb('a'), lb('b')], full254), /no free address left in the lab subnet for the VIP/)
})

t.test('the topology refuses a VIP off the Vagrant network or on a machine', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'hastack-topology-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'topology.json')
  const hosts = [{ name: 'lb1', ip: '192.168.56.31', groups: ['haproxy'] }]
  writeFileSync(file, JSON.stringify({ vip: '10.0.0.200', hosts }))
  t.throws(() => loadVip(file), /vip "10\.0\.0\.200" is not a host address of 192\.168\.56\.0\/24/)
  writeFileSync(file, JSON.stringify({ vip: '192.168.56.31', hosts }))
  t.throws(() => loadVip(file), /vip 192\.168\.56\.31 is the address of lb1/)
})

t.test('the lab CLI prints its usage on --help and refuses bad input with exit 1', async (t) => {
  const lab = (...args: string[]) =>
    spawnSync(process.execPath, ['--import=tsx', join(repo, 'lab/cli.ts'), ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    })
  const help = lab('--help')
  t.equal(help.status, 0)
  t.match(help.stdout, /usage: npm run lab -- <command> -i INVENTORY/)
  const unknown = lab('bogus', '-i', join(repo, 'inventory/lab-small.yml'))
  t.equal(unknown.status, 1)
  t.match(unknown.stderr, /unknown command "bogus"/)
  const noInventory = lab('up')
  t.equal(noInventory.status, 1)
  t.match(noInventory.stderr, /up: -i INVENTORY is required/)
})

t.test('a host added to a running lab gets the octet up would have given it, or the lowest free one', async (t) => {
  const machines = [{ name: 'db1', ip: '192.168.56.11', groups: ['db'] }]
  const running = ['node1', 'node2', 'node3']
  t.equal(addedHostOctet(running, [10, 11, 12, 200], 'node4', machines), 13, 'lab-small grows to .13')
  t.equal(addedHostOctet(running, [10, 11, 12, 13, 200], 'node4', machines), 14, 'never an octet in use')
  t.equal(addedHostOctet(running, [10, 12, 13], 'db1', machines), 11, "a named machine keeps the topology's octet")
  t.equal(addedHostOctet(running, [10, 11, 12], 'db1', machines), 13, '... unless a running host has it')
})
