#!/usr/bin/env node
/**
 * The fast way to start a playbook: `node bin/play.mjs playbooks/site.ts -i inventory/lab.yml [options]` runs
 * the same playbook as `npx zx playbooks/site.ts ...`, from one esbuild bundle of the playbook and everything it
 * imports from this repository, with plain Node (no TypeScript loader), so start-up costs about a third of a
 * second instead of about 0.6 s. Plain JavaScript on purpose: it must start without tsx.
 *
 * The bundle (`.build/<playbook>.mjs`, not committed) is built on the first run and used only while its key
 * (`.build/<playbook>.key`) matches: the SHA-256 of every file the bundle was built from, of tsconfig.json, of
 * this launcher and esbuild's version. Any difference (a source edited, this launcher changed, esbuild upgraded)
 * builds it again before it runs, so a stale bundle never runs. The npm packages the playbook imports are
 * bundled too (their files are inputs of the key like the sources): loading some 200 CommonJS files one by one
 * through Node's module loader was a third of the start-up. In a bundled file `import.meta.url`, `.dirname` and
 * `.filename` keep naming that file, and so do a package file's `__dirname` and `__filename`, so the engine
 * finds its templates and schema where they are; any other use of `import.meta` fails the build. `require`
 * works as in the package's own file (built-in modules; a native addon or an optional package not installed
 * is required at run time from where the package would require it, as before).
 */
import { createHash } from 'node:crypto'
import { statSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'

const LAUNCHER = fileURLToPath(import.meta.url)
const REPO = resolve(dirname(LAUNCHER), '..')
const BUILD_DIR = join(REPO, '.build')
const USAGE = "usage: node bin/play.mjs playbooks/<playbook>.ts [the playbook's options]"

/** The key's format: each input's SHA-256, size and modification time (1 recorded the SHA-256 alone). */
const KEY_VERSION = 2
/** An input unmodified this long when the key is written may later be judged by its size and time alone. */
const QUIET_MS = 2000

/** Packages the launcher itself uses, never a playbook: left out of every bundle. */
const LAUNCHER_ONLY = ['esbuild']
/** Optional packages a bundled package requires only when they are installed (ssh2's cpu-features). */
const OPTIONAL_PACKAGES = ['cpu-features']

/** @param {string | Buffer} content */
const sha256 = (content) => createHash('sha256').update(content).digest('hex')

/** A file's SHA-256, or undefined when it cannot be read. @param {string} path */
async function fileHash(path) {
  try {
    return sha256(await readFile(path))
  } catch {
    return undefined
  }
}

/** What every bundle also depends on besides its sources: this launcher's build settings and esbuild. */
async function toolingKey() {
  const esbuildPackage = JSON.parse(await readFile(join(REPO, 'node_modules/esbuild/package.json'), 'utf8'))
  return {
    launcher: await fileHash(LAUNCHER),
    tsconfig: await fileHash(join(REPO, 'tsconfig.json')),
    esbuild: esbuildPackage.version,
  }
}

/**
 * A file's size and modification time as the key records them (`stamp`), and that time in milliseconds
 * (undefined when the file cannot be read).
 * @param {string} path
 */
function fileStat(path) {
  try {
    const st = statSync(path, { bigint: true })
    return { stamp: `${st.size} ${st.mtimeNs}`, modifiedMs: Number(st.mtimeNs / 1_000_000n) }
  } catch {
    return undefined
  }
}

/**
 * Whether an input still has the content the key recorded. Its size and modification time are enough when
 * both are unchanged and it had been left alone for a while when the key was written (a change within the
 * file system's timestamp granularity of that moment could otherwise hide, as git's racy-clean rule says);
 * otherwise its content is hashed again.
 * @param {string} path @param {{ sha256: string, stamp?: string, quiet?: boolean }} recorded
 */
async function unchanged(path, recorded) {
  if (recorded.quiet && recorded.stamp !== undefined && fileStat(path)?.stamp === recorded.stamp) return true
  return (await fileHash(path)) === recorded.sha256
}

/**
 * True when the key file names exactly the current tooling and every input's current content.
 * @param {string} keyFile
 */
async function isFresh(keyFile) {
  let key
  try {
    key = JSON.parse(await readFile(keyFile, 'utf8'))
  } catch {
    return false
  }
  if (key.version !== KEY_VERSION || JSON.stringify(key.tooling) !== JSON.stringify(await toolingKey())) return false
  const inputs = Object.entries(key.inputs ?? {})
  if (inputs.length === 0) return false
  const same = await Promise.all(inputs.map(([path, recorded]) => unchanged(join(REPO, path), recorded)))
  return same.every(Boolean)
}

/**
 * Source text with `import.meta.url`, `.dirname` and `.filename` replaced by the source file's own values.
 * @param {string} text
 * @param {string} path
 */
function pinImportMeta(text, path) {
  const pinned = text
    .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(path).href))
    .replaceAll('import.meta.dirname', JSON.stringify(dirname(path)))
    .replaceAll('import.meta.filename', JSON.stringify(path))
  if (/import\.meta\b/.test(pinned)) throw new Error(`${path}: import.meta other than url, dirname or filename`)
  return pinned
}

