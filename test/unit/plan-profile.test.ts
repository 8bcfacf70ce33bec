/**
 * The site bench's plan profile (bench/plan-profile.ts): the plan's probes counted by kind, the probes that
 * start no process timed as one trip, the TLS reads as typed probes and as their commands, each command probe
 * timed alone and listed slowest first.
 */
import t from 'tap'
import { planProfileLines, profilePlan } from '../../bench/plan-profile.ts'
import type { Connection, Probe, ProbeAnswer } from '../../lib/types.ts'

/** A connection whose batches take as long as their commands say (`sleep N` ms), recording each batch. */
function fakeConnection(batches: Probe[][]): Connection {
  return {
    host: 'a1',
    async runProbes(probes: readonly Probe[]): Promise<ProbeAnswer[]> {
      batches.push([...probes])
      const ms = probes.reduce((n, p) => n + (p.kind === 'run' ? Number(p.command.split(' ')[1]) : 0), 0)
      await new Promise((done) => setTimeout(done, ms))
      return probes.map(() => ({ code: 0, stdout: Buffer.from('') }))
    },
    /** The evaluator without a shell: the reader answered the first TLS read, not the others. */
    async run(_command: string[], options: { stdin: string }) {
      const count = options.stdin.split('\n').length - 1
      return { code: 0, stdout: ['0 ', ...Array.from({ length: count - 1 }, () => '127 ')].join('\n') + '\n' }
    },
  } as unknown as Connection
}

t.test('times the non-command probes as one trip, the TLS reads both ways, each command alone', async (t) => {
  const batches: Probe[][] = []
  const plan: Probe[] = [
    { kind: 'path', path: '/etc/hosts' },
    { kind: 'run', command: 'sleep 5' },
    { kind: 'unit', name: 'ssh.service' },
    { kind: 'run', command: 'sleep 60 | tee' },
    { kind: 'url', url: 'https://10.0.0.1:8008/health', caFile: '/etc/hastack/tls/ca.crt' },
  ]
  const profile = await profilePlan(fakeConnection(batches), plan)
  t.same(profile.kinds, { path: 1, run: 2, unit: 1, url: 1 })
  t.same(
    batches.map((b) => b.map((p) => p.kind)),
    [['path', 'unit'], ['url'], ['run'], ['run'], ['run']],
    'one trip for the path and the unit, the TLS read typed then as its command, then one per command',
  )
  t.match(batches[2]![0], { kind: 'run', command: /^if command -v curl / })
  t.same(profile.tls, { ...profile.tls, count: 1, alike: 1, byReader: 1 })
  t.same(
    profile.commands.map((c) => c.command),
    ['sleep 60 | tee', 'sleep 5'],
  )
  t.ok(profile.commands[0]!.ms >= 55, `the slow command measured ${profile.commands[0]!.ms} ms`)
  const lines = planProfileLines(profile)
  t.match(lines[0], /^a1's plan: 1 path, 2 run, 1 unit, 1 url\. .* Its 1 TLS reads as one trip: \d+ ms as typed /)
  t.equal(
    lines[4],
    `| ${profile.commands[0]!.ms} | \`sleep 60 \\| tee\` |`,
    'a pipe in a command keeps the table whole',
  )
})
