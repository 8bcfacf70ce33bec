/**
 * Issue 11's backup benchmark (`npm run bench -- backup`; long, not in CI, needs root): on a lab of its
 * own (a copy of inventory/lab-small.yml, booted and converged with site.ts), a pgbench database of
 * at least 1 GB on the primary, then the wall time of `playbooks/backup.ts --type full`, of
 * `playbooks/restore-drill.ts` (restore into a scratch instance on the backup host, checked), and of a
 * plain copy of a data directory on the backup host (`cp -a`, then sync). Prints a Markdown table and
 * the ratio restore / copy (the issue's goal: at most 2). Both playbooks come from the backups part
 * of issue 11: without them it stops before booting anything. The lab is removed at the end.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Lab } from '../lab/lab.ts'
import { quote } from '../lib/connection/quote.ts'
import { runPlaybook, type PlaybookRun } from '../test/stack/playbook-run.ts'
import { inventoryGroups } from '../test/stack/prometheus.ts'

const REPO = resolve(import.meta.dirname, '..')
const PLAYBOOKS = { backup: 'playbooks/backup.ts', drill: 'playbooks/restore-drill.ts' }
const DATABASE = 'bench'
const DATA_DIR = '/var/lib/postgresql/15/patroni'
const COPY_DIR = '/var/tmp/hastack-bench-copy'
const GIB = 1024 ** 3

export interface BackupBenchOptions {
  /** pgbench scale factor: about 15 MB each (70: about 1.05 GB). */
  scale: number
  /** The inventory copied for the bench's lab (default inventory/lab-small.yml). */
  inventory?: string
}

const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)

