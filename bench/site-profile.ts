/**
 * Where a run's time goes, from its --json report: per play, the span from its first task's start
 * to its last task's end (plays run one after another, so the spans add up to the run) and each
 * host's own span in it; the slowest host of a play is the one the next play waits for. And the time
 * outside the tasks (`phases`): the run's own steps and each host's set-up.
 */
import type { JsonReport } from '../lib/output/json-report.ts'
import type { HostPhases, RunPhases } from '../lib/play/phases.ts'

export interface PlaySpan {
  play: string
  /** From the play's first task's start to its last task's end, over every host. */
  ms: number
  /** Each host's span in the play and its task count, in the order the hosts first appear. */
  hosts: { host: string; ms: number; tasks: number }[]
}

/** The plays of a report in the order they ran, with their spans. */
export function playSpans(report: Pick<JsonReport, 'hosts'>): PlaySpan[] {
  const plays = new Map<
    string,
    { start: number; end: number; hosts: Map<string, { start: number; end: number; tasks: number }> }
  >()
  for (const [host, stats] of Object.entries(report.hosts)) {
    for (const task of stats.tasks) {
      if (!task.startedAt || !task.endedAt) continue
      const [start, end] = [Date.parse(task.startedAt), Date.parse(task.endedAt)]
      const play = plays.get(task.play) ?? { start, end, hosts: new Map() }
      play.start = Math.min(play.start, start)
      play.end = Math.max(play.end, end)
      const own = play.hosts.get(host) ?? { start, end, tasks: 0 }
      play.hosts.set(host, { start: Math.min(own.start, start), end: Math.max(own.end, end), tasks: own.tasks + 1 })
      plays.set(task.play, play)
    }
  }
  return [...plays.entries()]
    .sort((a, b) => a[1].start - b[1].start)
    .map(([play, p]) => ({
      play,
      ms: p.end - p.start,
      hosts: [...p.hosts.entries()].map(([host, h]) => ({ host, ms: h.end - h.start, tasks: h.tasks })),
    }))
}

/** The spans as a Markdown table: play, span, each host's span and tasks. */
export function playSpanTable(spans: PlaySpan[]): string[] {
  const rows = spans.map(
    (s) => `| ${s.play} | ${s.ms} ms | ${s.hosts.map((h) => `${h.host} ${h.ms} ms (${h.tasks} tasks)`).join(', ')} |`,
  )
  return ['| play | span | per host: span (tasks) |', '|---|---|---|', ...rows]
}

/** The run's steps, in the order they happen, with what each one is. */
const RUN_STEPS: [keyof RunPhases, string][] = [
  ['planReadMs', 'reading the probe plan'],
  ['hostsReadyMs', 'every host connected and locked, its secret fingerprints read (the secret guard)'],
  ['firstTaskAtMs', 'run start to the first task'],
  ['tasksMs', 'first task start to last task end'],
  ['playsMs', 'the plays (tasks, role logic, handlers)'],
  ['afterLastTaskMs', 'last task end to the recap'],
  ['fingerprintsMs', 'recording the secret fingerprints'],
  ['closeMs', 'releasing the host locks, closing the connections'],
  ['planWriteMs', 'writing the probe plan'],
]
const HOST_STEPS: (keyof HostPhases)[] = ['connectMs', 'lockMs', 'factsMs', 'planBatchMs', 'readyAtMs']

/** The time outside the tasks as two Markdown tables (the run's steps; each host's set-up); none without phases. */
export function phaseTables(report: Pick<JsonReport, 'hosts' | 'phases' | 'durationMs'>): string[] {
  const { phases } = report
  if (!phases) return []
  const ms = (n: number | undefined) => (n === undefined ? '–' : `${n} ms`)
  const run = RUN_STEPS.map(([name, what]) => `| ${name} | ${what} | ${ms(phases[name])} |`)
  const hosts = Object.entries(report.hosts).map(
    ([host, stats]) => `| ${host} | ${HOST_STEPS.map((name) => ms(stats.phases?.[name])).join(' | ')} |`,
  )
  return [
    `| run step (of ${report.durationMs} ms) | what | time |`,
    '|---|---|---|',
    ...run,
    '',
    `| host | ${HOST_STEPS.join(' | ')} |`,
    `|---|${HOST_STEPS.map(() => '---|').join('')}`,
    ...hosts,
  ]
}
