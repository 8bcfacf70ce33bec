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
 * builds it again before it runs, so a stale bundle never runs. npm packages stay outside the bundle and load
 * from node_modules as usual. `import.meta.url`, `.dirname` and `.filename` keep naming each source file, so
 * the engine finds its templates and schema where they are; any other use of `import.meta` fails the build.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'

const LAUNCHER = fileURLToPath(import.meta.url)
const REPO = resolve(dirname(LAUNCHER), '..')
const BUILD_DIR = join(REPO, '.build')
const USAGE = "usage: node bin/play.mjs playbooks/<playbook>.ts [the playbook's options]"

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
  if (JSON.stringify(key.tooling) !== JSON.stringify(await toolingKey())) return false
  const inputs = Object.entries(key.inputs ?? {})
  if (inputs.length === 0) return false
  const hashes = await Promise.all(inputs.map(([path]) => fileHash(join(REPO, path))))
  return inputs.every(([, hash], i) => hashes[i] === hash)
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
    packages: 'external',
    absWorkingDir: REPO,
    write: false,
    metafile: true,
    outfile: bundle,
    logLevel: 'silent',
    plugins: [
      {
        name: 'pin-import-meta',
        setup(context) {
          context.onLoad({ filter: /\.[cm]?ts$/ }, async ({ path }) => ({
            contents: pinImportMeta(await readFile(path, 'utf8'), path),
            loader: 'ts',
          }))
        },
      },
    ],
  })
  const inputs = {}
  for (const input of Object.keys(result.metafile.inputs).sort()) {
    inputs[input] = await fileHash(join(REPO, input))
  }
  const key = { tooling: await toolingKey(), inputs }
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
