/**
 * Secret masking: every secret value known to the run is replaced by `***` in
 * anything the engine prints, writes to a report or puts in an error.
 */

const secrets = new Set<string>()

/** Register values to hide from now on (values shorter than 4 characters are ignored as too common). */
export function registerSecrets(values: Iterable<string>): void {
  for (const value of values) if (typeof value === 'string' && value.length >= 4) secrets.add(value)
}

/** Forget every registered secret (tests). */
export function clearSecrets(): void {
  secrets.clear()
}

/** Replace every registered secret in text by `***`, longest first so overlapping values hide fully. */
export function mask(text: string): string {
  if (!text || secrets.size === 0) return text
  let out = text
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join('***')
  }
  return out
}
