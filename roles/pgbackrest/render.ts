/**
 * What the pgbackrest templates print, prepared from the inventory: the sections of each host's
 * pgbackrest.conf (the repository host's with the repository, every member and, with `pgbackrest_tls`, its
 * TLS server; a database host's with the way to the repository, TLS or SSH), the restore drill's own
 * configuration, the SSH peers of a host, and the values the backup and drill scripts are built with.
 */
import type { HostView, Vars } from '../../lib/types.ts'
import { IPV4 } from '../../lib/inventory/formats.ts'
import { STACK_DEFAULTS, groupMembers, settingsOf, tlsOn } from '../stack.ts'
import { patroniApiUrl, pgbackrestClientFiles, tlsFiles } from '../tls.ts'

export type Option = [name: string, value: string | number]
export interface Section {
  name: string
  options: Option[]
}

/** The repository host (the pgbackrest group's one host). */
export function repositoryHost(host: HostView): string {
  const [repo] = groupMembers(host.inventory, String(host.vars.pgbackrest_group))
  if (!repo) throw new Error(`the inventory has no ${host.vars.pgbackrest_group} host`)
  return repo
}

const addressOf = (host: HostView, name: string) => String(host.inventory.hosts.get(name)!.vars.address)

/** pgBackRest's TLS server on the repository host, as its clients reach it and as it listens. */
export interface TlsServer {
  /** The repository host. */
  host: string
  /**
   * The name a member connects to: the host's name (in /etc/hosts, and a DNS name of its certificate) when its
   * address is an IPv4 address, since pgBackRest 2.45 checks a server's DNS names only; else its address.
   */
  connect: string
  /** Where it listens: the repository host's address only. */
  address: string
  port: number
  /** The members that reach it (every member but the repository host), each authorized for the stanza. */
  clients: string[]
}

/** The repository host's TLS server when `pgbackrest_tls` is on there (with `tls_enabled`); else undefined. */
export function tlsServer(host: HostView): TlsServer | undefined {
  const repo = repositoryHost(host)
  // The repository host's own settings over the shared defaults (TLS is on by default).
  const v = settingsOf(host.inventory.hosts.get(repo)!, STACK_DEFAULTS)
  if (!tlsOn(v, 'pgbackrest')) return undefined
  const address = String(v.address)
  return {
    host: repo,
    connect: IPV4.test(address) ? repo : address,
    address,
    port: Number(v.pgbackrest_tls_port),
    clients: groupMembers(host.inventory, String(v.patroni_group)).filter((m) => m !== repo),
  }
}

/** The TLS server's own options in the repository host's [global]: only `pgbackrest server` reads them. */
function tlsServerOptions(v: Vars, server: TlsServer): Option[] {
  const own = tlsFiles(v, 'postgres')
  return [
    ['tls-server-address', server.address],
    ['tls-server-port', server.port],
    ['tls-server-cert-file', own.cert],
    ['tls-server-key-file', own.key],
    ['tls-server-ca-file', own.ca],
    ...server.clients.map((m): Option => ['tls-server-auth', `${m}=${String(v.pgbackrest_stanza)}`]),
  ]
}

/** How a member reaches the repository: its TLS server with the member's client certificate, or SSH as postgres. */
function repositoryLinkOptions(host: HostView, repo: string): Option[] {
  const server = tlsServer(host)
  if (!server)
    return [
      ['repo1-host', addressOf(host, repo)],
      ['repo1-host-user', 'postgres'],
    ]
  const client = pgbackrestClientFiles(host.vars)
  return [
    ['repo1-host', server.connect],
    ['repo1-host-type', 'tls'],
    ['repo1-host-port', server.port],
    ['repo1-host-ca-file', client.ca],
    ['repo1-host-cert-file', client.cert],
    ['repo1-host-key-file', client.key],
  ]
}

