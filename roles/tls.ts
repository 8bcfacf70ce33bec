/**
 * Where the services and their clients find their TLS files, and the URLs of etcd and Patroni's REST
 * API with the scheme their switches give (`tlsOn`): the one place a role, a playbook or a test builds
 * them, so a client always speaks the protocol its server listens with. The files are the ones the
 * certificates role puts on every host: `<tls_dir>/{ca.crt,host.crt,host.key}` (the key root only) and
 * each service's copy in `<tls_dir>/<service>/` (key readable by the group `hastack-tls-<service>`).
 */
import type { Vars } from '../lib/types.ts'
import { caFiles } from './certificates/ca.ts'
import { STACK_DEFAULTS, tlsOn } from './stack.ts'

/** The file names inside `tls_dir` and each service's directory (`pem`: HAProxy's certificate and key in one). */
export const TLS_FILES = {
  ca: 'ca.crt',
  cert: 'host.crt',
  key: 'host.key',
  pem: 'host.pem',
  pgbackrestClient: 'pgbackrest-client.crt',
} as const

/** A service's copy of the host's files, as the certificates role names its directories. */
export type TlsCopy = 'etcd' | 'postgres' | 'patroni' | 'redis' | 'prometheus' | 'haproxy'

export interface TlsFiles {
  ca: string
  cert: string
  key: string
  /** The certificate then the key in one file: HAProxy's copy only. */
  pem: string
}

/** The directory of the host's own files (`tls_dir`), or of a service's copy (`<tls_dir>/<copy>`). */
export function tlsDirectory(vars: Vars, copy?: TlsCopy): string {
  const base = String(vars.tls_dir ?? STACK_DEFAULTS.tls_dir)
  return copy ? `${base}/${copy}` : base
}

/** The host's own files (key readable by root only: root's clients), or a service's copy. */
export function tlsFiles(vars: Vars, copy?: TlsCopy): TlsFiles {
  const dir = tlsDirectory(vars, copy)
  const at = (file: string) => `${dir}/${file}`
  return { ca: at(TLS_FILES.ca), cert: at(TLS_FILES.cert), key: at(TLS_FILES.key), pem: at(TLS_FILES.pem) }
}

/**
 * What a member's pgBackRest shows the repository host's TLS server, from postgres's own copy: the CA, the host
 * key, and a certificate for that key whose CommonName is the host's name (the server authorizes a client by its
 * CN, `tls-server-auth`; the host certificate has none, as etcd wants). The certificates role issues it.
 */
export function pgbackrestClientFiles(vars: Vars): { ca: string; cert: string; key: string } {
  const own = tlsFiles(vars, 'postgres')
  return { ca: own.ca, cert: `${tlsDirectory(vars, 'postgres')}/${TLS_FILES.pgbackrestClient}`, key: own.key }
}

const scheme = (on: boolean) => (on ? 'https' : 'http')

/** An etcd member's client URL (`etcd_client_port`); `address` defaults to the host's own. */
export function etcdClientUrl(vars: Vars, address: unknown = vars.address): string {
  const port = vars.etcd_client_port ?? STACK_DEFAULTS.etcd_client_port
  return `${scheme(tlsOn(vars, 'etcd'))}://${String(address)}:${String(port)}`
}

/** An etcd member's peer URL (`etcd_peer_port`). */
export function etcdPeerUrl(vars: Vars, address: unknown = vars.address): string {
  return `${scheme(tlsOn(vars, 'etcd'))}://${String(address)}:${String(vars.etcd_peer_port)}`
}

/**
 * etcdctl's TLS flags for root on a host (the host's own files): the CA that signed the members and
 * the client certificate etcd's `client-cert-auth` asks for; none in plaintext.
 */
export function etcdctlTlsFlags(vars: Vars): string[] {
  if (!tlsOn(vars, 'etcd')) return []
  const f = tlsFiles(vars)
  return [`--cacert=${f.ca}`, `--cert=${f.cert}`, `--key=${f.key}`]
}

/**
 * The CA file a client on the control machine (the load generator, the drills, the lab checks) checks
 * PostgreSQL's certificate with, when `postgresql_tls` is on: the stack's CA beside the inventory.
 */
export function controllerPgCaFile(inventoryFile: string, vars: Vars): string | undefined {
  return tlsOn(vars, 'postgresql') ? caFiles(inventoryFile, vars).cert : undefined
}

/** A Patroni member's REST API (`http(s)://ADDRESS:PORT`), from that member's variables. */
export function patroniApiUrl(vars: Vars): string {
  const port = vars.patroni_restapi_port ?? STACK_DEFAULTS.patroni_restapi_port
  return `${scheme(tlsOn(vars, 'patroni_api'))}://${String(vars.address)}:${String(port)}`
}

/** The CA a client of Patroni's REST API verifies it with (world-readable), when the API is on HTTPS. */
export function patroniApiCa(vars: Vars): string | undefined {
  return tlsOn(vars, 'patroni_api') ? tlsFiles(vars).ca : undefined
}

/**
 * How to keep a running service as it was built, naming the inventory variable: a plaintext stack built
 * before TLS was on by default keeps running in plaintext with `tls_enabled: false` (or the one service's
 * switch false); a TLS one keeps both switches true.
 */
export function keepAsBuilt(serviceSwitch: string, builtWithTls: boolean): string {
  if (builtWithTls)
    return `To keep it on TLS set ${serviceSwitch}: true and tls_enabled: true in the inventory's all.vars`
  return (
    `To keep it in plaintext set ${serviceSwitch}: false in the inventory's all.vars (TLS is on by default), or ` +
    'tls_enabled: false to keep the whole stack in plaintext as it was built'
  )
}
