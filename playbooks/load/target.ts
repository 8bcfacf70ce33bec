/**
 * The app's endpoints from the inventory, as a client sees them: the vote endpoint is `vip_address`
 * when set, else the first haproxy host's address, at `app_http_port` (or `--target HOST:PORT`); the
 * result page at `app_result_http_port` there; PostgreSQL through the same balancer's write port
 * (`haproxy_pg_rw_port`) as the app's own user. Every value is checked before anything connects.
 */
import { FORMATS, IPV4 } from '../../lib/inventory/formats.ts'
import type pg from 'pg'
import { InputError, type Inventory } from '../../lib/types.ts'
import { pgTls } from '../../app/db.ts'
import { controllerPgCaFile } from '../../roles/tls.ts'

export interface HostPort {
  host: string
  port: number
}

export interface DatabaseEndpoint extends HostPort {
  user: string
  database: string
  password: string
  /** TLS when PostgreSQL requires it: the stack's CA, the name not checked (it is the balancer's). */
  ssl?: pg.ConnectionConfig['ssl']
}

export interface LoadEndpoints {
  vote: HostPort
  results: HostPort
  database: DatabaseEndpoint
}

function checkHost(host: unknown, what: string): string {
  if (typeof host !== 'string' || !(IPV4.test(host) || FORMATS.hostname!.test(host)))
    throw new InputError(`${what} must be a host name or IPv4 address, got ${JSON.stringify(host)}`)
  return host
}

function checkPort(port: unknown, what: string): number {
  const n = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535)
    throw new InputError(`${what} must be a port number (1-65535), got ${JSON.stringify(port)}`)
  return n
}

/** `HOST:PORT` of --target. */
export function parseTarget(text: string): HostPort {
  const at = text.lastIndexOf(':')
  if (at <= 0) throw new InputError(`--target must be HOST:PORT, got ${JSON.stringify(text)}`)
  return { host: checkHost(text.slice(0, at), '--target host'), port: checkPort(text.slice(at + 1), '--target port') }
}

function required(vars: Record<string, unknown>, name: string, host: string): unknown {
  const value = vars[name]
  if (value === undefined || value === null || value === '')
    throw new InputError(`${name} is not set for ${host} (the app role's defaults set it; is the app role there?)`)
  return value
}

/** The endpoints of a loaded inventory (with role defaults and secrets merged), and --target when given. */
export function loadEndpoints(inventory: Inventory, target?: string): LoadEndpoints {
  const [balancer] = inventory.groupHosts('haproxy')
  if (!balancer) throw new InputError(`${inventory.file} has no haproxy host to send votes through`)
  const vars = inventory.hosts.get(balancer)!.vars as Record<string, unknown>
  const front =
    vars.vip_address !== undefined && vars.vip_address !== null && vars.vip_address !== ''
      ? checkHost(vars.vip_address, 'vip_address')
      : checkHost(vars.address, `address of ${balancer}`)
  const vote = target
    ? parseTarget(target)
    : { host: front, port: checkPort(required(vars, 'app_http_port', balancer), 'app_http_port') }
  const results = {
    host: front,
    port: checkPort(required(vars, 'app_result_http_port', balancer), 'app_result_http_port'),
  }
  const password = required(vars, 'postgresql_app_password', balancer)
  const database: DatabaseEndpoint = {
    host: front,
    port: checkPort(required(vars, 'haproxy_pg_rw_port', balancer), 'haproxy_pg_rw_port'),
    user: String(required(vars, 'postgresql_app_user', balancer)),
    database: String(required(vars, 'postgresql_app_database', balancer)),
    password: String(password),
  }
  const caFile = controllerPgCaFile(inventory.file, vars)
  if (caFile) database.ssl = pgTls(caFile)
  return { vote, results, database }
}
