/**
 * The vote app's deployable files: app/vote.ts, app/worker.ts and app/result.ts bundled by esbuild
 * into one CommonJS file each (pg and ioredis inside), for the Node.js of Debian 12 (18), so an app
 * host needs only Debian's `nodejs` package. Built once per process on this machine, in memory,
 * and also written to app/dist/ (not committed) for a look or a manual copy. The output depends
 * only on the sources, so an unchanged app gives identical bundles and a converged host no change.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const APP_PROGRAMS = ['vote', 'worker', 'result'] as const
export type AppProgram = (typeof APP_PROGRAMS)[number]

const APP_DIR = fileURLToPath(new URL('../../app/', import.meta.url))
export const DIST_DIR = join(APP_DIR, 'dist')

/** Node.js of Debian 12 (bookworm): the oldest runtime the bundles must run on. */
const TARGET = 'node18'

let building: Promise<Record<AppProgram, string>> | undefined

async function build(): Promise<Record<AppProgram, string>> {
  const esbuild = await import('esbuild')
  const result = await esbuild.build({
    entryPoints: APP_PROGRAMS.map((name) => join(APP_DIR, `${name}.ts`)),
    outdir: DIST_DIR,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    target: TARGET,
    format: 'cjs',
    // pg's optional native binding, never used (pg's pure JavaScript client is).
    external: ['pg-native'],
    legalComments: 'none',
    logLevel: 'silent',
    write: false,
  })
  const bundles = {} as Record<AppProgram, string>
  await mkdir(DIST_DIR, { recursive: true })
  for (const file of result.outputFiles) {
    const name = basename(file.path, '.cjs') as AppProgram
    bundles[name] = file.text
    const temp = `${file.path}.${process.pid}.tmp`
    await writeFile(temp, file.contents)
    await rename(temp, file.path)
  }
  for (const name of APP_PROGRAMS) if (!bundles[name]) throw new Error(`esbuild produced no ${name}.cjs`)
  return bundles
}

/** The three bundles' text, by program (built on the first call of this process). */
export function appBundles(): Promise<Record<AppProgram, string>> {
  building ??= build().catch((error: unknown) => {
    building = undefined
    throw error
  })
  return building
}
