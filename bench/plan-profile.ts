/**
 * What the probe plan's early reads cost on one host (bench site-noop, issue 15): the plan's probes by
 * kind, the batch of every probe that starts no process of its own (path states, file reads, packages,
 * units) timed as one trip, and each command probe timed alone (each one trip through the privileged
 * session), slowest first. Read-only: every probe is a read the run itself asks.
 */
import type { Connection, Probe } from '../lib/types.ts'

export interface PlanProfile {
  host: string
  /** How many probes of each kind the host's plan holds. */
  kinds: Record<string, number>
  /** One trip answering every probe that is not a command. */
  noCommandsMs: number
  /** Each command probe alone, slowest first (the command cut to 100 characters). */
  commands: { ms: number; command: string }[]
}

/** Time the host's plan: its non-command probes as one batch, then each command probe alone. */
export async function profilePlan(conn: Connection, probes: Probe[]): Promise<PlanProfile> {
  if (!conn.runProbes) throw new Error(`${conn.host}: the connection cannot batch probes`)
  const kinds: Record<string, number> = {}
  for (const probe of probes) kinds[probe.kind] = (kinds[probe.kind] ?? 0) + 1
  const others = probes.filter((p) => p.kind !== 'run')
  let started = performance.now()
  if (others.length > 0) await conn.runProbes(others)
  const noCommandsMs = Math.round(performance.now() - started)
  const commands: PlanProfile['commands'] = []
  for (const probe of probes) {
    if (probe.kind !== 'run') continue
    started = performance.now()
    await conn.runProbes([probe])
    commands.push({ ms: Math.round(performance.now() - started), command: probe.command.slice(0, 100) })
  }
  commands.sort((a, b) => b.ms - a.ms)
  return { host: conn.host, kinds, noCommandsMs, commands }
}

/** The profile as Markdown: kinds, the non-command batch, the command probes' sum and the slowest. */
export function planProfileLines(profile: PlanProfile, slowest = 12): string[] {
  const kinds = Object.entries(profile.kinds).map(([kind, n]) => `${n} ${kind}`)
  const summed = profile.commands.reduce((n, c) => n + c.ms, 0)
  return [
    `${profile.host}'s plan: ${kinds.join(', ')}. The probes that start no process of their own, as one trip: ` +
      `${profile.noCommandsMs} ms. The ${profile.commands.length} command probes, each alone: ${summed} ms summed ` +
      '(a batch runs six side by side); the slowest:',
    '',
    '| ms | command |',
    '|---|---|',
    ...profile.commands.slice(0, slowest).map((c) => `| ${c.ms} | \`${c.command.replaceAll('|', '\\|')}\` |`),
  ]
}
