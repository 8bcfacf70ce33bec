/**
 * `npm run bench -- [PART] [options]`: hastack's benchmarks, one part per run. `engine` (the
 * default) measures the engine's overhead per task (bench/engine.ts, a minute, loopback sshd only);
 * `backup` measures issue 11's backup and restore of a pgbench database of at least 1 GB against a
 * plain copy of its data directory (bench/backup.ts: long, needs root, boots a lab of its own);
 * `ansible` and `site-noop` time no-op runs against Ansible and on lab-small (bench/ansible.ts, bench/site-noop.ts);
 * `scale` times the no-op run on 1 to 50 light lab hosts (bench/scale.ts: needs root and the lab lock).
 */
import { parseCommandLineOrExit } from '../lib/cli/parse.ts'
import { SCALE_OPTIONS, scaleSettingsOrExit } from './scale-options.ts'

const USAGE = `usage: npm run bench -- [engine|backup|ansible|site-noop|scale] [options]
  engine   the engine's overhead per task, on loopback sshd servers (default)
  backup   issue 11: backup.ts --type full and restore-drill.ts on a >= 1 GB pgbench database, against
           a plain copy of its data directory, on a lab of its own (root; take the lab lock first)
  ansible  issue 15: the same 200-task play with Ansible and hastack on one lab host, first and no-op runs,
           and the no-op ratio (installs ansible-core; root; a lab of its own: take the lab lock first)
  site-noop  issue 15: playbooks/site.ts converged on lab-small, then timed no-op runs (root; lab lock);
           --plaintext: with tls_enabled: false (TLS is on by default)
  scale    issue 15: the no-op run of common + node_exporter on 1, 10, 30 and 50 light lab hosts, boot
           time and memory per host; table and docs/pictures/scale-curve.svg (root; the lab lock)`

const parsed = parseCommandLineOrExit(
  process.argv.slice(2),
  {
    scale: { type: 'number', valueName: 'N', description: 'backup: pgbench scale (default 70, about 1.05 GB)' },
    inventory: {
      type: 'string',
      short: 'i',
      valueName: 'FILE',
      description: 'backup: the inventory to copy for the lab (default inventory/lab-small.yml)',
    },
    plaintext: { type: 'boolean', description: 'site-noop: converge and time with tls_enabled: false' },
    ...SCALE_OPTIONS,
  },
  USAGE,
  true,
)
const [part = 'engine', ...extra] = parsed.positionals
if (extra.length > 0 || !['engine', 'backup', 'ansible', 'site-noop', 'scale'].includes(part)) {
  process.stderr.write(`ERROR: unknown benchmark part ${[part, ...extra].join(' ')}\n${USAGE}\n`)
  process.exit(1)
}
if (part === 'engine') {
  await import('./engine.ts')
} else if (part === 'ansible') {
  process.exitCode = await (await import('./ansible.ts')).ansibleBench()
} else if (part === 'site-noop') {
  process.exitCode = await (
    await import('./site-noop.ts')
  ).siteNoopBench({ plaintext: parsed.values.plaintext === true })
} else if (part === 'scale') {
  const settings = scaleSettingsOrExit(parsed.values)
  const { scaleBench } = await import('./scale.ts')
  await scaleBench(settings)
} else {
  const { backupBench } = await import('./backup.ts')
  const scale = (parsed.values.scale as number | undefined) ?? 70
  if (!Number.isInteger(scale) || scale < 1 || scale > 10_000) {
    process.stderr.write(`ERROR: --scale must be an integer from 1 to 10000, got ${scale}\n`)
    process.exit(1)
  }
  process.exitCode = await backupBench({ scale, inventory: parsed.values.inventory as string | undefined })
}
