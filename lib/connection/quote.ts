/**
 * POSIX `sh` quoting for commands sent to remote hosts.
 *
 * zx's `$` quotes with bash-only `$'...'`; remote commands go through `sh`
 * (dash on Debian), so every word is quoted single-quote style here:
 * `it's` → `'it'\''s'`. Words made only of safe characters stay bare so that
 * logged commands remain readable.
 */

/** Characters that never need quoting in any word position (no `=`, `~`, globs or braces). */
const SAFE = /^[A-Za-z0-9_/.,:@%+-]+$/

/** A piece of shell text that `sh` inserts verbatim (see {@link raw}). */
export class RawShell {
  constructor(public readonly text: string) {}
  toString(): string {
    return this.text
  }
}

/** Mark trusted shell text (operators, redirections) to be inserted unquoted by `sh`. */
export function raw(text: string): RawShell {
  return new RawShell(text)
}

/** Quote one word for POSIX `sh`. The empty string becomes `''`. */
export function quote(word: string | number): string {
  const s = String(word)
  if (s.includes('\0')) throw new TypeError('a shell word cannot contain a NUL byte')
  if (s === '') return "''"
  if (SAFE.test(s)) return s
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** Quote every word and join them with spaces: `['ls', '-l', 'a b']` → `ls -l 'a b'`. */
export function quoteArgs(words: readonly (string | number)[]): string {
  return words.map(quote).join(' ')
}

type ShellValue = string | number | RawShell | readonly (string | number)[]

/**
 * Tagged template that quotes every interpolation, like zx's `$` but POSIX:
 * sh`rm -f ${path}` and sh`apt-get install -y ${packages}` (arrays become
 * separate words; an empty array adds nothing). Use {@link raw} for trusted text.
 */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): string {
  let out = strings[0]
  values.forEach((value, i) => {
    out += interpolate(value) + strings[i + 1]
  })
  return out
}

function interpolate(value: ShellValue): string {
  if (value instanceof RawShell) return value.text
  if (Array.isArray(value)) return quoteArgs(value)
  if (typeof value === 'string' || typeof value === 'number') return quote(value)
  throw new TypeError(`cannot interpolate ${value === null ? 'null' : typeof value} into a shell command`)
}
