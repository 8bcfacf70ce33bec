/**
 * vagrant/: the Vagrantfile's machines (lab/topology.json) match inventory/lab.yml, and a recorded
 * `vagrant ssh-config` turns into an inventory with lab.yml's groups.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { loadMachines, loadTopology } from '../../lab/topology.ts'
import { parseSshConfig, toInventory } from '../../vagrant/ssh-config-to-inventory.ts'

const repo = resolve(import.meta.dirname, '../..')
const vagrantHosts = loadMachines()
const lab = loadTopology(join(repo, 'inventory/lab.yml'))
const sample = readFileSync(join(repo, 'vagrant/fixtures/ssh-config.sample'), 'utf8')

t.test('lab/topology.json, which the Vagrantfile reads, has the hosts and groups of inventory/lab.yml', async (t) => {
  const vagrantfile = readFileSync(join(repo, 'vagrant/Vagrantfile'), 'utf8')
  t.match(vagrantfile, /JSON\.parse\(File\.read\(File\.expand_path\("\.\.\/lab\/topology\.json"/)
  t.same(
    vagrantHosts.map((h) => h.name),
    lab.hosts.map((h) => h.name),
    'same hosts, same order',
  )
  for (const h of lab.hosts) {
    const vm = vagrantHosts.find((v) => v.name === h.name)!
    t.same([...vm.groups].sort(), h.groups.filter((g) => g !== 'all').sort(), `${h.name}: same groups`)
  }
  const ips = vagrantHosts.map((h) => h.ip)
  t.equal(new Set(ips).size, ips.length, 'every VM has its own address')
})

t.test('ssh-config output is parsed host by host', async (t) => {
  const hosts = parseSshConfig(sample)
  t.equal(hosts.length, 11)
  t.same(hosts[0], {
    host: 'db1',
    hostName: '192.168.121.61',
    user: 'vagrant',
    port: 22,
    identityFiles: ['/home/dev/hastack/vagrant/.vagrant/machines/db1/libvirt/private_key'],
  })
  const vbox = parseSshConfig(
    'Host app1\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  IdentityFile "/a b/key"\n  IdentityFile /c\n',
  )
  t.same(vbox[0], {
    host: 'app1',
    hostName: '127.0.0.1',
    user: 'vagrant',
    port: 2222,
    identityFiles: ['/a b/key', '/c'],
  })
})

t.test('the sample becomes an inventory with lab.yml groups and private addresses', async (t) => {
  const doc: any = toInventory({
    sshConfig: parseSshConfig(sample),
    vagrantHosts,
    labInventory: join(repo, 'inventory/lab.yml'),
    outputDir: join(repo, 'inventory'),
  })
  t.same(
    Object.keys(doc.all.hosts),
    lab.hosts.map((h) => h.name),
  )
  t.same(doc.all.hosts.db1, {
    address: '192.168.56.11',
    ssh_port: 22,
    ssh_user: 'vagrant',
    ssh_key: '/home/dev/hastack/vagrant/.vagrant/machines/db1/libvirt/private_key',
  })
  t.equal(doc.all.vars.become, true)
  t.equal(doc.all.vars.vip_address, undefined, 'no VIP given: none written')
  t.same(Object.keys(doc.all.children.postgres.hosts), ['db1', 'db2', 'db3'])
  t.same(Object.keys(doc.all.children.haproxy.hosts), ['lb1', 'lb2'])
  t.same(Object.keys(doc.all.children.sentinel.hosts), ['redis1', 'redis2', 'redis3'])
  t.same(Object.keys(doc.all.children.backup_repo.hosts), ['mon1'])
  t.same(Object.keys(doc.all.children.app.hosts), ['app1', 'app2'])
  t.same(Object.keys(doc.all.children).sort(), [
    'app',
    'backup_repo',
    'etcd',
    'haproxy',
    'logging',
    'monitoring',
    'postgres',
    'redis',
    'sentinel',
  ])
})

t.test("the generated inventory passes the engine's validation with every role", async (t) => {
  const { loadInventory } = await import('../../lib/inventory/index.ts')
  const { allRoles } = await import('../../roles/index.ts')
  const dir = mkdtempSync(join(tmpdir(), 'hastack-vagrant-inv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const doc = toInventory({
    sshConfig: parseSshConfig(sample),
    vagrantHosts,
    labInventory: join(repo, 'inventory/lab.yml'),
    outputDir: dir,
    vip: '192.168.56.200',
  })
  writeFileSync(join(dir, 'vagrant.yml'), stringify(doc, { nullStr: '' }))
  const inv = await loadInventory(join(dir, 'vagrant.yml'), {
    roles: allRoles,
    secretsFile: join(dir, 'vagrant.secrets.yml'),
  })
  t.equal(inv.hosts.size, lab.hosts.length)
  t.equal(inv.hosts.get('db1')!.connection.user, 'vagrant')
  t.equal(inv.hosts.get('lb2')!.vars.vip_address, '192.168.56.200', 'the VIP passes the keepalived checks')
})

t.test('a key inside the repository is written relative to the inventory', async (t) => {
  const cfg = parseSshConfig(
    `Host db1\n  HostName 10.0.0.5\n  User vagrant\n  Port 22\n  IdentityFile ${repo}/vagrant/.vagrant/machines/db1/virtualbox/private_key\n`,
  )
  const doc: any = toInventory({
    sshConfig: cfg,
    vagrantHosts,
    labInventory: join(repo, 'inventory/lab.yml'),
    outputDir: join(repo, 'inventory'),
  })
  t.equal(doc.all.hosts.db1.ssh_key, '../vagrant/.vagrant/machines/db1/virtualbox/private_key')
  t.same(Object.keys(doc.all.children.etcd.hosts), ['db1'], 'groups keep only the hosts ssh-config named')
  const oneBalancer: any = toInventory({
    sshConfig: parseSshConfig(sample).filter((h) => h.host !== 'lb2'),
    vagrantHosts,
    labInventory: join(repo, 'inventory/lab.yml'),
    outputDir: join(repo, 'inventory'),
    vip: '192.168.56.200',
  })
  t.equal(oneBalancer.all.vars.vip_address, undefined, 'one load balancer up: no VIP')
  t.throws(
    () =>
      toInventory({
        sshConfig: parseSshConfig('Host zz\n HostName x\n'),
        vagrantHosts,
        labInventory: join(repo, 'inventory/lab.yml'),
        outputDir: repo,
      }),
    /zz/,
  )
})

t.test('the script writes inventory/vagrant.yml-style YAML with its header', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-vagrant-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'vagrant.yml')
  execFileSync(
    process.execPath,
    [
      '--import=tsx',
      join(repo, 'vagrant/ssh-config-to-inventory.ts'),
      '--input',
      join(repo, 'vagrant/fixtures/ssh-config.sample'),
      '--output',
      out,
    ],
    { stdio: 'pipe' },
  )
  const text = readFileSync(out, 'utf8')
  t.match(text, /^# Generated by vagrant\/ssh-config-to-inventory\.ts/)
  const doc = parse(text)
  t.equal(doc.all.hosts.mon1.address, '192.168.56.41')
  t.same(Object.keys(doc.all.children.haproxy.hosts), ['lb1', 'lb2'])
  t.equal(doc.all.vars.vip_address, '192.168.56.200', "the load balancers' VIP from lab/topology.json")
  t.equal(doc.all.children.haproxy.hosts.lb1, null, 'group members are written Ansible-style (no value)')
})
