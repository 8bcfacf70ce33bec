/**
 * Precedence. A host's variables are its layers stacked lowest first, a later
 * layer replacing a whole value (no deep merge, as Ansible's default):
 *
 *  1. role defaults (options.roles), then the roles' profile sets the host's variables choose
 *  2. stored or generated secrets
 *  3. group variables, groups in precedence order (`all` first, then by depth,
 *     parents before children, siblings of the same depth by name); for each
 *     group the inventory file's `vars` below `group_vars/<g>.yml` below
 *     `group_vars/<g>/*.yml` (in name order)
 *  4. host variables: the host's inventory entries (in document order), then
 *     `host_vars/<h>.yml`, then `host_vars/<h>/*.yml` (in name order)
 *  5. extra vars (`-e`), in command-line order
 */
import type { Origin, Role, Vars } from '../types.ts'
import type { GroupGraph } from './groups.ts'
import type { VarLayer } from './layers.ts'
import type { Sources } from './load.ts'

export interface Merged {
  vars: Vars
  origins: Record<string, Origin>
}

/** Stack layers, lowest first: a later layer's value wins with its origin. */
export function mergeLayers(layers: VarLayer[]): Merged {
  const merged: Merged = { vars: {}, origins: {} }
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer.values)) {
      merged.vars[name] = value
      merged.origins[name] = layer.origins[name]
    }
  }
  return merged
}

/** The role defaults as one layer (the first role declaring a variable wins; conflicts are reported by validation). */
export function roleDefaultsLayer(roles: Role[]): VarLayer {
  const layer: VarLayer = { label: 'role defaults', values: {}, origins: {} }
  for (const role of roles) {
    for (const [name, value] of Object.entries(role.defaults ?? {})) {
      if (name in layer.values) continue
      layer.values[name] = value
      layer.origins[name] = { file: `role ${role.name}`, line: 0, key: `defaults.${name}` }
    }
  }
  return layer
}

/**
 * The roles' profile sets a host chooses (`failover_profile: fast`), as one layer: `chosen` holds the host's
 * variables without profiles, so a profile never chooses another. The first role setting a variable wins.
 */
export function profileLayer(roles: Role[], chosen: Vars): VarLayer {
  const layer: VarLayer = { label: 'role profiles', values: {}, origins: {} }
  for (const role of roles) {
    for (const [selector, sets] of Object.entries(role.profiles ?? {})) {
      const name = chosen[selector]
      const set = typeof name === 'string' && Object.hasOwn(sets, name) ? sets[name]! : {}
      for (const [variable, value] of Object.entries(set)) {
        if (variable in layer.values) continue
        layer.values[variable] = value
        layer.origins[variable] = {
          file: `role ${role.name}`,
          line: 0,
          key: `profiles.${selector}.${name}.${variable}`,
        }
      }
    }
  }
  return layer
}

/** The user's layers of a host (everything above role defaults and secrets), lowest first. */
export function userLayers(host: string, memberOf: string[], graph: GroupGraph, sources: Sources): VarLayer[] {
  const layers: VarLayer[] = []
  for (const group of memberOf) layers.push(...graph.groups.get(group)!.layers, ...(sources.groupVars.get(group) ?? []))
  layers.push(...(graph.hostLayers.get(host) ?? []), ...(sources.hostVars.get(host) ?? []), ...sources.extraVars)
  return layers
}

/** The variables of a group itself: its inventory `vars`, then its group_vars files. */
export function groupVars(group: string, graph: GroupGraph, sources: Sources): Vars {
  return mergeLayers([...graph.groups.get(group)!.layers, ...(sources.groupVars.get(group) ?? [])]).vars
}
