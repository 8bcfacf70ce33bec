/**
 * The lab's own end-to-end test: two real hosts booted with systemd-nspawn, then
 * every fault the lab offers, checked from outside as a test of a role would see it.
 * Needs root and the lab's dependencies (lab/install-deps.sh).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { Lab, sshBanner, tcpOpen, netemAvailable } from '../../lab/lab.ts'

const repo = resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(join(tmpdir(), 'hastack-lab-test-'))
const inventory = join(dir, 'labtest.yml')
writeFileSync(
  inventory,
  `# two hosts for test/lab/lab.test.ts\nall:\n  vars:\n    ssh_user: hastack\n    ssh_key: ${join(repo, '.lab/ssh/id_ed25519')}\n  children:\n    db:\n      hosts:\n        alpha:\n        beta:\n`,
)
const lines: string[] = []
const lab = new Lab({ inventory, name: 'labtest', log: (m) => lines.push(m) })

t.teardown(async () => {
  await lab.down().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

/** A TCP connect from one lab host to another's sshd, as that host sees the network. */
async function reach(from: string, to: string): Promise<boolean> {
  const r = await lab.ssh(from, `timeout 3 bash -c '</dev/tcp/${to}/22' && echo open`, { timeoutMs: 15_000 })
  return r.stdout.includes('open')
}

t.test('up boots both hosts and they answer SSH as hastack with sudo', async (t) => {
  const r = await lab.up({ bootTimeoutMs: 150_000 })
  t.same(Object.keys(r.hosts), ['alpha', 'beta'])
  for (const h of ['alpha', 'beta']) {
    const s = await lab.ssh(h, 'sudo -n true && hostname && systemctl is-system-running')
    t.equal(s.code, 0, `${h}: ssh and sudo work (${s.stderr})`)
    t.same(s.stdout.trim().split('\n'), [h, 'running'], `${h}: right hostname, systemd running`)
  }
  const hv = readFileSync(join(dir, 'host_vars/alpha/lab.yml'), 'utf8')
  t.match(hv, /^address: 10\.\d+\.\d+\.10$/m, 'host_vars/alpha/lab.yml has the address')
  t.match(hv, /^apt_proxy: http:\/\/10\.\d+\.\d+\.1:3142$/m, 'and the apt proxy')
})

t.test('hosts reach each other by name', async (t) => {
  t.ok(await reach('alpha', 'beta'), 'alpha -> beta:22')
  t.ok(await reach('beta', 'alpha'), 'beta -> alpha:22')
  const p = await lab.ssh('alpha', 'ping -c1 -W2 beta >/dev/null && echo ok')
  t.equal(p.stdout.trim(), 'ok', 'alpha pings beta')
})

t.test('the apt cache answers the hosts', async (t) => {
  const r = await lab.ssh('alpha', 'sudo apt-get -q update 2>&1 | tail -1; apt-cache policy sudo | grep -c http', {
    timeoutMs: 120_000,
  })
  t.equal(r.code, 0, r.stderr)
  t.notMatch(r.stdout, /Failed|Err:/, 'apt-get update through the cache')
})

t.test('kill is a power cut; start boots again with the disk intact', async (t) => {
  t.equal((await lab.ssh('beta', 'echo kept > /home/hastack/marker && echo ok')).stdout.trim(), 'ok')
  const before = lab.hostPids('beta')
  t.ok(before.length > 3, 'beta has processes')
  await lab.kill('beta')
  t.same(lab.hostPids('beta'), [], 'no process of beta is left')
  t.notOk(
    before.some((p) => existsSync(`/proc/${p}`)),
    'the old pids are gone',
  )
  const addr = lab.host('beta').address
  t.notOk(await tcpOpen(addr, 22, 2000), 'beta:22 is silent')
  t.equal(lab.status().find((s) => s.host === 'beta')?.state, 'stopped')
  t.equal(lab.status().find((s) => s.host === 'alpha')?.state, 'running', 'alpha stays up')
  const state = await lab.start('beta')
  t.equal(state, 'running')
  t.equal(
    (await lab.ssh('beta', 'cat /home/hastack/marker')).stdout.trim(),
    'kept',
    'the file written before the kill is there',
  )
})

t.test('partition cuts the two hosts apart; heal joins them', async (t) => {
  await lab.partition('alpha', ['beta'])
  t.notOk(await reach('alpha', 'beta'), 'alpha cannot reach beta')
  t.notOk(await reach('beta', 'alpha'), 'beta cannot reach alpha')
  t.equal((await lab.ssh('alpha', 'echo up')).stdout.trim(), 'up', 'alpha stays up (reached from the machine)')
  t.equal((await lab.ssh('beta', 'echo up')).stdout.trim(), 'up', 'beta stays up')
  await lab.heal()
  t.ok(await reach('alpha', 'beta'), 'healed: alpha reaches beta')
  await lab.partition('beta')
  t.notOk(await reach('alpha', 'beta'), 'beta partitioned from all')
  await lab.heal('beta')
  t.ok(await reach('beta', 'alpha'), 'healed again')
})

t.test('freeze hangs the host; thaw resumes it', async (t) => {
  const addr = lab.host('beta').address
  t.match(await sshBanner(addr, 5000), /^SSH-2\.0-/, 'banner before')
  await lab.freeze('beta')
  t.equal(lab.status().find((s) => s.host === 'beta')?.state, 'frozen')
  t.equal(await sshBanner(addr, 2000), null, 'no banner while frozen')
  await lab.thaw('beta')
  t.match(await sshBanner(addr, 5000), /^SSH-2\.0-/, 'banner after thaw')
})

t.test('slow: rate limiting works; delay needs netem', async (t) => {
  await lab.slow('beta', { rateKbit: 8000 })
  t.match(
    lab
      .status()
      .find((s) => s.host === 'beta')
      ?.faults.join(),
    /tbf rate 8000kbit/,
  )
  if (!netemAvailable()) {
    await t.rejects(lab.slow('beta', { delayMs: 100 }), /no sch_netem/, 'a clear error without netem')
  } else {
    await lab.slow('beta', { delayMs: 100 })
  }
  await lab.heal('beta')
  t.same(lab.status().find((s) => s.host === 'beta')?.faults, [])
})

t.test('stop powers the host off cleanly', async (t) => {
  await lab.stop('alpha')
  t.same(lab.hostPids('alpha'), [])
  t.equal(lab.status().find((s) => s.host === 'alpha')?.state, 'stopped')
})

t.test('down leaves nothing behind', async (t) => {
  const inst = lab.instance!
  const nspawnPids = inst.hosts
    .map((h) => lab.status().find((s) => s.host === h.name)?.nspawnPid)
    .filter(Boolean) as number[]
  await lab.down()
  const netns = existsSync('/run/netns') ? readdirSync('/run/netns') : []
  t.same(
    netns.filter((n) => n.startsWith('hs-labtest-')),
    [],
    'no netns',
  )
  t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), /hastack-lab\/labtest/, 'no mount')
  const links = readdirSync('/sys/class/net')
  t.same(
    links.filter((l) => l === inst.bridge || l.startsWith('hslabtes')),
    [],
    'no bridge, no veth',
  )
  t.notOk(
    nspawnPids.some((p) => existsSync(`/proc/${p}`)),
    'no lab process',
  )
  t.notOk(existsSync(inst.cgroups.freezer), 'no cgroup')
  t.notOk(existsSync(join(dir, 'host_vars')), 'host_vars removed')
  t.notOk(existsSync(lab.stateDir), 'no state dir')
})
