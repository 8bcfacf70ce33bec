/**
 * Secret masking: every secret value known to the run is replaced by `***` in
 * anything the engine prints, writes to a report or puts in an error, in every
 * form a config file, a command or a report can give it: as is, JSON/YAML
 * double-quoted, YAML single-quoted, shell or HAProxy quoted, URL-encoded and
 * base64 (alone or inside a longer base64 text such as a Basic auth header),
 * and each of those JSON-escaped once more (a diff inside the JSON report).
 * PostgreSQL SCRAM verifiers are masked by their shape, whatever the password.
 */

const forms = new Set<string>()
let ordered: string[] = []

/** Forms shorter than this are not masked: too likely to hide ordinary text. */
export const MIN_MASKED_LENGTH = 4
/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` as PostgreSQL stores it. */
const SCRAM_VERIFIER = /SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+/g

function jsonEscaped(text: string): string {
  return JSON.stringify(text).slice(1, -1)
}

/**
 * The base64 characters that encode a secret: its whole encoding (padding included)
 * and, for each byte offset inside a longer base64 text, the groups made of the
 * secret's bytes only (at most two bytes at each end fall in mixed groups).
 */
export function base64Cores(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8')
  const cores = [bytes.toString('base64')]
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64')
    const fullGroups = Math.floor((offset + bytes.length) / 3)
    cores.push(encoded.slice(offset === 0 ? 0 : 4, fullGroups * 4))
  }
  return [...new Set(cores)].filter((core) => core.length >= 8)
}

/** Every form of a secret that the engine could print. */
export function secretForms(secret: string): string[] {
  const base = [
    secret,
    jsonEscaped(secret),
    secret.replaceAll("'", "''"),
    secret.replaceAll("'", `'\\''`),
    secret.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$'),
    // A systemd EnvironmentFile value (lib/config-quote.ts systemdEnvValue) also escapes the backtick.
    secret.replace(/["\\`$]/g, (c) => `\\${c}`),
    encodeURIComponent(secret),
    encodeURI(secret),
    ...base64Cores(secret),
  ]
  return [...new Set([...base, ...base.map(jsonEscaped)])].filter((form) => form.length >= MIN_MASKED_LENGTH)
}

/** Register values to hide from now on (values shorter than 4 characters are ignored as too common). */
export function registerSecrets(values: Iterable<string>): void {
  for (const value of values) {
    if (typeof value !== 'string' || value.length < MIN_MASKED_LENGTH) continue
    for (const form of secretForms(value)) forms.add(form)
  }
  ordered = [...forms].sort((a, b) => b.length - a.length)
}

/** Forget every registered secret (tests). */
export function clearSecrets(): void {
  forms.clear()
  ordered = []
}

/** Replace every form of every registered secret, and every SCRAM verifier, by `***` (longest first). */
export function mask(text: string): string {
  if (!text) return text
  let out = text.replace(SCRAM_VERIFIER, 'SCRAM-SHA-256$***')
  for (const form of ordered) if (out.includes(form)) out = out.split(form).join('***')
  return out
}

/**
 * Hide a replaced secret in a unified diff's removed lines: when an added line
 * holds a registered secret, the removed line it replaces most likely held the
 * previous value (a rotated password no longer registered). Removed and added
 * lines of one change pair up in order; a removed line whose partner holds a
 * secret in the same frame (`password: "…"`) keeps the frame and hides the rest, and
 * an unpaired removed line of such a change hides entirely. Returns masked lines.
 */
export function maskDiffLines(lines: string[]): string[] {
  const out: string[] = []
  // The ---/+++ file header comes before the first hunk; inside hunks, - and + mark changed lines.
  let inHunk = false
  const isRemoved = (l: string | undefined) => inHunk && l !== undefined && l.startsWith('-')
  const isAdded = (l: string | undefined) => inHunk && l !== undefined && l.startsWith('+')
  let i = 0
  while (i < lines.length) {
    if (lines[i]!.startsWith('@@')) inHunk = true
    if (!isRemoved(lines[i])) {
      out.push(mask(lines[i]!))
      i++
      continue
    }
    const removed: string[] = []
    const added: string[] = []
    while (isRemoved(lines[i])) removed.push(lines[i++]!)
    while (isAdded(lines[i])) added.push(lines[i++]!)
    const maskedAdded = added.map(mask)
    const heldSecret = maskedAdded.some((m, k) => m !== added[k])
    removed.forEach((old, k) => {
      const masked = mask(old)
      if (!heldSecret) return void out.push(masked)
      const wanted = maskedAdded[k]
      if (wanted === undefined) return void out.push('-***')
      out.push(wanted === added[k] ? masked : alignedMask(masked, wanted.slice(1)))
    })
    out.push(...maskedAdded)
  }
  return out
}

/**
 * `-<old>` with everything between the new line's text before its first `***` and
 * after its last hidden, when the old line has that same frame (the same setting with
 * another value); an old line of another shape is some other line and shows (masked).
 */
function alignedMask(oldLine: string, maskedNew: string): string {
  const old = oldLine.slice(1)
  const before = maskedNew.slice(0, maskedNew.indexOf('***'))
  const after = maskedNew.slice(maskedNew.lastIndexOf('***') + 3)
  const sameFrame = old.startsWith(before) && old.endsWith(after) && before.length + after.length <= old.length
  return sameFrame ? `-${before}***${after}` : oldLine
}
