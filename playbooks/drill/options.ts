/**
 * drill.ts's command line, checked before anything is loaded or connected: which fault (kill, stop,
 * freeze, partition) on which target (the PostgreSQL or Redis primary, the load balancer clients reach,
 * an etcd member, an app host), how long the load runs, when the fault comes, how many repetitions,
 * where the report goes, and optionally the host the primary is moved to before each repetition.
 */
import type { OptionSpecs, OptionValue } from '../../lib/cli/parse.ts'
import { FORMATS } from '../../lib/inventory/formats.ts'
import { InputError } from '../../lib/types.ts'

export const FAULTS = ['kill', 'stop', 'freeze', 'partition'] as const
export type Fault = (typeof FAULTS)[number]

export const TARGETS = ['postgres-primary', 'redis-primary', 'lb', 'etcd-member', 'app'] as const
export type Target = (typeof TARGETS)[number]

export interface DrillOptions {
  fault: Fault
  target: Target
  /** Seconds of load; the fault holds from `faultAtS` to the end of the load. */
  durationS: number
  /** Seconds after the first vote when the fault is injected. */
  faultAtS: number
  repeat: number
  /** Votes per second. */
  rate: number
  /** Directory of the JSON report and the pictures. */
  out: string
  /** The lab instance's name, when it is not the inventory file's name. */
  labName?: string
  /** Move the target's primary to this host before each repetition (postgres-primary, redis-primary). */
  on?: string
}

export const DRILL_OPTIONS: OptionSpecs = {
  fault: { type: 'string', valueName: 'KIND', description: `the fault: ${FAULTS.join(', ')} (required)` },
  target: { type: 'string', valueName: 'WHAT', description: `where: ${TARGETS.join(', ')} (required)` },
  duration: {
    type: 'number',
    valueName: 'S',
    description: 'seconds of load (default 45 for postgres-primary, 25 otherwise); the fault holds until its end',
  },
  'fault-at': { type: 'number', valueName: 'S', description: 'inject the fault this long after the first vote (5)' },
  repeat: { type: 'number', valueName: 'N', description: 'repetitions, each from a healthy stack (1, at most 20)' },
  rate: { type: 'number', valueName: 'N', description: 'votes per second (30, at most 200)' },
  out: { type: 'string', valueName: 'DIR', description: 'where the JSON report and the pictures go (reports/)' },
  'lab-name': { type: 'string', valueName: 'NAME', description: "the lab's name (default: the inventory's file name)" },
  on: { type: 'string', valueName: 'HOST', description: 'move the primary to HOST before each repetition' },
}

function oneOf<T extends string>(value: OptionValue, allowed: readonly T[], option: string): T {
  if (typeof value !== 'string') throw new InputError(`--${option} is required: one of ${allowed.join(', ')}`)
  if (!(allowed as readonly string[]).includes(value))
    throw new InputError(`--${option} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`)
  return value as T
}

function bounded(value: OptionValue, fallback: number, option: string, low: number, high: number): number {
  const n = value === undefined ? fallback : Number(value)
  if (!Number.isFinite(n) || n < low || n > high)
    throw new InputError(`--${option} must be between ${low} and ${high}, got ${JSON.stringify(value)}`)
  return n
}

/** The options, each checked; throws InputError naming the first bad one. */
export function drillOptions(values: Record<string, OptionValue>): DrillOptions {
  const fault = oneOf(values.fault, FAULTS, 'fault')
  const target = oneOf(values.target, TARGETS, 'target')
  const faultAtS = bounded(values['fault-at'], 5, 'fault-at', 1, 60)
  const durationS = bounded(values.duration, target === 'postgres-primary' ? 45 : 25, 'duration', faultAtS + 10, 600)
  const repeat = bounded(values.repeat, 1, 'repeat', 1, 20)
  if (!Number.isInteger(repeat)) throw new InputError(`--repeat must be a whole number, got ${repeat}`)
  const rate = bounded(values.rate, 30, 'rate', 1, 200)
  const out = values.out === undefined ? 'reports' : String(values.out)
  if (!FORMATS['one-line']!.test(out) || out === '') throw new InputError('--out must be a one-line directory path')
  const labName = values['lab-name'] === undefined ? undefined : String(values['lab-name'])
  const on = values.on === undefined ? undefined : String(values.on)
  if (on !== undefined && target !== 'postgres-primary' && target !== 'redis-primary')
    throw new InputError('--on moves a primary: only with --target postgres-primary or redis-primary')
  if (on !== undefined && !FORMATS.hostname!.test(on)) throw new InputError(`--on must be a host name, got ${on}`)
  return { fault, target, durationS, faultAtS, repeat, rate, out, labName, on }
}
