/**
 * Secret fingerprints kept on each host: `/var/lib/hastack/secrets.sha256` (root, 0600)
 * holds one line per secret variable, `<name> <salt> <sha256(salt, name, value)>`, never
 * the secret. They let a run notice that the local secrets file was lost or swapped
 * (a secret generated anew, or a stored one that does not match what the host was
 * given) before it changes anything. This module reads, computes and compares them;
 * the facts program reads the file in the same round trip (see system.ts).
 */
import { createHash, randomBytes } from 'node:crypto'

export const FINGERPRINT_DIR = '/var/lib/hastack'
export const FINGERPRINT_FILE = `${FINGERPRINT_DIR}/secrets.sha256`

export interface SecretFingerprint {
  salt: string
  hash: string
}

export type Fingerprints = Record<string, SecretFingerprint>

const LINE = /^([A-Za-z_][A-Za-z0-9_]*) ([0-9a-f]{32}) ([0-9a-f]{64})$/
const HEADER = '# hastack: salted SHA-256 fingerprints of the secrets this host was given (never the secrets)\n'

/** The salted hash of one secret. */
export function fingerprintOf(name: string, value: string, salt: string): string {
  return createHash('sha256').update(`${salt}\0${name}\0${value}`).digest('hex')
}

/** A fresh fingerprint of a secret (a new random salt). */
export function newFingerprint(name: string, value: string): SecretFingerprint {
  const salt = randomBytes(16).toString('hex')
  return { salt, hash: fingerprintOf(name, value, salt) }
}

/** Whether a fingerprint was made from this value. */
export function matches(print: SecretFingerprint, name: string, value: string): boolean {
  return fingerprintOf(name, value, print.salt) === print.hash
}

/** Parse the file's lines (comments and malformed lines are ignored). */
export function parseFingerprints(lines: string[]): Fingerprints {
  const out: Fingerprints = {}
  for (const line of lines) {
    const m = LINE.exec(line.trim())
    if (m) out[m[1]!] = { salt: m[2]!, hash: m[3]! }
  }
  return out
}

/** The file's text, names sorted. */
export function renderFingerprints(prints: Fingerprints): string {
  const names = Object.keys(prints).sort()
  return HEADER + names.map((n) => `${n} ${prints[n]!.salt} ${prints[n]!.hash}\n`).join('')
}

/**
 * The fingerprints a host should hold after a run: the ones it holds, with each of
 * `values` added or replaced when it does not match. `undefined` when nothing changes.
 */
export function updatedFingerprints(held: Fingerprints, values: Record<string, string>): Fingerprints | undefined {
  const next: Fingerprints = { ...held }
  let changed = false
  for (const [name, value] of Object.entries(values)) {
    const print = held[name]
    if (print && matches(print, name, value)) continue
    next[name] = newFingerprint(name, value)
    changed = true
  }
  return changed ? next : undefined
}

/** What a host's fingerprints say about this run's secrets. */
export interface SecretsOnHost {
  host: string
  held: Fingerprints
  /** The host's value of each secret variable, and whether it comes from the secrets file. */
  values: Record<string, { value: string; fromFile: boolean }>
}

export interface LostSecret {
  name: string
  why: 'generated' | 'differs'
}

/**
 * The secrets a host holds a fingerprint for but this run would change without the
 * user asking: generated anew (the file lost them), or read from the secrets file with
 * another value (a wrong or old file). Values the user sets are their choice: not listed.
 */
export function lostSecrets(on: SecretsOnHost, generated: Set<string>): LostSecret[] {
  const out: LostSecret[] = []
  for (const [name, print] of Object.entries(on.held).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const current = on.values[name]
    if (!current || !current.fromFile) continue
    if (generated.has(name)) out.push({ name, why: 'generated' })
    else if (!matches(print, name, current.value)) out.push({ name, why: 'differs' })
  }
  return out
}
