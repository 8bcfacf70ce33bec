/**
 * What the probe plan's early reads cost on one host (bench site-noop, issue 15): the plan's probes by
 * kind, the batch of every probe that starts no process of its own (path states, file reads, packages,
 * units) timed as one trip, the TLS reads (served certificates, HTTPS GETs, URL waits and etcd's health,
 * which one python3 answers for a batch) timed as one trip of typed probes and as one trip of the commands
 * they stand for (with how many answers were alike, and how many the python3 reader gave itself: asked once
 * more of an evaluator that cannot start a shell), and each command probe timed alone (each one trip through
 * the privileged session), slowest first. Read-only: every probe is a read the run itself asks.
 */
import type { Connection, Probe, ProbeAnswer } from '../lib/types.ts'
import { PROBE_SCRIPT, parseProbeAnswers, probeCommand, probeInput } from '../lib/facts/probes.ts'

/** The kinds one python3 process answers for a batch (lib/facts/tls-reader.ts). */
const TLS_KINDS = new Set<Probe['kind']>(['served', 'get', 'url', 'health'])

/** The evaluator, unable to start a command: every answer not 127 is one it (or its python3 reader) gave. */
const WITHOUT_SHELL = PROBE_SCRIPT.replace("'/bin/sh', '-c'", "'/nonexistent/sh', '-c'")

export interface PlanProfile {
  host: string
  /** How many probes of each kind the host's plan holds. */
  kinds: Record<string, number>
  /** One trip answering every probe that is neither a command nor a TLS read. */
  noCommandsMs: number
  /**
   * The TLS reads: how many, one trip as typed probes, one trip as the commands they stand for, how many
   * answers of the two trips were alike, how many the reader gave without a command.
   */
  tls: { count: number; typedMs: number; asCommandsMs: number; alike: number; byReader: number }
  /** Each command probe alone, slowest first (the command cut to 100 characters). */
  commands: { ms: number; command: string }[]
}

/** Milliseconds one batch of these probes takes on the connection, and its answers. */
async function timed(conn: Connection, probes: Probe[]): Promise<{ ms: number; answers: ProbeAnswer[] }> {
  const started = performance.now()
  const answers = probes.length > 0 ? await conn.runProbes!(probes) : []
  return { ms: Math.round(performance.now() - started), answers }
}

const same = (a: ProbeAnswer, b: ProbeAnswer) => a.code === b.code && a.stdout.equals(b.stdout)

/**
 * Time the host's plan: its probes that start no process as one batch, its TLS reads as one batch of typed
 * probes then as one of their commands, then each command probe alone.
 */
export async function profilePlan(conn: Connection, probes: Probe[]): Promise<PlanProfile> {
  if (!conn.runProbes) throw new Error(`${conn.host}: the connection cannot batch probes`)
  const kinds: Record<string, number> = {}
  for (const probe of probes) kinds[probe.kind] = (kinds[probe.kind] ?? 0) + 1
  const { ms: noCommandsMs } = await timed(
    conn,
    probes.filter((p) => p.kind !== 'run' && !TLS_KINDS.has(p.kind)),
  )
  const tlsReads = probes.filter((p) => TLS_KINDS.has(p.kind))
  const typed = await timed(conn, tlsReads)
  const asCommands = await timed(
    conn,
    tlsReads.map((p) => ({ kind: 'run' as const, command: probeCommand(p)! })),
  )
  const alone =
    tlsReads.length > 0 ? await conn.run(['perl', '-e', WITHOUT_SHELL], { stdin: probeInput(tlsReads) }) : undefined
  const tls = {
    count: tlsReads.length,
    typedMs: typed.ms,
    asCommandsMs: asCommands.ms,
    alike: typed.answers.filter((answer, i) => same(answer, asCommands.answers[i]!)).length,
    byReader: alone ? parseProbeAnswers(alone.stdout, tlsReads.length).filter((a) => a.code !== 127).length : 0,
  }
  const commands: PlanProfile['commands'] = []
  for (const probe of probes) {
    if (probe.kind !== 'run') continue
    const { ms } = await timed(conn, [probe])
    commands.push({ ms, command: probe.command.slice(0, 100) })
  }
  commands.sort((a, b) => b.ms - a.ms)
  return { host: conn.host, kinds, noCommandsMs, tls, commands }
}

/** The profile as Markdown: kinds, the non-command batch, the command probes' sum and the slowest. */
export function planProfileLines(profile: PlanProfile, slowest = 12): string[] {
  const kinds = Object.entries(profile.kinds).map(([kind, n]) => `${n} ${kind}`)
  const summed = profile.commands.reduce((n, c) => n + c.ms, 0)
  return [
    `${profile.host}'s plan: ${kinds.join(', ')}. The probes that start no process of their own, as one trip: ` +
      `${profile.noCommandsMs} ms. Its ${profile.tls.count} TLS reads as one trip: ${profile.tls.typedMs} ms ` +
      `as typed probes (one python3), ${profile.tls.asCommandsMs} ms as the commands they stand for ` +
      `(${profile.tls.alike} answers alike; ${profile.tls.byReader} given by the reader itself). ` +
      `The ${profile.commands.length} command probes, each alone: ${summed} ms summed ` +
      '(a batch runs six side by side); the slowest:',
    '',
    '| ms | command |',
    '|---|---|',
    ...profile.commands.slice(0, slowest).map((c) => `| ${c.ms} | \`${c.command.replaceAll('|', '\\|')}\` |`),
  ]
}
