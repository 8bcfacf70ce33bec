/**
 * The SSH host keys pgBackRest's hosts pin for each other, taken from the controller's known_hosts
 * file (the keys hastack verified when it connected), written under each peer's cluster address,
 * the name pgBackRest's SSH connects to. No host key is learnt on first use between the hosts.
 */
import { existsSync, readFileSync } from 'node:fs'
import type { Inventory } from '../../lib/types.ts'
import { keysFor, knownHostName } from '../../lib/connection/known-hosts.ts'

/** `address keytype base64` lines for each peer; throws naming a peer whose key is not pinned. */
export function pinnedHostKeyLines(inventory: Inventory, peers: string[]): string[] {
  return peers.flatMap((peer) => {
    const host = inventory.hosts.get(peer)!
    const spec = host.connection
    // The list modes load no addresses: nothing to look up there.
    if (!spec.address) return []
    const file = spec.knownHosts?.file
    const text = file && existsSync(file) ? readFileSync(file, 'utf8') : ''
    const keys = keysFor(text, knownHostName(spec.address, spec.port)).filter((k) => !k.revoked)
    if (keys.length === 0)
      throw new Error(
        `no pinned SSH host key of ${peer} (${spec.address}) in ${file ?? 'a known_hosts file'}: ` +
          'hastack must have connected to it once (playbooks/ping.ts)',
      )
    return keys.map((k) => `${host.vars.address} ${k.type} ${k.key.toString('base64')}`)
  })
}
