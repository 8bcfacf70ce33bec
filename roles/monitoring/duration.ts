/**
 * Prometheus durations ("15s", "1h30m", "15d") read and checked before any connection,
 * so a bad retention or interval in the inventory is an input error, not a failed reload.
 */

const UNITS: [string, number][] = [
  ['y', 365 * 24 * 3600_000],
  ['w', 7 * 24 * 3600_000],
  ['d', 24 * 3600_000],
  ['h', 3600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
]
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/

/** Milliseconds of a Prometheus duration; throws on anything else (also on an empty or zero one). */
export function durationMs(text: string): number {
  const match = DURATION.exec(text)
  if (!match || text === '') throw new Error(`"${text}" is not a duration like 15s, 2h or 15d`)
  const ms = UNITS.reduce((sum, [, unit], i) => sum + Number(match[i + 1] ?? 0) * unit, 0)
  if (ms === 0) throw new Error(`"${text}" is a zero duration`)
  return ms
}

/** Error messages for a duration variable that is not within [min, max]. */
export function durationErrors(name: string, value: unknown, minMs: number, maxMs: number, range: string): string[] {
  try {
    const ms = durationMs(String(value))
    return ms < minMs || ms > maxMs ? [`${name} is ${String(value)}: it must be between ${range}`] : []
  } catch (e) {
    return [`${name}: ${(e as Error).message}`]
  }
}
