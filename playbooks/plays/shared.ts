/**
 * The plays every part of the stack begins and ends with: base settings on the part's hosts, and
 * HAProxy in front of whatever the inventory runs (PostgreSQL's ports, the Redis endpoint), behind
 * the keepalived VIP when the inventory sets one.
 */
import type { Play } from '../../lib/types.ts'
import { certificatesRole, commonRole, haproxyRole, keepalivedRole } from '../../roles/index.ts'

/**
 * Base settings (host names, /etc/hosts, time zone, sysctl, packages) on the hosts of `hosts`, and with
 * `tls_enabled` their certificates (every service's TLS settings read them, whichever playbook runs).
 */
export function preparePlay(hosts: string, name = 'Prepare the hosts'): Play {
  return { name, hosts, roles: [commonRole, certificatesRole] }
}

/**
 * HAProxy on the haproxy group: one configuration with every endpoint the inventory needs; with
 * `vip_address`, keepalived after it (its track script asks HAProxy's loopback health listener).
 */
export const routeClientsPlay: Play = {
  name: 'Route clients through HAProxy',
  hosts: 'haproxy',
  roles: [haproxyRole, keepalivedRole],
}
