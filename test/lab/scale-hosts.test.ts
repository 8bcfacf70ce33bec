/**
 * The light hosts of the scale bench on a real lab: the inventory `npm run bench -- scale` generates
 * boots (three hosts here), every host runs systemd and answers SSH, `status` reports each host's
 * memory cgroup, and `down` leaves no namespace behind. Needs root and the lab's dependencies.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { Lab } from '../../lab/lab.ts'
import { scaleHostName, scaleInventory } from '../../bench/scale-inventory.ts'

const repo = resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(join(tmpdir(), 'hastack-scale-hosts-'))
const inventory = join(dir, 'scalehosts.yml')
writeFileSync(inventory, scaleInventory([1, 3], join(repo, '.lab/ssh/id_ed25519')))
const lab = new Lab({ inventory, name: 'scalehosts' })
const hosts = [0, 1, 2].map(scaleHostName)

t.teardown(async () => {
  await lab.down().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

t.test('the generated inventory boots: every host runs systemd and answers SSH', async (t) => {
  const up = await lab.up({ bootTimeoutMs: 150_000 })
  t.same(Object.keys(up.hosts), hosts)
  for (const h of hosts) {
    const r = await lab.ssh(h, 'hostname && systemctl is-system-running')
    t.same(r.stdout.trim().split('\n'), [h, 'running'], `${h}: ${r.stderr}`)
  }
})

t.test("status reports each host's memory cgroup: its whole usage and the anonymous part within it", async (t) => {
  for (const s of lab.status()) {
    t.equal(s.state, 'running', s.host)
    t.ok(s.memoryUsageMiB! > 0, `${s.host}: usage ${s.memoryUsageMiB} MiB`)
    t.ok(s.memoryMiB! > 0 && s.memoryMiB! <= s.memoryUsageMiB!, `${s.host}: anonymous ${s.memoryMiB} MiB`)
  }
})

t.test('down removes every host and namespace of the lab', async (t) => {
  await lab.down()
  t.same(
    readdirSync('/run/netns').filter((n) => n.startsWith('hs-scalehosts-')),
    [],
  )
  t.same(
    lab.status().map((s) => s.state),
    ['absent', 'absent', 'absent'],
  )
})