/** Runs a sh script as root on a lab host, bounded; throws with its output when it fails. */
async function root(lab: Lab, host: string, script: string, timeoutMs: number): Promise<string> {
  const r = await lab.ssh(host, `sudo sh -c ${quote(script)}`, { timeoutMs })
  if (r.code !== 0) throw new Error(`${host} (exit ${r.code}): ${script}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

/** Wall seconds of a remote script. */
async function timed(lab: Lab, host: string, script: string, timeoutMs: number): Promise<number> {
  const started = performance.now()
  await root(lab, host, script, timeoutMs)
  return (performance.now() - started) / 1000
}

async function playbook(inventory: string, file: string, label: string, extra: string[] = []): Promise<PlaybookRun> {
  log(`${file} ${extra.join(' ')}`)
  const run = await runPlaybook({
    cwd: REPO,
    launcher: 'zx',
    playbook: file,
    inventory,
    json: join(REPO, `reports/bench-${label}.json`),
    extra,
    timeoutMs: 3_600_000,
  })
  if (run.exitCode !== 0) throw new Error(`${file} failed (exit ${run.exitCode}):\n${run.tail}`)
  return run
}

/** The member that is not in recovery. */
async function primaryOf(lab: Lab, members: string[]): Promise<string> {
  for (const member of members) {
    const r = await lab.ssh(member, `sudo -u postgres psql -XAtc 'select pg_is_in_recovery()'`, { timeoutMs: 15_000 })
    if (r.stdout.trim() === 'f') return member
  }
  throw new Error(`no primary among ${members.join(', ')}`)
}

/** The drill's own figures from its line "restored and recovered in R s (files F s)". */
export function drillFigures(stdout: string): { recovered: number; files: number } {
  const m = /restored and recovered in ([0-9.]+) s \(files ([0-9.]+) s\)/.exec(stdout)
  if (!m) throw new Error(`restore-drill.ts printed no restore figures:\n${stdout.split('\n').slice(-12).join('\n')}`)
  return { recovered: Number(m[1]), files: Number(m[2]) }
}

/** The bench, start to end; returns the exit code (0: measured, whatever the ratio). */
export async function backupBench(options: BackupBenchOptions): Promise<number> {
  const missing = Object.values(PLAYBOOKS).filter((p) => !existsSync(join(REPO, p)))
  if (missing.length) {
    log(`needs ${missing.join(' and ')} (the backups part of issue 11): nothing was booted`)
    return 1
  }
  const dir = mkdtempSync(join(tmpdir(), 'hastack-bench-'))
  const inventory = join(dir, 'lab-small.yml')
  const source = readFileSync(resolve(options.inventory ?? join(REPO, 'inventory/lab-small.yml')), 'utf8')
  writeFileSync(inventory, source.replace('ssh_key: ../.lab/ssh/id_ed25519', `ssh_key: ${REPO}/.lab/ssh/id_ed25519`))
  const groups = inventoryGroups(source)
  const members = [...(groups.get('postgres') ?? [])]
  const [backupHost] = [...(groups.get('backup_repo') ?? [])]
  if (!backupHost || members.length === 0) throw new Error('the inventory needs a postgres and a backup_repo group')
  const lab = new Lab({ inventory, name: 'bench-backup', log })
  try {
    await lab.up()
    await playbook(inventory, 'playbooks/site.ts', 'site')
    const primary = await primaryOf(lab, members)
    log(`pgbench -i -s ${options.scale} on ${primary}`)
    const init = await timed(
      lab,
      primary,
      `sudo -u postgres createdb ${DATABASE} && sudo -u postgres pgbench -i -q -s ${options.scale} ${DATABASE}`,
      3_600_000,
    )
    const size = Number(
      (await root(lab, primary, `sudo -u postgres psql -XAtc "select pg_database_size('${DATABASE}')"`, 30_000)).trim(),
    )
    const dataSize = Number((await root(lab, primary, `du -sb ${DATA_DIR} | cut -f1`, 300_000)).split('\t')[0])
    log(
      `database ${(size / GIB).toFixed(2)} GiB, data directory ${(dataSize / GIB).toFixed(2)} GiB (${init.toFixed(0)} s)`,
    )
    const backup = await playbook(inventory, PLAYBOOKS.backup, 'backup', ['--type', 'full'])
    const drill = await playbook(inventory, PLAYBOOKS.drill, 'drill')
    // The plain copy, on the host the drill restores on: the data directory of its own member
    // when it is one (lab-small), else the primary's.
    const copyHost = members.includes(backupHost) ? backupHost : primary
    // A live data directory: a file PostgreSQL removes during the copy (a recycled WAL segment) is
    // not an error here; the copy's size is printed beside the source's.
    const copy = await timed(
      lab,
      copyHost,
      `rm -rf ${COPY_DIR} && { cp -a ${DATA_DIR} ${COPY_DIR} || true; } && sync -f ${COPY_DIR}`,
      3_600_000,
    )
    const copied = Number(
      (await root(lab, copyHost, `du -sb ${COPY_DIR} | cut -f1; rm -rf ${COPY_DIR}`, 600_000)).trim(),
    )
    log(`copied ${(copied / GIB).toFixed(2)} GiB in ${copy.toFixed(1)} s`)
    const figures = drillFigures(drill.stdout)
    console.log(
      `pgbench scale ${options.scale}: database ${(size / GIB).toFixed(2)} GiB` +
        `, data directory ${(dataSize / GIB).toFixed(2)} GiB, on ${primary}; restore and copy on ${copyHost}.\n`,
    )
    console.log('| step | wall time |')
    console.log('|---|---|')
    console.log(`| \`backup.ts --type full\` (whole playbook) | ${backup.seconds.toFixed(0)} s |`)
    console.log(
      `| \`restore-drill.ts\` (whole playbook: restore, start, checks, clean-up) | ${drill.seconds.toFixed(1)} s |`,
    )
    console.log(`| of which \`pgbackrest restore\` (the files) | ${figures.files.toFixed(1)} s |`)
    console.log(`| of which the files restored, recovered and promoted | ${figures.recovered.toFixed(1)} s |`)
    console.log(`| plain copy of the data directory (\`cp -a\` + sync) | ${copy.toFixed(1)} s |`)
    console.log(`\nrestore (files) / copy = ${(figures.files / copy).toFixed(2)} (goal: at most 2)`)
    console.log(`restore (files, recovered, promoted) / copy = ${(figures.recovered / copy).toFixed(2)}`)
    console.log(`restore-drill.ts (whole playbook) / copy = ${(drill.seconds / copy).toFixed(2)}`)
    console.log(`\nbackup.ts said:\n${backup.stdout.split('\n').slice(-12).join('\n')}`)
    console.log(`\nrestore-drill.ts said:\n${drill.stdout.split('\n').slice(-12).join('\n')}`)
    if (size < GIB) log(`the database is under 1 GiB: raise --scale`)
    return 0
  } finally {
    await lab.down().catch((e) => log(`lab down failed: ${e}`))
    rmSync(dir, { recursive: true, force: true })
  }
}
