/**
 * Pinned SSH host keys in an OpenSSH known_hosts file.
 *
 * Lines are `host[,host2] keytype base64 [comment]`; a host is `address` for
 * port 22 and `[address]:port` otherwise; `*`/`?` wildcards, `!` negation,
 * hashed names (`|1|salt|hash`, HashKnownHosts) and `@revoked` are understood;
 * `#` starts a comment. A host is matched by the address SSH connects to.
 *
 * A key already in the file passes; a different key for a known host is a
 * CHANGED key and is refused with both fingerprints and the command that
 * forgets the old one; an unknown host is recorded (accept-new) or refused
 * (strict). Checks and writes of one file are serialized within the process,
 * and every write replaces the file atomically (temp file, fsync, rename).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { open, readFile, rename, stat, unlink } from 'node:fs/promises'
import path from 'node:path'
import { quote } from './quote.ts'

export type HostKeyChecking = 'accept-new' | 'strict'
export const HOST_KEY_CHECKING: readonly HostKeyChecking[] = ['accept-new', 'strict']

/** How OpenSSH names a host in known_hosts: `address`, or `[address]:port` off port 22. */
export function knownHostName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` and unpadded base64. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, ...). */
export function keyType(key: Buffer): string {
  if (key.length < 4) return 'unknown'
  const length = key.readUInt32BE(0)
  if (length === 0 || length > 64 || key.length < 4 + length) return 'unknown'
  return key.subarray(4, 4 + length).toString('latin1')
}

export interface KnownKey {
  type: string
  key: Buffer
  revoked: boolean
  /** 1-based line in the file, for messages. */
  line: number
}

/** Every key line of a known_hosts text that names this host (comments, markers and malformed lines skipped). */
export function keysFor(text: string, name: string): KnownKey[] {
  const found: KnownKey[] = []
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/)
    if (fields[0] === '' || fields[0]!.startsWith('#')) return
    let revoked = false
    if (fields[0]!.startsWith('@')) {
      if (fields[0] !== '@revoked') return // @cert-authority: certificates are not used here
      revoked = true
      fields.shift()
    }
    const [hosts, type, base64] = fields
    if (!hosts || !type || !base64 || !matchesHostList(hosts, name)) return
    found.push({ type, key: Buffer.from(base64, 'base64'), revoked, line: index + 1 })
  })
  return found
}

/** OpenSSH's host list: comma-separated patterns, any `!pattern` that matches vetoes the line. */
function matchesHostList(list: string, name: string): boolean {
  if (list.startsWith('|1|')) return matchesHashed(list, name)
  let matched = false
  for (const pattern of list.split(',')) {
    const negated = pattern.startsWith('!')
    if (!globMatch(negated ? pattern.slice(1) : pattern, name.toLowerCase())) continue
    if (negated) return false
    matched = true
  }
  return matched
}

function matchesHashed(entry: string, name: string): boolean {
  const [, , salt, hash] = entry.split('|')
  if (!salt || !hash) return false
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
}

function globMatch(pattern: string, name: string): boolean {
  const source = [...pattern.toLowerCase()]
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('')
  return new RegExp(`^${source}$`).test(name)
}

/** Server host key algorithms that ssh2 should prefer so that a known key type is offered first. */
export function preferredAlgorithms(known: KnownKey[]): string[] {
  const byType: Record<string, string[]> = {
    'ssh-ed25519': ['ssh-ed25519'],
    'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
    'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
    'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
    'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  }
  return [...new Set(known.filter((k) => !k.revoked).flatMap((k) => byType[k.type] ?? []))]
}

export type Verdict = { ok: true; recorded: boolean } | { ok: false; reason: string }

/** The parts of a verification: which host, where SSH connects, which key it presented. */
export interface PresentedKey {
  /** Inventory name of the host (or "jump host of X"), for messages. */
  host: string
  address: string
  port: number
  key: Buffer
}

const queues = new Map<string, Promise<unknown>>()

/** Run `job` after every earlier job on the same file (checks and writes never interleave). */
function serialized<T>(file: string, job: () => Promise<T>): Promise<T> {
  const previous = queues.get(file) ?? Promise.resolve()
  const next = previous.then(job, job)
  queues.set(
    file,
    next.catch(() => undefined),
  )
  return next
}

/** A known_hosts file and how strictly unknown hosts are treated. */
export class KnownHosts {
  constructor(
    readonly file: string,
    readonly checking: HostKeyChecking,
  ) {}

  /** The keys the file holds for this address and port (empty when the file is absent). */
  async known(address: string, port: number): Promise<KnownKey[]> {
    return keysFor(await this.read(), knownHostName(address, port))
  }

  /**
   * Accept, record or refuse a presented key. A refusal is a verdict, not an error:
   * its reason names the host, the fingerprints and the fix.
   */
  verify(presented: PresentedKey): Promise<Verdict> {
    return serialized(this.file, async () => {
      const name = knownHostName(presented.address, presented.port)
      const text = await this.read()
      const keys = keysFor(text, name)
      const same = keys.filter((k) => k.key.equals(presented.key))
      const shown = fingerprint(presented.key)
      const forget = `ssh-keygen -R ${quote(name)} -f ${quote(this.file)}`
      if (same.some((k) => k.revoked)) {
        const reason = `host key ${shown} of ${presented.host} (${name}) is marked @revoked in ${this.file}`
        return { ok: false, reason }
      }
      if (same.length > 0) return { ok: true, recorded: false }
      const trusted = keys.filter((k) => !k.revoked)
      if (trusted.length > 0) {
        const old = trusted.map((k) => `${fingerprint(k.key)} (${k.type}, line ${k.line})`).join(', ')
        return {
          ok: false,
          reason:
            `HOST KEY CHANGED for ${presented.host} (${name}): ${this.file} holds ${old}, ` +
            `the server presented ${shown} (${keyType(presented.key)}). Nothing was run on it. ` +
            'If the host was really reinstalled, check the new fingerprint on the host ' +
            '(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), ' +
            `then forget the old key with: ${forget}`,
        }
      }
      if (this.checking === 'strict') {
        return {
          ok: false,
          reason:
            `unknown host key ${shown} (${keyType(presented.key)}) for ${presented.host} (${name}): ` +
            `ssh_host_key_checking is strict and ${this.file} has no key for it; add its key line to that file ` +
            `(for example from ssh-keyscan -p ${presented.port} ${presented.address}, after comparing the fingerprint)`,
        }
      }
      const line = `${name} ${keyType(presented.key)} ${presented.key.toString('base64')}\n`
      await this.write(text === '' || text.endsWith('\n') ? text + line : `${text}\n${line}`)
      return { ok: true, recorded: true }
    })
  }

  private async read(): Promise<string> {
    try {
      return await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
      throw err
    }
  }

  /** Replace the file atomically, keeping its mode (0644 for a new file). */
  private async write(text: string): Promise<void> {
    const mode = ((await stat(this.file).catch(() => null))?.mode ?? 0o644) & 0o777
    const suffix = randomBytes(6).toString('hex')
    const temp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.hastack-${suffix}`)
    try {
      const handle = await open(temp, 'wx', mode)
      try {
        await handle.writeFile(text)
        await handle.chmod(mode)
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(temp, this.file)
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw err
    }
  }
}
