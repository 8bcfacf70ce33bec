/**
 * What templates/patroni/config.yml.ejs prints, prepared from the host's
 * variables: the listen and connect addresses, the etcd hosts, the
 * PostgreSQL parameters and the pg_hba lines (the members for replication and
 * rewind, the stack's hosts and the configured networks for the application).
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { etcdEndpoints } from '../etcd/index.ts'
import { walArchiving } from '../pgbackrest/archiving.ts'
import { pgBinDir, tlsOn } from '../stack.ts'
import { tlsFiles } from '../tls.ts'
import { stackAddresses } from './index.ts'

/**
 * pg_hba lines, in order: local peer, loopback (also for replication: Patroni reads a replica's
 * timeline over a local replication connection, else its /patroni and /metrics say None),
 * then per member and per client host or network: `hostssl` with `postgresql_tls` (a client
 * without TLS matches no line and is refused), `host` without. Loopback stays `host`: it never
 * leaves the host (postgres_exporter connects there without TLS).
 */
export function pgHbaLines(host: HostView): string[] {
  const v = host.vars
  const members = stackAddresses(host.inventory, [String(v.patroni_group)])
  const clients = stackAddresses(host.inventory, [String(v.patroni_group), 'haproxy', 'app'])
  const networks = (v.postgresql_client_networks ?? []) as string[]
  const remote = tlsOn(v, 'postgresql') ? 'hostssl' : 'host'
  const app = `${remote} ${v.postgresql_app_database} ${v.postgresql_app_user}`
  return [
    'local all all peer',
    'host all all 127.0.0.1/32 scram-sha-256',
    `host replication ${v.patroni_replication_user} 127.0.0.1/32 scram-sha-256`,
    ...members.flatMap((a) => [
      `${remote} replication ${v.patroni_replication_user} ${a}/32 scram-sha-256`,
      `${remote} all ${v.patroni_rewind_user} ${a}/32 scram-sha-256`,
      `${remote} all postgres ${a}/32 scram-sha-256`,
    ]),
    ...clients.map((a) => `${app} ${a}/32 scram-sha-256`),
    ...networks.map((n) => `${app} ${n} scram-sha-256`),
  ]
}

/**
 * The TLS settings of the configuration, each undefined when its switch is off: PostgreSQL serves with
 * its copy of the host key and the members replicate and rewind over TLS, checking the certificate and
 * its name (`verify-full`: a member's address is in its certificate); the REST API serves over HTTPS;
 * Patroni shows etcd the host's certificate (etcd's `client-cert-auth`) and checks etcd's with the CA.
 */
export function patroniTlsView(v: Vars): Vars {
  const ca = tlsFiles(v).ca
  const patroni = tlsFiles(v, 'patroni')
  const postgres = tlsFiles(v, 'postgres')
  return {
    postgresql: tlsOn(v, 'postgresql')
      ? {
          parameters: {
            ssl: 'on',
            ssl_cert_file: postgres.cert,
            ssl_key_file: postgres.key,
            ssl_min_protocol_version: 'TLSv1.2',
          },
          client: { sslmode: 'verify-full', sslrootcert: ca },
        }
      : undefined,
    restapi: tlsOn(v, 'patroni_api') ? { certfile: patroni.cert, keyfile: patroni.key, cafile: patroni.ca } : undefined,
    etcd: tlsOn(v, 'etcd') ? { cacert: patroni.ca, cert: patroni.cert, key: patroni.key } : undefined,
  }
}

/** Every computed value of the Patroni configuration file. */
export function patroniConfigView(host: HostView): Vars {
  const v = host.vars
  const archiving = walArchiving(host.inventory, v)
  const parameters = { ...(v.postgresql_parameters as Record<string, unknown>), ...archiving?.parameters }
  return {
    restapi_address: `${v.address}:${v.patroni_restapi_port}`,
    etcd_hosts: etcdEndpoints(host),
    pg_parameters: Object.entries(parameters).map(([name, value]) => ({ name, value })),
    recovery_conf: Object.entries(archiving?.recovery_conf ?? {}).map(([name, value]) => ({ name, value })),
    pg_listen: `${v.address},127.0.0.1:${v.postgresql_port}`,
    pg_connect_address: `${v.address}:${v.postgresql_port}`,
    pg_bin_dir: pgBinDir(v.postgresql_version),
    pg_hba: pgHbaLines(host),
    tls: patroniTlsView(v),
  }
}
