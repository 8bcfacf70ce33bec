/**
 * What the lab boots: a minimal reading of an inventory file (host names in inventory
 * order and the groups each belongs to, from `all.hosts` and nested `children.*.hosts`),
 * and the machine table lab/topology.json that the Vagrantfile reads too, which fixes
 * the last octet of each named host's address in both labs, and the load balancers' VIP.
 */
import { readFileSync } from 'node:fs'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
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
    if (!HOST_NAME.test(host))
      throw new Error(`${abs}: host name "${host}" is not a valid lab host name (lowercase letters, digits, dashes)`)
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

/** One machine of lab/topology.json: its name, its Vagrant private-network address and its groups. */
export interface LabMachine {
  name: string
  ip: string
  groups: string[]
}

export const TOPOLOGY_FILE = join(dirname(fileURLToPath(import.meta.url)), 'topology.json')

/** Whether an address is a host of the Vagrant network 192.168.56.0/24 (.2 to .254). */
function onVagrantNetwork(ip: string): boolean {
  return /^192\.168\.56\.\d{1,3}$/.test(ip) && lastOctet(ip) >= 2 && lastOctet(ip) <= 254
}

/** The machines of lab/topology.json (shared with vagrant/Vagrantfile), checked for shape. */
export function loadMachines(file = TOPOLOGY_FILE): LabMachine[] {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { hosts?: LabMachine[] }
  const machines = doc.hosts ?? []
  for (const m of machines) {
    if (!HOST_NAME.test(m.name)) throw new Error(`${file}: "${m.name}" is not a valid lab host name`)
    if (!onVagrantNetwork(m.ip))
      throw new Error(`${file}: ${m.name} has address ${m.ip}, not a host of 192.168.56.0/24`)
  }
  return machines
}

/** The load balancers' VIP of lab/topology.json: on the Vagrant network, no machine's address. */
export function loadVip(file = TOPOLOGY_FILE): string {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { vip?: string }
  const vip = doc.vip ?? ''
  if (!onVagrantNetwork(vip)) throw new Error(`${file}: vip "${vip}" is not a host address of 192.168.56.0/24`)
  const owner = loadMachines(file).find((m) => m.ip === vip)
  if (owner) throw new Error(`${file}: vip ${vip} is the address of ${owner.name}`)
  return vip
}

/** The group whose hosts share the VIP, and how many it needs for the lab to give it one. */
export const VIP_GROUP = 'haproxy'
const VIP_MIN_HOSTS = 2

/**
 * The last octet of the lab's VIP, or undefined when fewer than two hosts are in the haproxy group:
 * the topology's VIP octet when no host has it, else the highest octet no host has.
 */
export function vipOctet(
  hosts: LabTopologyHost[],
  octets: number[],
  preferred = lastOctet(loadVip()),
): number | undefined {
  if (hosts.filter((h) => h.groups.includes(VIP_GROUP)).length < VIP_MIN_HOSTS) return undefined
  const taken = new Set(octets)
  if (!taken.has(preferred)) return preferred
  for (let octet = 254; octet >= 2; octet--) if (!taken.has(octet)) return octet
  throw new Error('no free address left in the lab subnet for the VIP')
}

function lastOctet(ip: string): number {
  return Number(ip.split('.')[3])
}

/**
 * The last octet of each host's lab address, in the order given: the topology's octet for a
 * host it names, else the lowest free one from 10 upwards (skipping the others' octets).
 */
export function hostOctets(hosts: string[], machines: LabMachine[] = loadMachines()): number[] {
  const fixed = new Map(machines.map((m) => [m.name, lastOctet(m.ip)]))
  const taken = new Set(hosts.flatMap((h) => (fixed.has(h) ? [fixed.get(h)!] : [])))
  let next = 10
  return hosts.map((h) => {
    if (fixed.has(h)) return fixed.get(h)!
    while (taken.has(next)) next++
    if (next > 254) throw new Error('no free address left in the lab subnet')
    taken.add(next)
    return next
  })
}

/**
 * The last octet of a host added to a running lab (`used`: the octets its hosts and VIP hold): the
 * one `up` would have given it after the others, or, when that one is in use, the lowest free one
 * from 10 upwards.
 */
export function addedHostOctet(
  running: string[],
  used: number[],
  name: string,
  machines: LabMachine[] = loadMachines(),
): number {
  const taken = new Set(used)
  const planned = hostOctets([...running, name], machines).at(-1)!
  if (!taken.has(planned)) return planned
  for (let octet = 10; octet <= 254; octet++) if (!taken.has(octet)) return octet
  throw new Error('no free address left in the lab subnet')
}
