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
 * - `ssh_known_hosts_file` the pinned host keys (OpenSSH known_hosts format); default
 *                         `<inventory name>.known_hosts` beside the inventory, a relative
 *                         path is resolved against the inventory file's directory.
 * - `ssh_host_key_checking` `accept-new` (default: a new host's first key is recorded) or
 *                         `strict` (a host whose key is not in the file is refused).
 * - `ssh_persistent_session` sudo commands share one privileged session per host (default
 *                         true); false starts a `sudo` per command.
 *
 * `checkConnectionFiles` checks the local files a connection needs (key, known_hosts)
 * before any connection is opened.
 */
import { stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { HOST_KEY_CHECKING, type HostKeyChecking } from '../connection/known-hosts.ts'
import { InputError, type ConnectionSpec, type InventoryHost, type VarSchema, type Vars } from '../types.ts'

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
    description:
      'Where SSH connects when it differs from `address` (for example a NAT port forward); default `address`.',
  },
  ssh_user: { type: 'string', minLength: 1, description: 'SSH login user (default root).' },
  ssh_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'SSH port (default 22).' },
  ssh_key: {
    type: 'string',
    minLength: 1,
    description:
      'Private key path, relative to the inventory directory; the SSH agent when absent. ' +
      'Checked before any connection: it must exist and be readable by its owner only (mode 0600).',
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
  ssh_persistent_session: {
    type: 'boolean',
    description:
      'Run sudo commands through one privileged session per host and run (default true); ' +
      'false starts a `sudo` per command.',
  },
  ssh_known_hosts_file: {
    type: 'string',
    minLength: 1,
    pattern: '^[^\\u0000-\\u001f]+$',
    expected: 'a file path without control characters',
    description:
      'Pinned SSH host keys, OpenSSH known_hosts format, relative to the inventory directory ' +
      '(default `<inventory name>.known_hosts` beside the inventory).',
  },
  ssh_host_key_checking: {
    type: 'string',
    enum: [...HOST_KEY_CHECKING],
    description:
      "`accept-new` (default): a new host's first key is recorded in the known_hosts file; " +
      '`strict`: a host whose key is not there is refused. A changed key is always refused.',
  },
}

/** `inventory/lab.yml` → `inventory/lab.known_hosts`, unless a file is given (relative to the inventory dir). */
export function knownHostsFilePath(inventoryFile: string, explicit?: string): string {
  const abs = path.resolve(inventoryFile)
  if (explicit) return resolveKeyPath(explicit, path.dirname(abs))
  return path.join(path.dirname(abs), `${path.basename(abs).replace(/\.ya?ml$/, '')}.known_hosts`)
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
export function buildConnectionSpec(host: string, vars: Vars, inventoryFile: string): ConnectionSpec {
  const inventoryDir = path.dirname(path.resolve(inventoryFile))
  const user = typeof vars.ssh_user === 'string' ? vars.ssh_user : 'root'
  const key = typeof vars.ssh_key === 'string' ? resolveKeyPath(vars.ssh_key, inventoryDir) : undefined
  const knownHostsFile = typeof vars.ssh_known_hosts_file === 'string' ? vars.ssh_known_hosts_file : undefined
  const checking: HostKeyChecking = vars.ssh_host_key_checking === 'strict' ? 'strict' : 'accept-new'
  const spec: ConnectionSpec = {
    host,
    address: typeof vars.ssh_host === 'string' ? vars.ssh_host : typeof vars.address === 'string' ? vars.address : '',
    user,
    port: typeof vars.ssh_port === 'number' ? vars.ssh_port : 22,
    become: typeof vars.become === 'boolean' ? vars.become : user !== 'root',
    connectTimeoutMs: (typeof vars.ssh_connect_timeout === 'number' ? vars.ssh_connect_timeout : 10) * 1000,
    knownHosts: { file: knownHostsFilePath(inventoryFile, knownHostsFile), checking },
  }
  if (vars.ssh_persistent_session === false) spec.persistentSession = false
  if (key) spec.key = key
  if (typeof vars.ssh_jump === 'string') spec.jump = { ...parseJump(vars.ssh_jump, user), ...(key ? { key } : {}) }
  return spec
}

/**
 * Problems with the local files the hosts' connections need, found before any
 * connection: a missing or unreadable `ssh_key`, one readable by group or others
 * (OpenSSH refuses those too), a known_hosts file whose directory is missing, or a
 * strict host whose known_hosts file does not exist. Each file is reported once,
 * at the variable that set it.
 */
export async function checkConnectionFiles(hosts: InventoryHost[]): Promise<InputError[]> {
  const errors: InputError[] = []
  const seen = new Set<string>()
  /** True the first time an id is asked for. */
  const once = (id: string): boolean => {
    if (seen.has(id)) return false
    seen.add(id)
    return true
  }
  for (const host of hosts) {
    const { key, knownHosts } = host.connection
    if (key && once(`key ${key}`)) {
      const problem = await keyFileProblem(key)
      if (problem) errors.push(new InputError(problem, host.origins.ssh_key))
    }
    if (!knownHosts) continue
    const origin = host.origins.ssh_known_hosts_file ?? host.origins.ssh_host_key_checking
    const dir = path.dirname(knownHosts.file)
    if (once(`dir ${dir}`) && !(await stat(dir).catch(() => null))?.isDirectory()) {
      errors.push(new InputError(`the directory of the known_hosts file ${knownHosts.file} does not exist`, origin))
    }
    const strict = knownHosts.checking === 'strict' && once(`strict ${knownHosts.file}`)
    if (strict && !(await stat(knownHosts.file).catch(() => null))) {
      const problem = `ssh_host_key_checking is strict but the known_hosts file ${knownHosts.file} does not exist`
      errors.push(new InputError(problem, host.origins.ssh_host_key_checking))
    }
  }
  return errors
}

/** Why a private key file cannot be used, or undefined. */
async function keyFileProblem(file: string): Promise<string | undefined> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => err.code ?? 'error')
  if (info === 'ENOENT') return `ssh_key file ${file} does not exist`
  if (typeof info === 'string') return `ssh_key file ${file} cannot be read (${info})`
  if (!info.isFile()) return `ssh_key ${file} is not a regular file`
  if (info.mode & 0o077) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    return `ssh_key file ${file} is readable by group or others (mode ${mode}): run chmod 600 ${file}`
  }
  return undefined
}
