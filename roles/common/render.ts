/**
 * What the common role's templates print, prepared from the host's variables:
 * the /etc/hosts entries and the sysctl lines. The templates only print these.
 */
import type { HostView } from '../../lib/types.ts'

/** One `address name` line of /etc/hosts: every inventory host with an IPv4 address, in inventory order. */
export function hostsEntries(host: HostView): { address: string; name: string }[] {
  const inventory = host.inventory
  const names = inventory.groups.has('all') ? inventory.groupHosts('all') : [...inventory.hosts.keys()]
  return names
    .map((name) => ({ name, address: host.hostvars(name).address }))
    .filter((e): e is { name: string; address: string } => typeof e.address === 'string' && /^[0-9.]+$/.test(e.address))
}

/** The `key = value` lines of the sysctl.d file, in the inventory's order. */
export function sysctlLines(host: HostView): { key: string; value: string }[] {
  const settings = (host.vars.common_sysctl ?? {}) as Record<string, string | number>
  return Object.entries(settings).map(([key, value]) => ({ key, value: String(value) }))
}
