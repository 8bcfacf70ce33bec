/**
 * The scale bench (`npm run bench -- scale`) before and after the lab: its options refused before
 * anything boots, the inventory it generates (one group per measured host count), its table, issue
 * 15's 50-versus-10-hosts check and the curve drawn with Vega-Lite (no root, no host).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { loadTopology } from '../../lab/topology.ts'
import { DEFAULT_SIZES, scaleSettings } from '../../bench/scale-options.ts'
import { scaleHostName, scaleInventory, sizeGroup } from '../../bench/scale-inventory.ts'
import { curveRatio, median, scaleCurveSpec, scaleTable, type ScaleRow } from '../../bench/scale-report.ts'
import { renderSvg } from '../../scripts/pictures/vega-svg.ts'
import { InputError } from '../../lib/types.ts'

const repo = resolve(import.meta.dirname, '../..')

t.test('the inventory holds the largest count of hosts and a group of the first N for each count', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-scale-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'scale.yml')
  writeFileSync(file, scaleInventory([1, 10, 30], '/keys/id_ed25519'))
  const topology = loadTopology(file)
  t.same(
    topology.hosts.map((h) => h.name),
    Array.from({ length: 30 }, (_, i) => scaleHostName(i)),
  )
  t.equal(topology.hosts[0]!.name, 'scale01')
  t.equal(topology.vars.ssh_key, '/keys/id_ed25519')
  const children = parse(scaleInventory([1, 10, 30], '/k')).all.children
  for (const size of [1, 10, 30]) {
    t.same(
      Object.keys(children[sizeGroup(size)].hosts),
      topology.hosts.slice(0, size).map((h) => h.name),
      `${size}`,
    )
  }
  const tenth = topology.hosts[9]!
  t.same(tenth.groups, ['all', 'first10', 'first30'], 'the tenth host is in the groups of 10 and 30 hosts only')
})

t.test('sizes come back distinct and ascending; the default is 1, 10, 30, 50', async (t) => {
  t.same(scaleSettings({ sizes: '50,1,10,10' }).sizes, [1, 10, 50])
  t.same(scaleSettings({}), { sizes: DEFAULT_SIZES, rounds: 3, forks: [undefined] })
  t.same(scaleSettings({ forks: '50,10', rounds: 1 }).forks, [10, 50])
})

t.test('a bad size, round count or forks value is refused naming its option', async (t) => {
  for (const sizes of ['0', '51', 'ten', '1,,10', '', '1.5'])
    t.throws(() => scaleSettings({ sizes }), { name: 'InputError', message: /--sizes/ }, `--sizes ${sizes}`)
  for (const rounds of [0, 21, 1.5])
    t.throws(
      () => scaleSettings({ rounds }),
      new InputError(`--rounds must be a whole number from 1 to 20, got ${rounds}`),
    )
  t.throws(() => scaleSettings({ forks: '0' }), { name: 'InputError', message: /--forks/ })
})

t.test('npm run bench -- scale refuses a bad --sizes with exit 1 before booting anything', async (t) => {
  const r = spawnSync(process.execPath, ['--import=tsx', join(repo, 'bench/cli.ts'), 'scale', '--sizes', '5,99'], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(r.status, 1)
  t.match(r.stderr, /--sizes takes whole numbers from 1 to 50 separated by commas, got "5,99"/)
  t.notMatch(r.stderr, /lab up/)
})

const rows: ScaleRow[] = [
  { hosts: 1, bootSeconds: 4.2, memoryMiB: 25.04, noopSeconds: 3, runSeconds: 1 },
  { hosts: 10, bootSeconds: 12, memoryMiB: 24, noopSeconds: 5, runSeconds: 3 },
  { hosts: 50, noopSeconds: 15, runSeconds: 13 },
  { hosts: 10, forks: 50, noopSeconds: 5, runSeconds: 3 },
  { hosts: 50, forks: 50, noopSeconds: 30, runSeconds: 28 },
]

t.test('the table shows seconds per host, the forks setting and a dash for what was not measured', async (t) => {
  const lines = scaleTable(rows).split('\n')
  t.equal(lines.length, 2 + rows.length)
  t.equal(lines[2], '| 1 | default | 4.2 | 25.0 | 3.00 | 3.000 | 1.00 |')
  t.equal(lines[4], '| 50 | default | – | – | 15.00 | 0.300 | 13.00 |')
  t.match(lines[5], /^\| 10 \| 50 \|/)
})

t.test("issue 15's check compares the 50-host no-op with the 10-host one of the same forks", async (t) => {
  t.same(curveRatio(rows), { ratio: 3, met: true })
  t.same(curveRatio(rows, 50), { ratio: 6, met: false })
  t.equal(curveRatio(rows.filter((r) => r.hosts !== 10)), undefined, 'no verdict without a 10-host run')
})

t.test('the median of an even count is the mean of the middle two', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.throws(() => median([]))
})

t.test('the curve renders to SVG with a line per forks setting', async (t) => {
  const svg = await renderSvg(scaleCurveSpec(rows, 'measured in a test'))
  t.match(svg, /^<svg/)
  t.match(svg, /forks default, whole command/)
  t.match(svg, /forks 50, run alone/)
  t.match(svg, /seconds per host/)
})
