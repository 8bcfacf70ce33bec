/**
 * Fetch a file back from the host to a local path, written only when the
 * local copy differs. Local writes are not changes to the host, but are
 * reported as changed so a caller can react.
 */
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { defineTask, noChange, type TaskOptions } from './common.ts'

export interface FetchArgs extends TaskOptions {
  src: string
  /** Local destination path (mode 0600: fetched files may hold secrets). */
  dest: string
}

export function fetchFile(args: FetchArgs) {
  return defineTask(`Fetch ${args.src} to ${args.dest}`, args, async (ctx) => {
    const remote = await ctx.conn.get(args.src)
    const local = await readFile(args.dest).catch(() => undefined)
    if (local && local.equals(remote)) return noChange()
    return {
      change: true,
      reason: local ? 'local copy differs' : 'no local copy',
      apply: async () => {
        await mkdir(dirname(args.dest), { recursive: true })
        const tmp = `${args.dest}.tmp-${process.pid}`
        await writeFile(tmp, remote, { mode: 0o600 })
        await rename(tmp, args.dest)
      },
    }
  })
}
