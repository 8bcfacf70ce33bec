/**
 * The scale bench's command-line options (`npm run bench -- scale --sizes 1,10,30,50 --rounds 3
 * --forks 10,50`), checked before any lab boots: a bad value exits 1 and names the option.
 */
import type { OptionSpecs, OptionValue } from '../lib/cli/parse.ts'
import { InputError } from '../lib/types.ts'
import type { ScaleBenchOptions } from './scale.ts'

/** The counts issue 15 asks for. */
export const DEFAULT_SIZES = [1, 10, 30, 50]
/** The most hosts the bench boots: what this 2-core, 24 GiB machine is sized for. */
export const MAX_HOSTS = 50
const MAX_ROUNDS = 20
const MAX_FORKS = 200

export const SCALE_OPTIONS: OptionSpecs = {
  sizes: { type: 'string', valueName: 'N,N', description: `scale: host counts (default ${DEFAULT_SIZES.join(',')})` },
  rounds: { type: 'number', valueName: 'N', description: 'scale: no-op runs per host count, median shown (default 3)' },
  forks: {
    type: 'string',
    valueName: 'N,N',
    description: "scale: --forks of the no-op runs, one curve each (default: the engine's own)",
  },
}

/** Comma-separated whole numbers from 1 to max, distinct and ascending; refuses anything else. */
function parseCounts(option: string, text: string, max: number): number[] {
  const parts = text.split(',').map((p) => p.trim())
  const counts = parts.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : NaN))
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > max))
    throw new InputError(`--${option} takes whole numbers from 1 to ${max} separated by commas, got "${text}"`)
  return [...new Set(counts)].sort((a, b) => a - b)
}

/** The bench's settings from the parsed command line; throws InputError naming the bad option. */
export function scaleSettings(values: Record<string, OptionValue>): ScaleBenchOptions {
  const sizes = values.sizes === undefined ? DEFAULT_SIZES : parseCounts('sizes', String(values.sizes), MAX_HOSTS)
  const rounds = values.rounds === undefined ? 3 : Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS)
    throw new InputError(`--rounds must be a whole number from 1 to ${MAX_ROUNDS}, got ${values.rounds}`)
  const forks = values.forks === undefined ? [undefined] : parseCounts('forks', String(values.forks), MAX_FORKS)
  return { sizes, rounds, forks }
}

/** scaleSettings, or the problem on stderr and exit 1. */
export function scaleSettingsOrExit(values: Record<string, OptionValue>): ScaleBenchOptions {
  try {
    return scaleSettings(values)
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    process.stderr.write(`ERROR: ${error.message}\n`)
    process.exit(1)
  }
}
