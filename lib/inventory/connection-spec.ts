/**
 * How to reach a host, read from its merged variables. The connection variables:
 *
 * - `address`             required; the host's address on the cluster network, where its
 *                         services listen and peers reach it (IPv4 or hostname).
 * - `ssh_host`            where SSH connects, when it differs from `address` (a NAT port
 *                         forward such as Vagrant's 127.0.0.1:2222); default `address`.
 * - `ssh_user`            login user; default `root`.
 * - `ssh_port`            default 22.
 * - `ssh_key`             private key path; `~` is expanded and a relative path is
 *                         resolved against the inventory file's directory (wherever
 *                         it was set). Absent: the SSH agent is used.
 * - `ssh_jump`            jump host as `[user@]host[:port]`; user defaults to
 *                         `ssh_user`, port to 22; it uses the same `ssh_key`.
 * - `become`              run commands through sudo; default true when `ssh_user` is not root.
 * - `ssh_connect_timeout` seconds; default 10.
 */
import os from 'node:os'
import path from 'node:path'
import type { ConnectionSpec, VarSchema, Vars } from '../types.ts'

const IPV4 = '(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
/** A hostname must not look like a (wrong) dotted number. */
const HOSTNAME = `(?![0-9.]+$)${LABEL}(?:\\.${LABEL})*`
export const ADDRESS_PATTERN = `^(?:${IPV4}|${HOSTNAME})$`

/** JSON Schemas of the connection variables (`expected` words the error message). */
export const CONNECTION_VARS: Record<string, VarSchema> = {
  address: {
    type: 'string',
    pattern: ADDRESS_PATTERN,
    expected: 'an IPv4 address or a hostname',
    description: "The host's address on the cluster network: services listen there and peers use it (required).",
  },
  ssh_host: {
    type: 'string',
    pattern: ADDRESS_PATTERN,
    expected: 'an IPv4 address or a hostname',
    description: 'Where SSH connects when it differs from `address` (for example a NAT port forward); default `address`.',
  },
  ssh_user: { type: 'string', minLength: 1, description: 'SSH login user (default root).' },
  ssh_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'SSH port (default 22).' },
  ssh_key: {
    type: 'string',
    minLength: 1,
    description: 'Private key path, relative to the inventory directory; the SSH agent when absent.',
  },
  ssh_jump: {
    type: 'string',
    pattern: `^(?:[A-Za-z0-9_.-]+@)?(?:${IPV4}|${HOSTNAME})(?::\\d{1,5})?$`,
    expected: 'a jump host as user@host:port',
    description: 'Jump host, `user@host:port`.',
  },
  become: { type: 'boolean', description: 'Run commands through sudo (default true when ssh_user is not root).' },
  ssh_connect_timeout: {
    type: 'number',
    exclusiveMinimum: 0,
    description: 'SSH connection timeout in seconds (default 10).',
  },
}

/** Expand `~` and resolve a relative key path against the inventory directory. */
export function resolveKeyPath(key: string, inventoryDir: string): string {
  if (key === '~' || key.startsWith('~/')) return path.join(os.homedir(), key.slice(1))
  return path.resolve(inventoryDir, key)
}

/** Parse `[user@]host[:port]`. */
export function parseJump(jump: string, defaultUser: string): { user: string; host: string; port: number } {
  const at = jump.lastIndexOf('@')
  const user = at >= 0 ? jump.slice(0, at) : defaultUser
  const rest = at >= 0 ? jump.slice(at + 1) : jump
  const colon = rest.lastIndexOf(':')
  const host = colon >= 0 ? rest.slice(0, colon) : rest
  const port = colon >= 0 ? Number(rest.slice(colon + 1)) : 22
  return { user, host, port }
}

/** Build a host's ConnectionSpec from its (validated) merged variables. */
export function buildConnectionSpec(host: string, vars: Vars, inventoryDir: string): ConnectionSpec {
  const user = typeof vars.ssh_user === 'string' ? vars.ssh_user : 'root'
  const key = typeof vars.ssh_key === 'string' ? resolveKeyPath(vars.ssh_key, inventoryDir) : undefined
  const spec: ConnectionSpec = {
    host,
    address: typeof vars.ssh_host === 'string' ? vars.ssh_host : typeof vars.address === 'string' ? vars.address : '',
    user,
    port: typeof vars.ssh_port === 'number' ? vars.ssh_port : 22,
    become: typeof vars.become === 'boolean' ? vars.become : user !== 'root',
    connectTimeoutMs: (typeof vars.ssh_connect_timeout === 'number' ? vars.ssh_connect_timeout : 10) * 1000,
  }
  if (key) spec.key = key
  if (typeof vars.ssh_jump === 'string') spec.jump = { ...parseJump(vars.ssh_jump, user), ...(key ? { key } : {}) }
  return spec
}
