/**
 * Reading the inputs: the inventory file, the group_vars/ and host_vars/ files
 * beside it (file form `<name>.yml` and directory form `<name>/*.yml`, in name
 * order) and the `-e` extra vars. Syntax and shape problems are collected, not thrown.
 */
import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { parseDocument } from 'yaml'
import { InputError, type Origin } from '../types.ts'
import { layerFromYaml, type VarLayer } from './layers.ts'
import { readYaml, type YamlSource } from './yaml-source.ts'

export const COMMAND_LINE = '<command line>'
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const YAML_EXT = /\.ya?ml$/

export interface Sources {
  /** Absolute path of the inventory file. */
  file: string
  dir: string
  inventory?: YamlSource
  /** group name → its group_vars layers, file form first, then directory files in name order. */
  groupVars: Map<string, VarLayer[]>
  hostVars: Map<string, VarLayer[]>
  /** `-e` layers, in command-line order. */
  extraVars: VarLayer[]
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false
}

/** Problems found while reading; `unreadable` when some file could not be used at all (later checks would mislead). */
export interface Problems {
  errors: InputError[]
  unreadable: boolean
}

async function tryRead(file: string, problems: Problems): Promise<YamlSource | undefined> {
  try {
    return await readYaml(file)
  } catch (err) {
    problems.unreadable = true
    if (err instanceof InputError) problems.errors.push(err)
    else problems.errors.push(new InputError(`cannot read ${file}: ${(err as Error).message}`))
    return undefined
  }
}

/** A vars file must hold a map of variable names (or nothing at all). */
export function varsFileLayer(source: YamlSource, problems: Problems): VarLayer | undefined {
  const value = source.value
  if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
    problems.unreadable = true
    problems.errors.push(new InputError('a vars file must be a map of variables', { file: source.display, line: 1 }))
    return undefined
  }
  const layer = layerFromYaml(source, [], value)
  for (const name of Object.keys(layer.values)) {
    if (!VAR_NAME.test(name)) {
      problems.errors.push(
        new InputError(`invalid variable name "${name}": must match [A-Za-z_][A-Za-z0-9_]*`, layer.origins[name]),
      )
      delete layer.values[name]
    }
  }
  return layer
}

/** Read `<dir>/<kind>/<name>.yml` and `<dir>/<kind>/<name>/*.yml` for every name found there. */
async function readVarsDir(dir: string, problems: Problems): Promise<Map<string, VarLayer[]>> {
  const out = new Map<string, VarLayer[]>()
  const entries = (await readdir(dir).catch(() => [] as string[])).sort()
  const add = (name: string, layer?: VarLayer) => {
    if (!layer) return
    if (!out.has(name)) out.set(name, [])
    out.get(name)!.push(layer)
  }
  // File forms first, then directory forms: a name's own file sits below its directory's files.
  for (const entry of entries) {
    const full = path.join(dir, entry)
    if (YAML_EXT.test(entry) && !(await isDir(full))) {
      const source = await tryRead(full, problems)
      if (source) add(entry.replace(YAML_EXT, ''), varsFileLayer(source, problems))
    }
  }
  for (const entry of entries) {
    const full = path.join(dir, entry)
    if (!(await isDir(full))) continue
    for (const inner of (await readdir(full)).sort()) {
      if (!YAML_EXT.test(inner)) continue
      const source = await tryRead(path.join(full, inner), problems)
      if (source) add(entry, varsFileLayer(source, problems))
    }
  }
  return out
}

/** A `-e key=value` value: a YAML scalar (numbers, booleans), otherwise the raw string. */
export function parseScalar(raw: string): unknown {
  if (raw === '') return ''
  try {
    const doc = parseDocument(raw)
    const value = doc.errors.length ? raw : doc.toJS()
    return value !== null && typeof value === 'object' ? raw : value
  } catch {
    return raw
  }
}

/** A `-e '{"k": [1, 2]}'` argument: a JSON object of variables. */
function jsonExtraVars(arg: string, at: Origin, problems: Problems): VarLayer | undefined {
  let value: unknown
  try {
    value = JSON.parse(arg)
  } catch (err) {
    problems.errors.push(new InputError(`-e: invalid JSON: ${(err as Error).message}`, at))
    return undefined
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.errors.push(new InputError('-e: JSON extra vars must be an object of variables', at))
    return undefined
  }
  const layer: VarLayer = { label: COMMAND_LINE, values: {}, origins: {} }
  for (const [key, v] of Object.entries(value)) {
    if (!VAR_NAME.test(key)) {
      problems.errors.push(new InputError(`-e: invalid variable name "${key}": must match [A-Za-z_][A-Za-z0-9_]*`, at))
      continue
    }
    layer.values[key] = v
    layer.origins[key] = { ...at, key }
  }
  return layer
}

/** Turn the raw `-e` arguments into layers: `key=value`, a JSON object, or `@file.yml` (relative to the cwd). */
export async function readExtraVars(args: string[], problems: Problems): Promise<VarLayer[]> {
  const layers: VarLayer[] = []
  for (const [i, arg] of args.entries()) {
    const at: Origin = { file: COMMAND_LINE, line: i + 1 }
    if (arg.startsWith('@')) {
      const source = await tryRead(path.resolve(arg.slice(1)), problems)
      const layer = source && varsFileLayer(source, problems)
      if (layer) layers.push(layer)
      continue
    }
    if (arg.trimStart().startsWith('{')) {
      const layer = jsonExtraVars(arg, at, problems)
      if (layer) layers.push(layer)
      continue
    }
    const eq = arg.indexOf('=')
    const key = eq > 0 ? arg.slice(0, eq) : ''
    if (!VAR_NAME.test(key)) {
      problems.errors.push(
        new InputError(`-e ${JSON.stringify(arg.split('=')[0])}: expected key=value or @file.yml`, at),
      )
      continue
    }
    layers.push({
      label: COMMAND_LINE,
      values: { [key]: parseScalar(arg.slice(eq + 1)) },
      origins: { [key]: { ...at, key } },
    })
  }
  return layers
}

/** Read every input of an inventory; problems are collected, not thrown. */
export async function loadSources(file: string, extraVars: string[], problems: Problems): Promise<Sources> {
  const abs = path.resolve(file)
  const dir = path.dirname(abs)
  const inventory = await tryRead(abs, problems)
  return {
    file: abs,
    dir,
    inventory,
    groupVars: await readVarsDir(path.join(dir, 'group_vars'), problems),
    hostVars: await readVarsDir(path.join(dir, 'host_vars'), problems),
    extraVars: await readExtraVars(extraVars, problems),
  }
}
