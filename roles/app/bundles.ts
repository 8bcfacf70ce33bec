/**
 * The vote app's deployable files: app/vote.ts, app/worker.ts and app/result.ts bundled by esbuild
 * into one CommonJS file each (pg and ioredis inside), for the Node.js of Debian 12 (18), so an app
 * host needs only Debian's `nodejs` package. Built once per process on this machine, in memory,
 * and also written to app/dist/ (not committed) for a look or a manual copy. The output depends
 * only on the sources, so an unchanged app gives identical bundles and a converged host no change;
 * app/dist/bundles.key records what the written bundles were built from (the app's sources, the
 * locked dependencies, the target, esbuild's version), and while it matches, the bundles are read
 * back instead of built again (a build takes esbuild 0.1–0.2 s of every run that has app hosts).
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const APP_PROGRAMS = ['vote', 'worker', 'result'] as const
export type AppProgram = (typeof APP_PROGRAMS)[number]

const APP_DIR = fileURLToPath(new URL('../../app/', import.meta.url))
export const DIST_DIR = join(APP_DIR, 'dist')

/** Node.js of Debian 12 (bookworm): the oldest runtime the bundles must run on. */
const TARGET = 'node18'

export const KEY_FILE = join(DIST_DIR, 'bundles.key')
const REPO_DIR = fileURLToPath(new URL('../../', import.meta.url))

let building: Promise<Record<AppProgram, string>> | undefined

/** What the bundles are built from, hashed: every source of app/, the lock file, the target and esbuild's version. */
export async function sourcesKey(): Promise<string> {
  const hash = createHash('sha256').update(TARGET)
  const sources = (await readdir(APP_DIR)).filter((name) => name.endsWith('.ts')).sort()
  for (const name of sources) hash.update(`\0${name}\0`).update(await readFile(join(APP_DIR, name)))
  hash.update('\0package-lock.json\0').update(await readFile(join(REPO_DIR, 'package-lock.json')))
  hash.update(await readFile(join(REPO_DIR, 'node_modules/esbuild/package.json')))
  return hash.digest('hex')
}

/** The bundles written by an earlier build from the same sources, or undefined. */
async function keptBundles(key: string): Promise<Record<AppProgram, string> | undefined> {
  try {
    if ((await readFile(KEY_FILE, 'utf8')).trim() !== key) return undefined
    const bundles = {} as Record<AppProgram, string>
    for (const name of APP_PROGRAMS) bundles[name] = await readFile(join(DIST_DIR, `${name}.cjs`), 'utf8')
    return bundles
  } catch {
    return undefined
  }
}

/** Write a file whole or not at all (temp file, then rename). */
async function writeAtomically(path: string, content: string | Uint8Array): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`
  await writeFile(temp, content)
  await rename(temp, path)
}

async function build(): Promise<Record<AppProgram, string>> {
  const key = await sourcesKey()
  const kept = await keptBundles(key)
  if (kept) return kept
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
    await writeAtomically(file.path, file.contents)
  }
  for (const name of APP_PROGRAMS) if (!bundles[name]) throw new Error(`esbuild produced no ${name}.cjs`)
  // Last: the key names bundles that are all written.
  await writeAtomically(KEY_FILE, `${key}\n`)
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
