/**
 * Issue 15's side-by-side bench (`npm run bench -- ansible`; needs root, boots a lab of its own: take the
 * lab lock first). Installs Debian's `ansible-core` on this machine when it is missing (apt-get, bounded),
 * boots one lab host, and runs the same 200-task play (bench/ansible/play.yml and play.ts, one vars.yml)
 * with Ansible (pipelining, ControlPersist) and with hastack: a first run on a clean host and a no-op
 * re-run each. Prints the wall seconds of each run (the command as a user types it, start-up included)
 * and the ratio of the no-op runs. The lab is removed at the end.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse, stringify } from 'yaml'
import { Lab } from '../lab/lab.ts'
import { quote } from '../lib/connection/quote.ts'
import { runPlaybook } from '../test/stack/playbook-run.ts'

const REPO = resolve(import.meta.dirname, '..')
const PLAY_DIR = join(REPO, 'bench/ansible')
const HOST = 'node1'
const RUN_TIMEOUT_MS = 900_000
const APT_TIMEOUT_MS = 600_000

const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)

interface Finished {
  code: number
  seconds: number
  output: string
}

/** Run a local command, bounded in time; never throws for a non-zero exit. */
function command(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Finished> {
  const started = performance.now()
  const child = spawn(file, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
  return new Promise((done) => {
    const end = (code: number) => {
      clearTimeout(timer)
      done({ code, seconds: (performance.now() - started) / 1000, output })
    }
    // A program that is not installed fails to start (ENOENT): exit 127, as a shell reports it.
    child.on('error', (error) => {
      output += `${error.message}\n`
      end(127)
    })
    child.on('close', (code) => end(code ?? 1))
  })
}

/** Debian's ansible-core on this machine: installed with apt-get when `ansible-playbook` is missing. */
async function ensureAnsible(): Promise<string> {
  const present = await command('ansible-playbook', ['--version'], {}, 60_000).catch(() => undefined)
  if (present?.code !== 0) {
    log('installing ansible-core with apt-get')
    const env = { DEBIAN_FRONTEND: 'noninteractive' }
    const install = await command(
      'apt-get',
      ['install', '-y', '-q', '--no-install-recommends', 'ansible-core'],
      env,
      APT_TIMEOUT_MS,
    )
    if (install.code !== 0) throw new Error(`apt-get install ansible-core failed:\n${install.output.slice(-2000)}`)
  }
  const version = await command('ansible-playbook', ['--version'], {}, 60_000)
  return version.output.split('\n')[0]!.trim()
}

/** Runs a sh script as root on the lab host, bounded; throws with its output when it fails. */
async function root(lab: Lab, script: string, timeoutMs = 300_000): Promise<void> {
  const r = await lab.ssh(HOST, `sudo sh -c ${quote(script)}`, { timeoutMs })
  if (r.code !== 0) throw new Error(`${HOST} (exit ${r.code}): ${script}\n${r.stdout}${r.stderr}`)
}

/** The services' template unit, and python3-apt (what Ansible's apt module needs), installed once. */
function prepareScript(aptProxy: string): string {
  const proxy = `Acquire::http::Proxy=${aptProxy}`
  return [
    "cat > /etc/systemd/system/hastack-bench@.service <<'UNIT'",
    '[Unit]',
    'Description=hastack bench service %i',
    '[Service]',
    'ExecStart=/bin/sleep infinity',
    '[Install]',
    'WantedBy=multi-user.target',
    'UNIT',
    'systemctl daemon-reload',
    `apt-get -q -o ${quote(proxy)} update >/dev/null`,
    `DEBIAN_FRONTEND=noninteractive apt-get -q -y -o ${quote(proxy)} install --no-install-recommends python3-apt >/dev/null`,
  ].join('\n')
}

/** Back to a clean host before each tool's first run: services stopped and disabled, files removed. */
function resetScript(benchRoot: string): string {
  return [
    'for i in $(seq 1 40); do systemctl disable --now "hastack-bench@$i.service" >/dev/null 2>&1 || true; done',
    `rm -rf -- ${quote(benchRoot)}`,
  ].join('\n')
}

/** ansible.cfg: pipelining, ControlPersist, the lab's pinned host keys, everything kept in `dir`. */
function ansibleConfig(dir: string, knownHosts: string): string {
  const sshArgs = [
    '-o ControlMaster=auto -o ControlPersist=600s -o IdentitiesOnly=yes',
    `-o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHosts}`,
  ].join(' ')
  return [
    '[defaults]',
    'host_key_checking = True',
    'interpreter_python = /usr/bin/python3',
    'retry_files_enabled = False',
    'nocolor = True',
    '[ssh_connection]',
    'pipelining = True',
    `ssh_args = ${sshArgs}`,
    `control_path_dir = ${join(dir, 'cp')}`,
    '',
  ].join('\n')
}

/** Ansible's recap of the host: its changed and failed counts, or undefined when it printed none. */
function ansibleRecap(output: string): { changed: number; failed: number } | undefined {
  const m = new RegExp(`^${HOST}\\s+: ok=\\d+\\s+changed=(\\d+)\\s+unreachable=(\\d+)\\s+failed=(\\d+)`, 'm').exec(
    output,
  )
  return m ? { changed: Number(m[1]), failed: Number(m[2]) + Number(m[3]) } : undefined
}

export interface Measured {
  tool: string
  run: string
  seconds: number
  changed: number
}

/** The bench, start to end; returns the exit code (0: measured, whatever the ratio). */
export async function ansibleBench(): Promise<number> {
  const version = await ensureAnsible()
  log(version)
  const vars = parse(readFileSync(join(PLAY_DIR, 'vars.yml'), 'utf8')) as { bench_root: string }
  const dir = mkdtempSync(join(tmpdir(), 'hastack-bench-ansible-'))
  const inventory = join(dir, 'bench.yml')
  const key = join(REPO, '.lab/ssh/id_ed25519')
  writeFileSync(
    inventory,
    stringify({
      all: { vars: { ssh_user: 'hastack', ssh_key: key }, children: { bench: { hosts: { [HOST]: null } } } },
    }),
  )
  const lab = new Lab({ inventory, name: 'bench-ansible', log })
  const results: Measured[] = []
  try {
    await lab.up()
    const hostVars = parse(readFileSync(join(dir, 'host_vars', HOST, 'lab.yml'), 'utf8')) as Record<string, string>
    const address = hostVars.address!
    log(`preparing ${HOST} (${address}): the services' template unit, python3-apt`)
    await root(lab, prepareScript(hostVars.apt_proxy!))
    mkdirSync(join(dir, 'cp'))
    mkdirSync(join(dir, 'ansible-home'))
    writeFileSync(join(dir, 'ansible.cfg'), ansibleConfig(dir, join(dir, 'bench.known_hosts')))
    const ansibleHosts = join(dir, 'ansible-hosts.yml')
    writeFileSync(
      ansibleHosts,
      stringify({
        bench: {
          hosts: { [HOST]: { ansible_host: address, ansible_user: 'hastack', ansible_ssh_private_key_file: key } },
        },
      }),
    )
    const ansibleEnv = { ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_HOME: join(dir, 'ansible-home') }

    await root(lab, resetScript(vars.bench_root))
    for (const run of ['first run', 'no-op re-run']) {
      log(`Ansible, ${run}`)
      const r = await command(
        'ansible-playbook',
        ['-i', ansibleHosts, join(PLAY_DIR, 'play.yml')],
        ansibleEnv,
        RUN_TIMEOUT_MS,
      )
      const recap = ansibleRecap(r.output)
      if (r.code !== 0 || !recap || recap.failed > 0)
        throw new Error(`ansible-playbook failed:\n${r.output.slice(-3000)}`)
      results.push({ tool: 'Ansible', run, seconds: r.seconds, changed: recap.changed })
    }

    await root(lab, resetScript(vars.bench_root))
    for (const [i, run] of ['first run', 'no-op re-run'].entries()) {
      log(`hastack, ${run}`)
      const r = await runPlaybook({
        cwd: REPO,
        playbook: 'bench/ansible/play.ts',
        inventory,
        json: join(dir, `hastack-${i + 1}.json`),
        timeoutMs: RUN_TIMEOUT_MS,
      })
      if (r.exitCode !== 0) throw new Error(`bench/ansible/play.ts failed (exit ${r.exitCode}):\n${r.tail}`)
      results.push({ tool: 'hastack', run, seconds: r.seconds, changed: r.totals.changed })
    }
  } finally {
    await lab.down().catch((e) => log(`lab down failed: ${e}`))
    rmSync(dir, { recursive: true, force: true })
  }
  printResults(version, results)
  return 0
}

function printResults(version: string, results: Measured[]): void {
  const load = loadavg().map((n) => n.toFixed(2))
  console.log(`One lab host, the same 200 tasks; ${version}; wall time of each command, start-up included.`)
  console.log(`This machine's load average at the end: ${load.join(' ')} (1, 5, 15 min).\n`)
  console.log('| tool | run | wall time | changed |')
  console.log('|---|---|---|---|')
  for (const r of results) console.log(`| ${r.tool} | ${r.run} | ${r.seconds.toFixed(2)} s | ${r.changed} |`)
  const noop = (tool: string) => results.find((r) => r.tool === tool && r.run === 'no-op re-run')!.seconds
  console.log(`\nno-op ratio (Ansible ÷ hastack): ${(noop('Ansible') / noop('hastack')).toFixed(1)}×`)
}
