/**
 * The local files a connection needs are checked before any connection: a
 * missing or group/world-readable ssh_key, or a strict inventory without its
 * known_hosts file, is bad input (exit 1, the file and the inventory key named),
 * never "unreachable". The hosts point at port 1, where nothing listens.
 */
import { chmod, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { playbook } from '../../lib/playbook.ts'
import { Reporter } from '../../lib/output/reporter.ts'
import type { Play } from '../../lib/types.ts'
import { tree } from '../fixtures/tree.ts'

const play: Play = { name: 'nothing', hosts: 'all', tasks: async () => {} }

/** Run the play on an inventory file; return the exit code and what went to stderr and the reporter. */
async function run(inventory: string, args: string[] = []): Promise<{ exitCode: number; output: string }> {
  const lines: string[] = []
  const reporter = new Reporter({ verbosity: 0, diff: false, color: false, write: (l) => lines.push(l) })
  const write = process.stderr.write
  const capture = (chunk: string | Uint8Array) => (lines.push(String(chunk)), true)
  process.stderr.write = capture as typeof process.stderr.write
  try {
    const argv = ['-i', inventory, ...args]
    const result = await playbook({ name: 'test', plays: [play], argv, embedded: true, reporter })
    return { exitCode: result.exitCode, output: lines.join('\n') }
  } finally {
    process.stderr.write = write
  }
}

const inventory = (vars: string) => `all:\n  vars:\n${vars}  hosts:\n    db1: { address: 127.0.0.1, ssh_port: 1 }\n`

t.test('a missing ssh_key is refused with exit 1 naming the file and the key', async (t) => {
  const dir = await tree({ 'lab.yml': inventory('    ssh_key: keys/id_ed25519\n') })
  const { exitCode, output } = await run(path.join(dir, 'lab.yml'))
  t.equal(exitCode, 1)
  t.match(output, `lab.yml:3 (all.vars.ssh_key): ssh_key file ${dir}/keys/id_ed25519 does not exist`)
  t.notMatch(output, /unreachable|cannot connect/)
})

t.test('an ssh_key readable by group or others is refused with exit 1 and how to fix it', async (t) => {
  const dir = await tree({ 'lab.yml': inventory('    ssh_key: id_ed25519\n'), id_ed25519: 'not used\n' })
  const key = path.join(dir, 'id_ed25519')
  for (const mode of [0o644, 0o640]) {
    await chmod(key, mode)
    const { exitCode, output } = await run(path.join(dir, 'lab.yml'))
    t.equal(exitCode, 1)
    const shown = `0${mode.toString(8)}`
    t.match(output, `(all.vars.ssh_key): ssh_key file ${key} is readable by group or others (mode ${shown})`)
    t.match(output, `chmod 600 ${key}`)
  }
})

t.test('listing hosts needs no key file', async (t) => {
  const dir = await tree({ 'lab.yml': inventory('    ssh_key: keys/absent\n') })
  const { exitCode, output } = await run(path.join(dir, 'lab.yml'), ['--list-hosts'])
  t.equal(exitCode, 0)
  t.match(output, 'db1')
})

t.test('strict checking without its known_hosts file is refused; a missing directory too', async (t) => {
  const dir = await tree({ 'lab.yml': inventory('    ssh_host_key_checking: strict\n') })
  const strict = await run(path.join(dir, 'lab.yml'))
  t.equal(strict.exitCode, 1)
  const file = `${dir}/lab.known_hosts`
  t.match(strict.output, `(all.vars.ssh_host_key_checking): ssh_host_key_checking is strict but`)
  t.match(strict.output, `the known_hosts file ${file} does not exist`)

  await writeFile(path.join(dir, 'lab.yml'), inventory('    ssh_known_hosts_file: no/such/dir/known_hosts\n'))
  const missingDir = await run(path.join(dir, 'lab.yml'))
  t.equal(missingDir.exitCode, 1)
  const missing = `${dir}/no/such/dir/known_hosts`
  t.match(missingDir.output, `(all.vars.ssh_known_hosts_file): the directory of the known_hosts file ${missing}`)
})

t.test('ssh_host_key_checking accepts only accept-new and strict', async (t) => {
  const dir = await tree({ 'lab.yml': inventory('    ssh_host_key_checking: "no"\n') })
  const { exitCode, output } = await run(path.join(dir, 'lab.yml'))
  t.equal(exitCode, 1)
  t.match(output, /ssh_host_key_checking/)
})
