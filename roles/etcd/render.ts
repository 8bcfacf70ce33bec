/**
 * What the etcd templates print, prepared from the host's variables: the
 * member's URLs, the initial cluster list and root's etcdctl settings.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { etcdEndpoints, etcdMembers } from './index.ts'

/**
 * /etc/default/etcd of one member; `state` is `new` only while the cluster has never run;
 * `keptInitialCluster`: a bootstrapped member's own initial-cluster line, printed as it is.
 */
export function etcdDefaultView(host: HostView, state: 'new' | 'existing', keptInitialCluster?: string): Vars {
  const v = host.vars
  const peer = `http://${v.address}:${v.etcd_peer_port}`
  const client = `http://${v.address}:${v.etcd_client_port}`
  const members = etcdMembers(host.inventory, String(v.etcd_group))
  return {
    peer_url: peer,
    client_url: client,
    listen_client_urls: `${client},http://127.0.0.1:${v.etcd_client_port}`,
    initial_cluster:
      keptInitialCluster ?? members.map((m) => `${m.name}=http://${m.address}:${v.etcd_peer_port}`).join(','),
    initial_cluster_state: state,
  }
}

/** Root's etcdctl environment: every member's client URL, comma-separated. */
export function etcdctlEnvView(host: HostView): Vars {
  return {
    endpoints: etcdEndpoints(host)
      .map((e) => `http://${e}`)
      .join(','),
  }
}
