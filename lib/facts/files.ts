/**
 * File facts: what a path is on the host (absent, file, directory, link), its
 * mode, owner, group and checksum, read in one round trip; whether a path exists or is a directory
 * (`test`), the digest of some files' contents, whether a file holds a line, a file's bytes (`cat`), a
 * directory's listing (`ls -1`) and whether a directory holds an entry matching a pattern, as the commands
 * below answer them (batched probes answer them without a process where they can, lib/facts/probes.ts).
 * Always read fresh: files change during a run.
 */
import type { Connection, PathTest, Probe } from '../types.ts'
import { sh } from '../connection/quote.ts'

export interface PathState {
  type: 'absent' | 'file' | 'directory' | 'link' | 'other'
  /** Octal mode without leading zeros stripped, e.g. "0640". */
  mode?: string
  owner?: string
  group?: string
  sha256?: string
  size?: number
  linkTarget?: string
}

/** The command that prints one path's state (run with `check: true`). */
export function pathStateCommand(path: string): string {
  return sh`p=${path}; if [ -L "$p" ]; then echo link; readlink -- "$p"; elif [ -e "$p" ]; then stat -c '%F|%a|%U|%G|%s' -- "$p"; if [ -f "$p" ]; then sha256sum -- "$p" | cut -d' ' -f1; fi; else echo absent; fi`
}

/** `test -e PATH` or `test -d PATH`: exit 0 when the path exists (is a directory), following links. */
export function pathTestCommand(test: PathTest, path: string): string {
  return sh`test ${test === 'exists' ? '-e' : '-d'} ${path}`
}

/** `cat -- PATHS | sha256sum`: the SHA-256 of the files' contents one after the other, as `HASH  -`. */
export function contentDigestCommand(paths: readonly string[]): string {
  return sh`cat -- ${paths} | sha256sum`
}

/** `grep -qxF LINE PATH`: exit 0 when a line of the file is exactly LINE, 1 when none is, 2 on an error. */
export function lineInFileCommand(line: string, path: string): string {
  return sh`grep -qxF ${line} ${path}`
}

/** `cat -- PATH`: the file's bytes (exit 1 and nothing when it cannot be read). */
export function fileContentCommand(path: string): string {
  return sh`cat -- ${path}`
}

/** `ls -1 DIR`: the names in the directory, one a line, sorted as ls sorts them. */
export function listingCommand(dir: string): string {
  return sh`ls -1 ${dir}`
}

/** Exit 0 when DIR itself or an entry directly in it has a name matching the shell PATTERN (find's -name). */
export function entryMatchCommand(dir: string, pattern: string): string {
  return sh`test -n "$(find ${dir} -maxdepth 1 -name ${pattern} -print -quit 2>/dev/null)"`
}

/** pathState's question as a probe, for a task to declare. */
export function pathStateProbe(path: string): Probe {
  return { kind: 'path', path }
}

/** Read the state of one path. */
export async function pathState(conn: Connection, path: string): Promise<PathState> {
  const { stdout } = await conn.run(pathStateCommand(path), { check: true })
  return parsePathState(stdout)
}

export function parsePathState(stdout: string): PathState {
  const [first = '', second = ''] = stdout.split('\n')
  if (first === 'absent') return { type: 'absent' }
  if (first === 'link') return { type: 'link', linkTarget: second }
  const [kind = '', mode = '', owner, group, size] = first.split('|')
  const type = kind.startsWith('regular') ? 'file' : kind === 'directory' ? 'directory' : 'other'
  return {
    type,
    mode: normalizeMode(mode),
    owner,
    group,
    size: Number(size),
    sha256: type === 'file' ? second.trim() : undefined,
  }
}

/** "640" → "0640", "0640" → "0640", "2750" → "2750". */
export function normalizeMode(mode: string): string {
  const digits = mode.replace(/^0+(?=\d{4})/, '')
  return digits.padStart(4, '0')
}
