/**
 * The machine-readable report written by --json FILE: per host its counts and
 * per task its status, start and end (ISO timestamps), duration and reason, plus totals. CI and the lab tests
 * read it (a second converge must show changed: 0 everywhere).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { HostStats } from './reporter.ts'
import { mask } from './mask.ts'
import type { RunPhases } from '../play/phases.ts'

export interface JsonReport {
  playbook: string
  check: boolean
  success: boolean
  durationMs: number
  /**
   * Milliseconds from the process's start to the run's first connection (Node's start-up, loading the
   * modules and the inventory, the run lock); `durationMs` runs from there to the recap. Playbook scripts only.
   */
  startupMs?: number
  /** Where the time from the first connection to the recap went outside the tasks (lib/play/phases.ts). */
  phases?: RunPhases
  /** The signal that stopped the run early (each host's `interrupted` says where). */
  interrupted?: string
  totals: { ok: number; changed: number; failed: number; skipped: number; unreachable: number }
  hosts: Record<string, Omit<HostStats, 'tasks'> & { tasks: JsonTask[] }>
}

export interface JsonTask {
  play: string
  task: string
  status: string
  startedAt?: string
  endedAt?: string
  durationMs: number
  reason?: string
  error?: string
}

export function buildReport(
  playbook: string,
  check: boolean,
  success: boolean,
  durationMs: number,
  stats: Map<string, HostStats>,
  interrupted?: string,
): JsonReport {
  const totals = { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0 }
  const hosts: JsonReport['hosts'] = {}
  for (const [host, s] of stats) {
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += s[k]
    hosts[host] = {
      ...s,
      tasks: s.tasks.map((t) => ({
        play: t.play,
        task: t.task,
        status: t.status,
        startedAt: t.startedAt,
        endedAt: t.endedAt,
        durationMs: t.durationMs,
        reason: t.reason,
        error: t.error,
      })),
    }
  }
  return { playbook, check, success, durationMs, interrupted, totals, hosts }
}

/** Write the report (masked) to a file, creating its directory. */
export async function writeReport(file: string, report: JsonReport): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, mask(JSON.stringify(report, null, 2)) + '\n')
}