/**
 * Bundle the playbook into `bundle`, then write its key (last, so a key always names a whole bundle).
 * @param {string} playbook absolute path of the playbook's source
 * @param {string} bundle
 * @param {string} keyFile
 */
async function build(playbook, bundle, keyFile) {
  const esbuild = await import('esbuild')
  const result = await esbuild.build({
    entryPoints: [playbook],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: [...LAUNCHER_ONLY, ...OPTIONAL_PACKAGES],
    absWorkingDir: REPO,
    write: false,
    metafile: true,
    outfile: bundle,
    logLevel: 'silent',
    banner: {
      js: "import { createRequire as __hastackRequire } from 'node:module'\nconst require = __hastackRequire(import.meta.url)",
    },
    plugins: [
      {
        name: 'pin-file-names',
        setup(context) {
          // A native addon stays a file of its package: required at run time by its absolute path.
          context.onResolve({ filter: /\.node$/ }, ({ path, resolveDir }) => ({
            path: resolve(resolveDir, path),
            external: true,
          }))
          context.onLoad({ filter: /\.[cm]?ts$/ }, async ({ path }) => ({
            contents: pinImportMeta(await readFile(path, 'utf8'), path),
            loader: 'ts',
          }))
          context.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, async ({ path }) => ({
            contents: `var __dirname = ${JSON.stringify(dirname(path))}, __filename = ${JSON.stringify(path)};\n${pinImportMeta(await readFile(path, 'utf8'), path)}`,
            loader: 'js',
          }))
        },
      },
    ],
  })
  const inputs = {}
  const now = Date.now()
  for (const input of Object.keys(result.metafile.inputs).sort()) {
    const path = join(REPO, input)
    const stat = fileStat(path)
    const quiet = stat !== undefined && now - stat.modifiedMs > QUIET_MS
    inputs[input] = { sha256: await fileHash(path), stamp: stat?.stamp, quiet }
  }
  const key = { version: KEY_VERSION, tooling: await toolingKey(), inputs }
  await mkdir(dirname(bundle), { recursive: true })
  await writeAtomically(bundle, result.outputFiles[0].contents)
  await writeAtomically(keyFile, `${JSON.stringify(key, null, 1)}\n`)
}

/** @param {string} path @param {string | Uint8Array} content */
async function writeAtomically(path, content) {
  const temp = `${path}.${process.pid}.tmp`
  await writeFile(temp, content)
  await rename(temp, path)
}

const script = process.argv[2]
const playbook = script === undefined ? undefined : resolve(script)
const inRepo =
  playbook !== undefined && !relative(REPO, playbook).startsWith(`..${sep}`) && !isAbsolute(relative(REPO, playbook))
if (!playbook || !inRepo || !playbook.endsWith('.ts')) {
  process.stderr.write(`ERROR: name a playbook's .ts file inside ${REPO}\n${USAGE}\n`)
  process.exit(1)
}
const name = relative(REPO, playbook).replace(/\.ts$/, '')
const bundle = join(BUILD_DIR, `${name}.mjs`)
const keyFile = join(BUILD_DIR, `${name}.key`)
if (!(await isFresh(keyFile))) {
  try {
    await build(playbook, bundle, keyFile)
  } catch (error) {
    process.stderr.write(`ERROR: could not bundle ${script}: ${error instanceof Error ? error.message : error}\n`)
    process.exit(1)
  }
}
await import(pathToFileURL(bundle).href)
