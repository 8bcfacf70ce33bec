/**
 * Test harness for engine tests: real sshd servers on loopback (see
 * test/fixtures/sshd.ts), an inventory file naming them, and a way to run
 * plays through the real playbook entry point while capturing its output.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { startSshds, TEST_USER, type Sshd } from '../fixtures/sshd.ts'
import { playbook, type PlaybookResult } from '../../lib/playbook.ts'
import { Reporter } from '../../lib/output/reporter.ts'
import type { Play } from '../../lib/types.ts'

export interface Lab {
  sshds: Sshd[]
  hosts: string[]
  dir: string
  inventory: string
  /** Run plays with extra CLI args; output lines are collected in `lines`. */
  run(plays: Play[], args?: string[]): Promise<PlaybookResult & { lines: string[] }>
  stop(): Promise<void>
}

/** Start `count` sshds and write an inventory (hosts h1..hN in group `web`, plus `extra` YAML merged into all.vars). */
export async function loopbackHosts(
  count: number,
  options: { vars?: Record<string, unknown>; unreachable?: boolean } = {},
): Promise<Lab> {
  const sshds = await startSshds(count)
  const dir = await mkdtemp(join(tmpdir(), 'hastack-engine-'))
  const hosts: Record<string, unknown> = {}
  // Every host is this machine: each keeps its engine state (secret fingerprints) in its own directory.
  sshds.forEach(
    (s, i) =>
      (hosts[`h${i + 1}`] = {
        address: `127.0.1.${i + 1}`,
        ssh_host: s.address,
        ssh_port: s.port,
        ssh_key: s.keyFile,
        hastack_state_dir: join(dir, `state-h${i + 1}`),
      }),
  )
  if (options.unreachable)
    hosts.ghost = {
      address: '127.0.1.99',
      ssh_host: '127.0.0.1',
      ssh_port: 1,
      ssh_key: sshds[0]!.keyFile,
      ssh_connect_timeout: 2,
    }
  const inventory = join(dir, 'hosts.yml')
  await writeFile(
    inventory,
    stringify({ all: { vars: { ssh_user: TEST_USER, ...options.vars }, children: { web: { hosts } } } }),
  )
  return {
    sshds,
    hosts: Object.keys(hosts),
    dir,
    inventory,
    async run(plays, args = []) {
      const lines: string[] = []
      const reporter = new Reporter({
        verbosity: 1,
        diff: args.includes('--diff'),
        color: false,
        write: (l) => lines.push(l),
      })
      const result = await playbook({ name: 'test', plays, argv: ['-i', inventory, ...args], embedded: true, reporter })
      return { ...result, lines }
    },
    async stop() {
      await Promise.all(sshds.map((s) => s.stop()))
      await rm(dir, { recursive: true, force: true })
    },
  }
}
