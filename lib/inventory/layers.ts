/**
 * A variable layer: the variables one place sets (an inventory `vars` map, a host
 * entry, a group_vars or host_vars file, the command line), each with its Origin.
 * Layers are what the merge stacks and what validation checks, line by line.
 */
import type { Origin, Vars } from '../types.ts'
import { originOf, type KeyPath, type YamlSource } from './yaml-source.ts'

export interface VarLayer {
  /** Where the layer lives, for messages: `group_vars/db.yml`, `<command line>`. */
  label: string
  values: Vars
  origins: Record<string, Origin>
  /** The YAML source and the key path of the vars map inside it, to locate nested values. */
  source?: YamlSource
  base?: KeyPath
}

/** A layer from a map inside a YAML source (the map itself must already be checked to be a map or null). */
export function layerFromYaml(source: YamlSource, base: KeyPath, values: unknown): VarLayer {
  const vars = (values ?? {}) as Vars
  const origins: Record<string, Origin> = {}
  for (const key of Object.keys(vars)) origins[key] = originOf(source, [...base, key])
  return { label: source.display, values: vars, origins, source, base }
}

/** Where a nested part of a layer's variable is set (for errors inside lists and maps). */
export function nestedOrigin(layer: VarLayer, name: string, inner: KeyPath): Origin {
  const origin = layer.origins[name]
  if (!layer.source || inner.length === 0) return origin
  return originOf(layer.source, [...(layer.base ?? []), name, ...inner])
}
