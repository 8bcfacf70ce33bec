/**
 * A minimal reading of an inventory file for the lab: host names in inventory order
 * and the groups each belongs to, from `all.hosts` and nested `children.*.hosts`.
 * Temporary: the lab will use lib/inventory once its loader is ready.
 */
import { readFileSync } from 'node:fs'
import { basename, dirname, extname, resolve } from 'node:path'
import { parse } from 'yaml'

export interface LabTopologyHost {
  name: string
  /** Groups in the order they name the host, `all` first. */
  groups: string[]
}

export interface LabTopology {
  /** Absolute path of the inventory file. */
  file: string
  dir: string
  /** The default lab name: the file's name without extension (`lab`, `lab-small`). */
  defaultName: string
  hosts: LabTopologyHost[]
  /** `all.vars`, as written. */
  vars: Record<string, unknown>
}

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/

export function loadTopology(file: string): LabTopology {
  const abs = resolve(file)
  const doc = parse(readFileSync(abs, 'utf8')) ?? {}
  const all = doc.all ?? {}
  const order: string[] = []
  const groups = new Map<string, string[]>()
  const add = (host: string, group: string) => {
    if (!HOST_NAME.test(host)) throw new Error(`${abs}: host name "${host}" is not a valid lab host name (lowercase letters, digits, dashes)`)
    if (!groups.has(host)) {
      groups.set(host, ['all'])
      order.push(host)
    }
    const g = groups.get(host)!
    if (!g.includes(group)) g.push(group)
  }
  const walk = (name: string, node: any, depth: number) => {
    if (depth > 20) throw new Error(`${abs}: groups nested too deep at ${name}`)
    if (!node || typeof node !== 'object') return
    for (const host of Object.keys(node.hosts ?? {})) add(host, name)
    for (const [child, sub] of Object.entries(node.children ?? {})) walk(child, sub, depth + 1)
  }
  walk('all', all, 0)
  if (order.length === 0) throw new Error(`${abs}: no hosts found under all.hosts or all.children.*.hosts`)
  return {
    file: abs,
    dir: dirname(abs),
    defaultName: basename(abs, extname(abs)),
    hosts: order.map((name) => ({ name, groups: groups.get(name)! })),
    vars: all.vars ?? {},
  }
}
