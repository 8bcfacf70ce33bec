/**
 * Host-key pinning of the lab, without booting a host: `up` starts
 * `<inventory dir>/<inventory name>.known_hosts` empty, adds every host's keys in
 * OpenSSH known_hosts format under its address and name, and records the file so
 * that `down` removes it; the generated host_vars carry the address and apt proxy.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

const dir = mkdtempSync(join(tmpdir(), 'hastack-known-hosts-'))
process.env.HASTACK_LAB_ROOT = join(dir, 'state')
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const { Lab } = await import('../../lab/lab.ts')
const hosts = await import('../../lab/hosts.ts')
const { PIN_HOST_KEYS, inventoryKnownHosts, pinHostKeys, startKnownHosts, writeHostVars } = hosts

const inventory = join(dir, 'pinning.yml')
writeFileSync(inventory, 'all:\n  children:\n    db:\n      hosts:\n        alpha:\n')
const lab = new Lab({ inventory, name: 'pinning' })
const address = '10.213.9.10'
const host = { name: 'alpha', index: 0, groups: ['all', 'db'], address, netns: 'n', veth: 'v', machine: 'a' }
const instance = {
  name: 'pinning',
  inventory,
  bridge: 'hs-pinning',
  subnet: '10.213.9.0/24',
  gateway: '10.213.9.1',
  base: '/nonexistent',
  key: join(dir, 'id'),
  cgroups: {},
  hosts: [host],
  createdFiles: [] as string[],
  createdDirs: [] as string[],
  partitions: {},
  shaping: {},
}

t.test("every host key is pinned under the host's address and name, beside the inventory", async (t) => {
  mkdirSync(lab.stateDir, { recursive: true })
  const sshDir = join(dir, 'etc-ssh')
  mkdirSync(sshDir)
  for (const type of ['rsa', 'ecdsa', 'ed25519']) {
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', join(sshDir, `ssh_host_${type}_key`)])
  }
  startKnownHosts(lab, instance)
  pinHostKeys(lab, host, sshDir)
  const file = inventoryKnownHosts(lab)
  t.equal(file, join(dir, 'pinning.known_hosts'))
  t.same(instance.createdFiles, [file], 'recorded, so that `down` removes it')
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  t.same(
    lines.map((l) => l.split(' ')[1]),
    ['ssh-rsa', 'ecdsa-sha2-nistp256', 'ssh-ed25519'],
  )
  for (const line of lines) t.match(line, /^10\.213\.9\.10,alpha \S+ AAAA\S+$/)
  const found = execFileSync('ssh-keygen', ['-F', '10.213.9.10', '-f', file], { encoding: 'utf8' })
  t.match(found, /ssh-ed25519/, 'OpenSSH finds the host by its address')
  const own = readFileSync(join(lab.stateDir, 'known_hosts'), 'utf8')
  t.equal(own, readFileSync(file, 'utf8'), "the lab's own SSH uses the same keys")
})

t.test('the generated host_vars name the address and the apt proxy', async (t) => {
  writeHostVars(lab, instance)
  const text = readFileSync(join(dir, 'host_vars/alpha/lab.yml'), 'utf8')
  t.match(text, /^address: 10\.213\.9\.10$/m)
  t.match(text, /^apt_proxy: http:\/\/10\.213\.9\.1:3142$/m)
  t.equal(/^ssh_host_key_checking: strict$/m.test(text), PIN_HOST_KEYS, 'strict checking follows PIN_HOST_KEYS')
})
