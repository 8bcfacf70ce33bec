/**
 * nftables: with `firewall_enabled`, each host accepts only the ports its groups need, from the hosts
 * that need them (exposure.ts, derived from the inventory), SSH and the management ports from the admin
 * network (the address hastack's own SSH connection comes from, and `firewall_admin_networks`), loopback and
 * ICMP; the rest is
 * dropped. The ruleset is written to /etc/nftables.conf (loaded at boot by Debian's nftables unit) only
 * after `nft -c -f` accepted it, then loaded with `nft -f` in one transaction: a bad ruleset never
 * replaces the running one. The firewall is on by default; with `firewall_enabled: false` hastack's table
 * is removed if an earlier run loaded it, and nothing else is touched.
 */
import type { HostRun, Inventory, Role, Vars } from '../../lib/types.ts'
import { command, file, service } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import { IPV4 } from '../../lib/inventory/formats.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { hostExposures, stackExposures } from './exposure.ts'
import { NFT_TABLE, RULESET_MARKER, renderRuleset } from './ruleset.ts'

export interface NftablesVars extends Vars {
  firewall_enabled: boolean
  firewall_admin_networks: string[]
}

export const NFT_CONFIG = '/etc/nftables.conf'
const LOAD = 'Load the firewall rules'
const TABLE_LOADED = sh`nft list table inet ${NFT_TABLE} >/dev/null 2>&1`

/** Hosts whose `address` is no IPv4 address while the firewall is on: their rules could not name them. */
export function firewallProblems(inventory: Inventory): string[] {
  const enabled = [...inventory.hosts.values()].some((h) => h.vars.firewall_enabled === true)
  if (!enabled) return []
  const hosts = new Set(stackExposures(inventory).flatMap((e) => [e.host, ...e.sources.hosts]))
  return [...hosts]
    .filter((name) => !IPV4.test(String(inventory.hosts.get(name)!.vars.address)))
    .map(
      (name) =>
        `host ${name}: firewall_enabled (on by default) needs an IPv4 address in address (the rules name it); ` +
        'set firewall_enabled: false to go without the firewall',
    )
}

async function removeHastackTable(h: HostRun): Promise<void> {
  await h.doAll([
    command({
      cmd: `nft delete table inet ${NFT_TABLE}`,
      onlyIf: `command -v nft >/dev/null && ${TABLE_LOADED}`,
      name: "Ensure hastack's firewall table is not loaded",
    }),
    command({
      cmd: sh`systemctl disable nftables && rm -f -- ${NFT_CONFIG}`,
      onlyIf: sh`grep -qxF ${RULESET_MARKER} ${NFT_CONFIG}`,
      name: "Ensure hastack's ruleset is not loaded at boot",
    }),
  ])
}

export const nftablesRole: Role<NftablesVars> = {
  name: 'nftables',
  description: 'A firewall (nftables) accepting only the ports each host serves, from the hosts that use them.',
  defaults: { firewall_enabled: true, firewall_admin_networks: [] },
  schema: {
    firewall_enabled: {
      type: 'boolean',
      description:
        'Drop every connection a host does not need (nftables): its services only from the hosts that use ' +
        'them, SSH from the control machine. On by default; false: hastack loads no firewall (and removes its own).',
    },
    firewall_admin_networks: {
      type: 'array',
      items: { type: 'string', format: 'cidr' },
      description:
        'Networks (CIDR) of operators besides the control machine running hastack (together the admin ' +
        "network): they may use SSH and the management ports (etcd's client port, PostgreSQL, Patroni's REST " +
        'API, Redis, Sentinel, the exporters, the HAProxy stats page, Prometheus, Alertmanager, Grafana); ' +
        "never the peer links or the app's backends.",
    },
  },
  validate: firewallProblems,
  handlers: {
    [LOAD]: (h) => h.do(command({ cmd: sh`nft -f ${NFT_CONFIG}`, changedWhen: () => true, name: LOAD })),
  },
  async tasks(h) {
    const v = h.vars
    if (!v.firewall_enabled) return removeHastackTable(h)
    const control = [...(h.facts.controlAddress ? [h.facts.controlAddress] : []), ...v.firewall_admin_networks]
    const unknownControl =
      'cannot tell the address of the control machine (no SSH_CONNECTION): set firewall_admin_networks, ' +
      'or SSH would be dropped'
    // Check mode changes nothing, so it goes on to show the plan; a real run refuses.
    if (control.length === 0 && !h.check) throw new Error(unknownControl)
    if (control.length === 0) h.log(unknownControl)
    await installWithoutStarting(h, ['nftables'], 'nftables')
    const ruleset = renderRuleset({
      exposures: hostExposures(h.inventory, h.name),
      addressOf: (name) => String(h.hostvars(name).address),
      control,
    })
    await h.do(
      file({
        path: NFT_CONFIG,
        content: ruleset,
        mode: '0644',
        validate: 'nft -c -f %s',
        notify: LOAD,
        name: 'Ensure the firewall ruleset is current',
      }),
    )
    await h.flushHandlers()
    await h.do(
      command({ cmd: sh`nft -f ${NFT_CONFIG}`, unless: TABLE_LOADED, name: 'Ensure the firewall ruleset is loaded' }),
    )
    await h.do(service({ service: 'nftables', enabled: true, name: 'Ensure the firewall is loaded at boot' }))
  },
}
