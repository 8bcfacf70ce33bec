/**
 * The group graph of an inventory file: groups (a name defined in several places
 * is one group, its definitions united), direct hosts in inventory order, parents
 * and children, cycle detection, and the precedence order of groups:
 * `all` first, then by depth (parents before children), siblings by name (as Ansible).
 */
import { InputError, type Origin } from '../types.ts'
import { layerFromYaml, type VarLayer } from './layers.ts'
import { originOf, type KeyPath, type YamlSource } from './yaml-source.ts'

export interface GroupNode {
  name: string
  hosts: string[]
  children: string[]
  parents: string[]
  /** The group's `vars` maps in the inventory file, in document order. */
  layers: VarLayer[]
  /** Where the group is first defined. */
  origin: Origin
}

export interface GroupGraph {
  groups: Map<string, GroupNode>
  /** Hosts in the order the inventory first names them. */
  hostOrder: string[]
  /** Each host's entries in the inventory file (a host may be listed under several groups). */
  hostLayers: Map<string, VarLayer[]>
  /** Where each host is first named. */
  hostOrigins: Map<string, Origin>
  /** Groups in precedence order, lowest first. */
  order: string[]
}

type RawGroup = {
  hosts?: Record<string, unknown> | null
  children?: Record<string, RawGroup | null> | null
  vars?: unknown
} | null

/** Build the graph from a structurally valid inventory; cycles are pushed to errors. */
export function buildGroups(source: YamlSource, errors: InputError[]): GroupGraph {
  const graph: GroupGraph = {
    groups: new Map(),
    hostOrder: [],
    hostLayers: new Map(),
    hostOrigins: new Map(),
    order: [],
  }
  const edges = new Map<string, Origin>()
  const node = (name: string, at: KeyPath): GroupNode => {
    let g = graph.groups.get(name)
    if (!g)
      graph.groups.set(
        name,
        (g = { name, hosts: [], children: [], parents: [], layers: [], origin: originOf(source, at) }),
      )
    return g
  }
  const walk = (name: string, raw: RawGroup, at: KeyPath) => {
    const g = node(name, at)
    if (!raw) return
    if (raw.vars) g.layers.push(layerFromYaml(source, [...at, 'vars'], raw.vars))
    for (const [host, entry] of Object.entries(raw.hosts ?? {})) {
      const hostAt = [...at, 'hosts', host]
      if (!graph.hostLayers.has(host)) {
        graph.hostOrder.push(host)
        graph.hostLayers.set(host, [])
        graph.hostOrigins.set(host, originOf(source, hostAt))
      }
      if (!g.hosts.includes(host)) g.hosts.push(host)
      if (entry) graph.hostLayers.get(host)!.push(layerFromYaml(source, hostAt, entry))
    }
    for (const [child, rawChild] of Object.entries(raw.children ?? {})) {
      if (!g.children.includes(child)) {
        g.children.push(child)
        edges.set(`${name}>${child}`, originOf(source, [...at, 'children', child]))
      }
      const c = node(child, [...at, 'children', child])
      if (!c.parents.includes(name)) c.parents.push(name)
      walk(child, rawChild, [...at, 'children', child])
    }
  }
  walk('all', (source.value as { all: RawGroup }).all, ['all'])

  const cycle = findCycle(graph.groups)
  if (cycle) {
    const closing = edges.get(`${cycle[cycle.length - 2]}>${cycle[cycle.length - 1]}`)
    errors.push(new InputError(`group cycle: ${cycle.join(' → ')} (a group cannot contain itself)`, closing))
    graph.order = [...graph.groups.keys()]
    return graph
  }
  graph.order = precedenceOrder(graph.groups)
  return graph
}

/** A cycle as a list of group names (first = last), or undefined. */
function findCycle(groups: Map<string, GroupNode>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined
    if (state.get(name) === 'open') return [...stack.slice(stack.indexOf(name)), name]
    state.set(name, 'open')
    stack.push(name)
    for (const child of groups.get(name)?.children ?? []) {
      const found = visit(child)
      if (found) return found
    }
    stack.pop()
    state.set(name, 'done')
    return undefined
  }
  for (const name of groups.keys()) {
    const found = visit(name)
    if (found) return found
  }
  return undefined
}

/** `all` first, then by depth (longest path from `all`), then by name. */
function precedenceOrder(groups: Map<string, GroupNode>): string[] {
  const depth = new Map<string, number>()
  const depthOf = (name: string): number => {
    if (!depth.has(name)) {
      const parents = groups.get(name)?.parents ?? []
      depth.set(name, parents.length ? Math.max(...parents.map(depthOf)) + 1 : 0)
    }
    return depth.get(name)!
  }
  return [...groups.keys()].sort((a, b) => depthOf(a) - depthOf(b) || (a < b ? -1 : a > b ? 1 : 0))
}

/** All hosts of a group, recursively, in inventory order. */
export function hostsOf(graph: Pick<GroupGraph, 'groups' | 'hostOrder'>, group: string): string[] {
  const found = new Set<string>()
  const seen = new Set<string>()
  const visit = (name: string) => {
    if (seen.has(name)) return
    seen.add(name)
    const g = graph.groups.get(name)
    if (!g) return
    for (const h of g.hosts) found.add(h)
    for (const c of g.children) visit(c)
  }
  visit(group)
  if (group === 'all') return [...graph.hostOrder]
  return graph.hostOrder.filter((h) => found.has(h))
}
