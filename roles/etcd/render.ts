/**
 * What the etcd templates print, prepared from the host's variables: the
 * member's URLs (https with `etcd_tls`), its TLS files, the initial cluster
 * list and root's etcdctl settings.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { tlsOn } from '../stack.ts'
import { etcdClientUrl, etcdPeerUrl, tlsFiles } from '../tls.ts'
import { etcdMembers } from './index.ts'

/**
 * /etc/default/etcd of one member; `state` is `new` only while the cluster has never run;
 * `keptInitialCluster`: a bootstrapped member's own initial-cluster line, printed as it is.
 * With TLS, peers and clients must present a certificate of the stack's CA (the etcd copy of the
 * host's files, readable by the etcd user through its group).
 */
export function etcdDefaultView(host: HostView, state: 'new' | 'existing', keptInitialCluster?: string): Vars {
  const v = host.vars
  const client = etcdClientUrl(v)
  const members = etcdMembers(host.inventory, String(v.etcd_group))
  return {
    peer_url: etcdPeerUrl(v),
    client_url: client,
    listen_client_urls: `${client},${etcdClientUrl(v, '127.0.0.1')}`,
    initial_cluster: keptInitialCluster ?? members.map((m) => `${m.name}=${etcdPeerUrl(v, m.address)}`).join(','),
    initial_cluster_state: state,
    tls: tlsOn(v, 'etcd') ? tlsFiles(v, 'etcd') : undefined,
  }
}

/** Root's etcdctl environment: every member's client URL, and with TLS the host's own files. */
export function etcdctlEnvView(host: HostView): Vars {
  const v = host.vars
  return {
    endpoints: etcdMembers(host.inventory, String(v.etcd_group))
      .map((m) => etcdClientUrl(v, m.address))
      .join(','),
    tls: tlsOn(v, 'etcd') ? tlsFiles(v) : undefined,
  }
}
