/**
 * What templates/keepalived/*.ejs print, prepared from the host's variables and facts: the
 * interface that carries the VIP, this host's VRRP priority (the haproxy group's order: the first
 * host highest), its unicast peers (the other haproxy hosts) and the port of HAProxy's loopback
 * health listener its track script asks.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { healthListener } from '../haproxy/render.ts'
import { groupMembers } from '../stack.ts'

/** The priority of the first haproxy host; each later host gets 10 less (VRRP priorities are 1..254). */
const TOP_PRIORITY = 250
const PRIORITY_STEP = 10

/** This host's VRRP priority: high, so the backup's skew time (256 − priority)/256 s stays short. */
export function vrrpPriority(members: string[], host: string): number {
  const index = members.indexOf(host)
  return Math.max(1, TOP_PRIORITY - PRIORITY_STEP * Math.max(0, index))
}

/**
 * The interface that carries the VIP: `vip_interface` when set, else the one that holds the host's
 * address (from the facts). Throws when neither names one.
 */
export function vipInterface(host: HostView): string {
  const given = String(host.vars.vip_interface ?? '')
  if (given) return given
  const address = String(host.vars.address)
  const found = Object.entries(host.facts.ipv4).find(([, addresses]) => addresses.includes(address))
  if (!found)
    throw new Error(`no interface of ${host.name} holds its address ${address}: set vip_interface for the VIP`)
  return found[0]
}

export function keepalivedView(host: HostView): Vars {
  const v = host.vars
  const members = groupMembers(host.inventory, 'haproxy')
  return {
    interface: vipInterface(host),
    priority: vrrpPriority(members, host.name),
    peers: members.filter((m) => m !== host.name).map((m) => String(host.hostvars(m).address)),
    // HAProxy's loopback /healthz listener, asked in plain HTTP.
    health: healthListener(v),
  }
}
