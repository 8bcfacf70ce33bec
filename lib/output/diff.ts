/**
 * Unified diffs for --diff output, built on jsdiff (a well-kept implementation
 * of Myers' algorithm with proper hunks), masked before anyone sees them
 * (including the previous value of a secret that changed: see maskDiffLines).
 */
import { createTwoFilesPatch } from 'diff'
import { maskDiffLines } from './mask.ts'

/** A masked unified diff between the current and the wanted content of a file; '' when equal. */
export function unifiedDiff(path: string, before: string | undefined, after: string): string {
  if (before === after) return ''
  const patch = createTwoFilesPatch(
    before === undefined ? '/dev/null' : `${path} (current)`,
    `${path} (wanted)`,
    before ?? '',
    after,
    undefined,
    undefined,
    { context: 3 },
  )
  // jsdiff starts with an "Index:" line and a separator; keep only the ---/+++ header and hunks.
  const body = patch.split('\n').filter((line, i) => !(i < 2 && (line.startsWith('Index:') || /^=+$/.test(line))))
  return maskDiffLines(body).join('\n').trimEnd()
}

/** True when the text looks binary (a NUL byte), so no diff should be printed. */
export function isBinary(content: string | Buffer): boolean {
  return (typeof content === 'string' ? Buffer.from(content) : content).includes(0)
}
