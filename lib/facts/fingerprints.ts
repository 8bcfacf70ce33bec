/**
 * Secret fingerprints kept on each host: `/var/lib/hastack/secrets.sha256` (root, 0600)
 * holds one line per secret variable, `<name> <salt> <sha256(salt, name, value)>`, never
 * the secret. They let a run notice that the local secrets file was lost or swapped
 * (a secret generated anew, or a stored one that does not match what the host was
 * given) before it changes anything. This module reads, computes and compares them;
 * `readFingerprints` reads the file through the host's privileged session, once the host lock is held.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Connection } from '../types.ts'

export const FINGERPRINT_DIR = '/var/lib/hastack'
export const FINGERPRINT_FILE = `${FINGERPRINT_DIR}/secrets.sha256`

export interface SecretFingerprint {
  salt: string
  hash: string
}

export type Fingerprints = Record<string, SecretFingerprint>

const LINE = /^([A-Za-z_][A-Za-z0-9_]*) ([0-9a-f]{32}) ([0-9a-f]{64})$/
const HEADER = '# hastack: salted SHA-256 fingerprints of the secrets this host was given (never the secrets)\n'

/** Prints the fingerprint file as root, or exits 3 when there is none. */
export const fingerprintReadArgv = (file: string) => ['sh', '-c', '[ -e "$1" ] || exit 3; cat -- "$1"', 'sh', file]

/**
 * The fingerprints a host holds: none when it has no file, undefined when the file cannot be read. Read as the
 * host's become user, so through the privileged session when there is one (no sudo of its own); a login user
 * other than root without `become` cannot read it, and the guard then has nothing to compare.
 */
export async function readFingerprints(conn: Connection, file: string): Promise<Fingerprints | undefined> {
  const read = await conn.run(fingerprintReadArgv(file), { timeoutMs: 30_000 })
  if (read.code === 3) return {}
  return read.code === 0 ? parseFingerprints(read.stdout.split('\n')) : undefined
}

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
