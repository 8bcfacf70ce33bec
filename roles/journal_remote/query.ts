/**
 * Reading the central log store: the options of playbooks/logs.ts, checked against the inventory
 * before any connection, turned into one journalctl command over the store (every argument quoted
 * as one word), and journalctl's answer read back (no match and an empty store are not failures).
 */
import type { Inventory } from '../../lib/types.ts'
import { controlCharacter } from '../../lib/inventory/formats.ts'
import { sh } from '../../lib/connection/quote.ts'
import { REMOTE_JOURNAL_DIR } from './index.ts'

export interface LogQuery {
  /** Only entries of this inventory host (its host name, `_HOSTNAME=`). */
  host?: string
  /** Only entries of this systemd unit. */
  unit?: string
  /** Only entries at or after this time, in journalctl's notation. */
  since?: string
  /** Only entries whose message matches this pattern (journalctl --grep, PCRE2). */
  grep?: string
  /** At most this many lines, the newest. */
  lines: number
}

export const DEFAULT_LINES = 200
export const MAX_LINES = 100_000
const UNIT = /^[A-Za-z0-9@:._\\-]{1,256}$/
/** Absolute (`2026-11-30 05:00:00`), relative (`-1h`, `10 min ago`) or named (`today`) times. */
const SINCE = /^[A-Za-z0-9][A-Za-z0-9 :.+-]{0,63}$/

/** What is wrong with a query, one message per option (empty when it may run). */
export function logQueryErrors(query: LogQuery, inventory: Pick<Inventory, 'hosts'>): string[] {
  const errors: string[] = []
  if (query.host !== undefined && !inventory.hosts.has(query.host))
    errors.push(`--host ${JSON.stringify(query.host)} is not a host of the inventory`)
  if (query.unit !== undefined && !UNIT.test(query.unit))
    errors.push(`--unit ${JSON.stringify(query.unit)} is not a systemd unit name`)
  if (query.since !== undefined && !SINCE.test(query.since))
    errors.push(`--since ${JSON.stringify(query.since)} is not a time (e.g. "2026-11-30 05:00", -1h, "10 min ago")`)
  if (query.grep !== undefined) {
    const bad = controlCharacter(query.grep)
    if (query.grep === '' || query.grep.length > 256 || bad)
      errors.push(`--grep must be one line of 1 to 256 characters${bad ? ` (it holds ${bad})` : ''}`)
  }
  if (!Number.isInteger(query.lines) || query.lines < 1 || query.lines > MAX_LINES)
    errors.push(`--lines must be a whole number from 1 to ${MAX_LINES}`)
  return errors
}

/** The journalctl command over the central store: every option one quoted word (`--opt=value`). */
export function journalctlCommand(query: LogQuery): string {
  const words = [
    `--directory=${REMOTE_JOURNAL_DIR}`,
    '--no-pager',
    '--quiet',
    '--output=short-iso',
    `--lines=${query.lines}`,
    ...(query.unit !== undefined ? [`--unit=${query.unit}`] : []),
    ...(query.since !== undefined ? [`--since=${query.since}`] : []),
    ...(query.grep !== undefined ? [`--grep=${query.grep}`] : []),
    ...(query.host !== undefined ? [`_HOSTNAME=${query.host}`] : []),
  ]
  return sh`journalctl ${words}`
}

/** The matching lines of journalctl's answer; throws with its message when it failed. */
export function matchingLines(result: { code: number; stdout: string; stderr: string }): string[] {
  const lines = result.stdout.split('\n').filter((l) => l !== '')
  // journalctl exits 1 when --grep matched nothing, and says so when the store is still empty.
  const quietMiss = result.code === 1 && lines.length === 0
  const emptyStore = /No journal files were found/.test(result.stderr)
  if (result.code === 0 || (quietMiss && (result.stderr.trim() === '' || emptyStore))) return lines
  throw new Error(`journalctl failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`)
}