/** The repository's own options: where it is, its encryption, retention and how backups copy. */
function repositoryOptions(v: Vars): Option[] {
  return [
    ['repo1-path', String(v.pgbackrest_repo_path)],
    ['repo1-cipher-type', 'aes-256-cbc'],
    ['repo1-cipher-pass', String(v.pgbackrest_cipher_pass)],
    ['repo1-retention-full', Number(v.pgbackrest_retention_full)],
    ['repo1-retention-diff', Number(v.pgbackrest_retention_diff)],
    ['process-max', Number(v.pgbackrest_process_max)],
    ['compress-type', String(v.pgbackrest_compress_type)],
    ['start-fast', 'y'],
    ['log-level-console', 'warn'],
    ['log-level-file', 'info'],
  ]
}

/** One PostgreSQL of the stanza: local (no host) or reached over SSH as postgres. */
function pgOptions(index: number, v: Vars, address?: string): Option[] {
  return [
    ...(address
      ? ([
          [`pg${index}-host`, address],
          [`pg${index}-host-user`, 'postgres'],
        ] as Option[])
      : []),
    [`pg${index}-path`, String(v.postgresql_data_dir)],
    [`pg${index}-port`, Number(v.postgresql_port)],
    [`pg${index}-socket-path`, '/var/run/postgresql'],
  ]
}

/**
 * pgbackrest.conf of a host. The repository host lists every member (itself first and local when it
 * is one), so a backup can pick the primary and a standby (over SSH); a database host lists itself and
 * reaches the repository over its TLS server, or over SSH without `pgbackrest_tls`.
 */
export function configSections(host: HostView): Section[] {
  const v = host.vars
  const repo = repositoryHost(host)
  const stanza = String(v.pgbackrest_stanza)
  if (host.name === repo) {
    const members = groupMembers(host.inventory, String(v.patroni_group))
    const ordered = [...members.filter((m) => m === repo), ...members.filter((m) => m !== repo)]
    const pgs = ordered.flatMap((m, i) => pgOptions(i + 1, v, m === repo ? undefined : addressOf(host, m)))
    const server = tlsServer(host)
    return [
      { name: 'global', options: [...repositoryOptions(v), ...(server ? tlsServerOptions(v, server) : [])] },
      { name: stanza, options: pgs },
    ]
  }
  return [
    {
      name: 'global',
      options: [
        ...repositoryLinkOptions(host, repo),
        // archive-push compresses on the member: the repository's compression, not pgBackRest's default gz.
        ['compress-type', String(v.pgbackrest_compress_type)],
        ['log-level-console', 'warn'],
        ['log-level-file', 'info'],
      ],
    },
    { name: stanza, options: pgOptions(1, v) },
  ]
}

/** The drill's configuration on the repository host: the same repository, one local scratch PostgreSQL. */
export function drillSections(host: HostView): Section[] {
  const v = host.vars
  const dir = String(v.pgbackrest_drill_dir)
  return [
    { name: 'global', options: repositoryOptions(v) },
    {
      name: String(v.pgbackrest_stanza),
      options: [
        ['pg1-path', `${dir}/data`],
        ['pg1-port', Number(v.pgbackrest_drill_port)],
        ['pg1-socket-path', dir],
      ],
    },
  ]
}

/** The hosts this host logs in to over SSH: the repository host reaches the other members, they reach it. */
export function sshPeers(host: HostView): string[] {
  const v = host.vars
  const repo = repositoryHost(host)
  if (host.name !== repo) return [repo]
  return groupMembers(host.inventory, String(v.patroni_group)).filter((m) => m !== repo)
}

/** The hosts that log in to this one: the members other than the repository host, or the repository host. */
export function sshClients(host: HostView): string[] {
  const repo = repositoryHost(host)
  if (host.name === repo) return groupMembers(host.inventory, String(host.vars.patroni_group)).filter((m) => m !== repo)
  return [repo]
}

/** Patroni's `GET /replica` of every member: the backup script asks them whether a standby is healthy. */
export function replicaChecks(host: HostView): string[] {
  const v = host.vars
  return groupMembers(host.inventory, String(v.patroni_group)).map(
    (m) => `${patroniApiUrl({ ...v, address: addressOf(host, m) })}/replica`,
  )
}
