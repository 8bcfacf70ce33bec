/**
 * The SSH connector: one SSH connection per host for the whole run, every
 * command on its own exec channel over it (node-ssh/ssh2 multiplex channels;
 * a per-connection limit keeps us under sshd's MaxSessions, default 10).
 *
 * Authentication: the key file of the spec (`~` expanded), else the SSH agent
 * (SSH_AUTH_SOCK), else the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
 * An optional jump host is reached first and the target is tunnelled through
 * it (`forwardOut`).
 *
 * Host keys: pinned in the spec's known_hosts file (see known-hosts.ts) for the
 * target and the jump host alike; a changed key fails the connection with both
 * fingerprints, and it is never retried. A spec without a file pins keys in
 * memory for the life of the process.
 *
 * Become commands (sudo) go through one persistent privileged session per connection
 * when it is idle (see session.ts): one sudo start per host per run. While it is busy,
 * or when `persistentSession` is false, or when it cannot start (no passwordless sudo),
 * they take the exec path above (`sudo -n -H ... sh -c` on their own channel). A session
 * lost mid-command fails that command with UnreachableError (never re-run); later commands
 * open a new one, at most MAX_SESSION_OPENS per connection, then use the exec path. The
 * session may hold the host lock (holdLock): a new session takes it again before anything
 * else, and where it cannot (another run took it, or no session is left) the connection is
 * lost: no command runs on the host without its lock.
 *
 * node-ssh is used to connect; commands go straight to the underlying ssh2
 * client because node-ssh's execCommand decodes each chunk on its own (breaking
 * multi-byte UTF-8 and binary data), trims output, takes no Buffer stdin and
 * adds an 'error' listener per call.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { constants as osConstants, homedir } from 'node:os'
import { NodeSSH } from 'node-ssh'
import type {
  Connection,
  ConnectionSpec,
  HeldCommand,
  LockRequest,
  Probe,
  ProbeAnswer,
  PutOptions,
  RunOptions,
  RunResult,
} from '../types.ts'
import { CommandError, UnreachableError } from '../types.ts'
import { PROBE_SCRIPT, parseProbeAnswers, probeInput } from '../facts/probes.ts'
import { LOCK_HELD } from './session-helper.ts'
import { KnownHosts, fingerprint, preferredAlgorithms } from './known-hosts.ts'
import { PrivilegedSession, SessionLost, SessionRefused, type SessionChannel, type SessionResult } from './session.ts'
import { DEFAULT_TIMEOUT_MS, commandText, getScript, putScript, sessionArgv, usesSudo, wrapCommand } from './wrap.ts'

export interface ConnectOptions {
  /** Further attempts after a failed one (refused, timed out, reset). Default 2. Auth failures are not retried. */
  retries?: number
  /** Delay before the first retry, doubled each time (capped at 10 s). Default 500. */
  retryDelayMs?: number
  /** Exec channels open at once on this connection. Default 8 (sshd's MaxSessions defaults to 10). */
  maxSessions?: number
}

/** The parts of ssh2's Client and Channel that we use (ssh2 ships no types here). */
interface Ssh2Channel {
  on(event: 'data', cb: (chunk: Buffer) => void): this
  on(event: 'exit', cb: (code: number | null, signal?: string) => void): this
  on(event: 'close', cb: () => void): this
  stderr: { on(event: 'data', cb: (chunk: Buffer) => void): void }
  write(data: string | Buffer): boolean
  end(): void
  close(): void
  signal(name: string): void
}
interface Ssh2Client {
  exec(command: string, cb: (err: Error | undefined, channel: Ssh2Channel) => void): void
  on(event: 'error' | 'close', cb: (err?: Error) => void): this
  once(event: 'close', cb: () => void): this
  end(): void
  setNoDelay(noDelay: boolean): void
}

/** Extra time after the remote `timeout` before we close the channel ourselves. */
const LOCAL_GRACE_MS = 2_000
/**
 * Stdin larger than this takes the exec path, where it streams: the session receives a request whole
 * before running it, so a connection dropped during a long upload could not cut the command's input.
 */
const SESSION_MAX_STDIN = 1 << 20
/** Sessions opened per connection at most (the first plus reopenings after lost ones). */
const MAX_SESSION_OPENS = 3
/** How long taking the host lock in the session may take (it never waits for the lock: 0.3 s when held). */
const LOCK_DEADLINE_MS = 30_000
/** First host key seen per address:port, for specs without a known_hosts file (accept-new, in memory). */
const memoryHostKeys = new Map<string, Buffer>()

export class SshConnection implements Connection {
  readonly host: string
  private count = 0
  private active = 0
  private readonly waiting: (() => void)[] = []
  private readonly pending = new Set<(err: Error) => void>()
  private lost: string | undefined
  private session: PrivilegedSession | undefined
  private sessionOpening = false
  /** The session started ahead (startPrivileged), until it runs or failed: the first claim waits for it. */
  private starting: Promise<void> | undefined
  private sessionOpens = 0
  /** Why the exec path is used for every become command from now on (undefined: sessions allowed). */
  private sessionOff: string | undefined
  /** The host lock the session holds (holdLock): a new session after a lost one takes it again first. */
  private heldLock: LockRequest | undefined
  /** While a new session takes the host lock again after a lost one: every command waits for it. */
  private relocking: Promise<void> | undefined

  private constructor(
    readonly spec: ConnectionSpec,
    private readonly ssh: NodeSSH,
    private readonly jump: NodeSSH | undefined,
    private readonly maxSessions: number,
  ) {
    this.host = spec.host
    const onGone = (why: string) => {
      this.lost ??= why
      for (const reject of this.pending)
        reject(new UnreachableError(this.host, `connection to ${describe(spec)} lost: ${why}`))
    }
    // Without TCP_NODELAY every exec pays Nagle + delayed-ACK latency (~70 ms instead of ~25 ms).
    this.client.setNoDelay(true)
    if (jump) (jump.connection as Ssh2Client).setNoDelay(true)
    // node-ssh drops its 'error' listener once connected: without ours a late error would crash the process.
    this.client.on('error', (err) => onGone(err?.message ?? 'error'))
    this.client.on('close', () => onGone('closed'))
    if (jump) (jump.connection as Ssh2Client).on('error', (err) => onGone(`jump host: ${err?.message}`))
  }

  get commandCount(): number {
    return this.count
  }

  /** Privileged sessions started so far (each one sudo start); for tests and benchmarks. */
  get sessionsOpened(): number {
    return this.sessionOpens
  }

  /** Whether a privileged session is open here (its channel not yet seen closed); for tests. */
  get sessionOpen(): boolean {
    return this.session?.alive === true
  }

  private get client(): Ssh2Client {
    return this.ssh.connection as Ssh2Client
  }

  /** Connect, retrying transient failures with backoff. Throws UnreachableError. */
  static async connect(spec: ConnectionSpec, opts: ConnectOptions = {}): Promise<SshConnection> {
    const retries = opts.retries ?? 2
    const delay = opts.retryDelayMs ?? 500
    for (let attempt = 0; ; attempt++) {
      try {
        const { ssh, jump } = await connectOnce(spec)
        return new SshConnection(spec, ssh, jump, opts.maxSessions ?? 8)
      } catch (err) {
        const failure = classify(err, spec)
        if (!failure.retry || attempt >= retries) {
          const tries = attempt > 0 ? ` (after ${attempt + 1} attempts)` : ''
          throw new UnreachableError(
            spec.host,
            `cannot connect to ${spec.host} at ${describe(spec)}: ${failure.cause}${tries}`,
          )
        }
        await new Promise((r) => setTimeout(r, Math.min(delay * 2 ** attempt, 10_000)))
      }
    }
  }

  async run(command: string | string[], options: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const r = await this.execute(command, options, options.stdin, timeoutMs)
    const result: RunResult = {
      code: r.code,
      stdout: r.stdout.toString('utf8'),
      stderr: r.stderr.toString('utf8'),
      durationMs: r.durationMs,
    }
    if (options.check && result.code !== 0) throw new CommandError(this.host, commandText(command), result)
    return result
  }

  /** Answer read-only probes in one round trip (lib/facts/probes.ts; the probes go on stdin). */
  async runProbes(probes: readonly Probe[]): Promise<ProbeAnswer[]> {
    const result = await this.run(['perl', '-e', PROBE_SCRIPT], { stdin: probeInput(probes), check: true })
    return parseProbeAnswers(result.stdout, probes.length)
  }

  async put(remotePath: string, content: string | Buffer, options: PutOptions = {}): Promise<void> {
    const bytes = Buffer.byteLength(content)
    const payload = { bytes, sha256: createHash('sha256').update(content).digest('hex') }
    const r = await this.execute(putScript(remotePath, payload, options), {}, content, DEFAULT_TIMEOUT_MS)
    if (r.code !== 0) throw this.fail(`put ${remotePath}`, r)
  }

  async get(remotePath: string): Promise<Buffer> {
    const r = await this.execute(getScript(remotePath), {}, undefined, DEFAULT_TIMEOUT_MS)
    if (r.code !== 0) throw this.fail(`get ${remotePath}`, r)
    return r.stdout
  }

  async close(): Promise<void> {
    this.lost ??= 'closed by us'
    // node-ssh forgets the client once the connection is lost: then there is nothing left to wait for.
    const client = this.ssh.connection as Ssh2Client | null
    const closed = new Promise<void>((resolve) => {
      if (!client) return resolve()
      client.once('close', resolve)
      setTimeout(resolve, 1_000).unref()
    })
    this.ssh.dispose()
    await closed
    this.jump?.dispose()
  }

  /** Whether run/put/get would still work (false after close or a lost connection). */
  get connected(): boolean {
    return this.lost === undefined
  }

  private fail(what: string, r: ExecResult): CommandError {
    return new CommandError(this.host, what, {
      code: r.code,
      stdout: '',
      stderr: r.stderr.toString('utf8'),
      durationMs: r.durationMs,
    })
  }

  /** Run a command through the idle privileged session when it applies, else on its own exec channel. */
  private async execute(
    command: string | string[],
    options: RunOptions,
    stdin: string | Buffer | undefined,
    timeoutMs: number,
  ): Promise<ExecResult> {
    const line = wrapCommand(command, options, this.spec.become)
    await this.locked()
    const streamed = stdin !== undefined && Buffer.byteLength(stdin) > SESSION_MAX_STDIN
    const session = usesSudo(options, this.spec.become) && !streamed ? await this.claimSession() : undefined
    if (!session) return this.exec(line, stdin, timeoutMs)
    this.count++
    const started = performance.now()
    try {
      const input = stdin === undefined ? Buffer.alloc(0) : Buffer.from(stdin)
      const raw = await session.run(sessionArgv(command, options), input, timeoutMs + LOCAL_GRACE_MS)
      return timedOutResult(raw, started, timeoutMs)
    } catch (err) {
      if (!(err instanceof SessionLost)) throw err
      const why = this.lost ? `connection to ${describe(this.spec)} lost: ${this.lost}` : err.message
      throw new UnreachableError(this.host, `${why}; the command was not re-run: ${commandText(command)}`)
    } finally {
      session.busy = false
    }
  }

  /**
   * The privileged session, marked busy for the caller, or undefined when the exec path must be used
   * (sessions off, the session busy or starting for another command, or the opening budget spent). A session
   * started ahead (startPrivileged) is waited for.
   * Throws UnreachableError when the channel for a new session cannot be opened.
   */
  private async claimSession(): Promise<PrivilegedSession | undefined> {
    if (this.starting) await this.starting
    return this.claimOrOpenSession()
  }

  /** Start the privileged session ahead (see Connection.startPrivileged); its failures surface at first use. */
  startPrivileged(): void {
    if (this.starting || this.session || this.sessionOpening) return
    const starting = this.claimOrOpenSession().then(
      (session) => void (session && (session.busy = false)),
      () => undefined,
    )
    this.starting = starting.finally(() => (this.starting = undefined))
  }

  private async claimOrOpenSession(): Promise<PrivilegedSession | undefined> {
    if (this.spec.persistentSession === false || this.sessionOff || this.maxSessions < 2) return undefined
    const current = this.session
    if (current?.alive) {
      if (current.busy) return undefined
      current.busy = true
      return current
    }
    if (this.sessionOpening) return undefined
    if (this.sessionOpens >= MAX_SESSION_OPENS) {
      this.sessionOff = `${MAX_SESSION_OPENS} privileged sessions were lost`
      if (this.heldLock) this.loseHostLock(this.sessionOff)
      return undefined
    }
    this.sessionOpening = true
    this.sessionOpens++
    // The session keeps one of the maxSessions channels for as long as it lives.
    await this.acquire()
    let opened: PrivilegedSession | undefined
    try {
      // Once a session exists, its end gives the channel back (also when it fails to start).
      opened = await PrivilegedSession.open(
        (line) => this.openChannel(line),
        () => {
          if (this.session && this.session === opened) this.session = undefined
          this.release()
          // The host lock went with the session: a new one takes it again before any command runs.
          if (this.heldLock && !this.lost) this.relocking ??= this.relock()
        },
      )
      opened.busy = true
      this.session = opened
    } catch (err) {
      if (err instanceof SessionRefused) {
        // No passwordless sudo or no perl: the exec path reports the very error it always did.
        this.sessionOff = err.message
        if (this.heldLock) this.loseHostLock(err.message)
        return undefined
      }
      // The channel never opened: no session end will give its slot back.
      this.release()
      if (err instanceof ChannelRefused) {
        throw new UnreachableError(this.host, `cannot start a privileged session: ${err.message}`)
      }
      throw err
    } finally {
      this.sessionOpening = false
    }
    if (this.heldLock) await this.retakeHostLock(opened)
    return opened
  }

  /**
   * Take a host lock in the privileged session (see Connection.holdLock); undefined when there is no session to
   * hold it (sessions off or refused, no become). The lock goes with the session: `release` has nothing to do.
   */
  async holdLock(request: LockRequest): Promise<HeldCommand | undefined> {
    if (!this.spec.become) return undefined
    const session = await this.claimSession()
    if (!session) return undefined
    let result: SessionResult
    try {
      result = await session.lock(request, LOCK_DEADLINE_MS)
    } catch (err) {
      if (!(err instanceof SessionLost)) throw err
      throw new UnreachableError(this.host, `the privileged session ended while it took the host lock: ${err.message}`)
    } finally {
      session.busy = false
    }
    if (result.code === 0) this.heldLock = request
    else if (result.code !== LOCK_HELD) throw this.fail(`take the lock ${request.lock}`, { ...result, durationMs: 0 })
    return { firstLine: result.stdout.toString('utf8').split('\n')[0]!, release: async () => undefined }
  }

  /** Open a new session, which takes the host lock again (or loses the connection), and leave it idle. */
  private relock(): Promise<void> {
    const opened = this.claimOrOpenSession().then(
      (session) => void (session && (session.busy = false)),
      () => undefined,
    )
    return opened.finally(() => (this.relocking = undefined))
  }

  /** Wait while the host lock is taken again; throws UnreachableError once the connection is lost. */
  private async locked(): Promise<void> {
    if (this.relocking) await this.relocking
    if (this.lost) throw this.lostError()
  }

  /** A new session after a lost one: the host lock first, or the connection is lost (no command runs unlocked). */
  private async retakeHostLock(session: PrivilegedSession): Promise<void> {
    const taken = await session.lock(this.heldLock!, LOCK_DEADLINE_MS).catch((err: Error) => err)
    if (!(taken instanceof Error) && taken.code === 0) return
    session.busy = false
    session.close()
    const why = taken instanceof Error ? taken.message : taken.stdout.toString('utf8').trim() || `exit ${taken.code}`
    this.loseHostLock(`it could not be taken again (${why})`)
  }

  private loseHostLock(why: string): never {
    this.lost ??= `without its host lock: the privileged session holding it ended and ${why}`
    throw this.lostError()
  }

  /** Why nothing more runs on this connection (it was closed, dropped, or lost its host lock). */
  private lostError(): UnreachableError {
    return new UnreachableError(this.host, `connection to ${describe(this.spec)} is ${this.lost}`)
  }

  /** Open an exec channel for a session; fails with ChannelRefused, or UnreachableError when the connection is lost. */
  private openChannel(line: string): Promise<SessionChannel> {
    return new Promise((resolve, reject) => {
      if (this.lost) return reject(this.lostError())
      this.client.exec(line, (err, ch) => {
        if (err) return reject(new ChannelRefused(`cannot open a channel to ${describe(this.spec)}: ${err.message}`))
        resolve(ch)
      })
    })
  }

  /** Run one command line on its own channel, bounded by maxSessions. Timed-out commands get code 124. */
  private async exec(line: string, stdin: string | Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    if (this.lost) throw this.lostError()
    await this.acquire()
    this.count++
    const started = performance.now()
    try {
      return timedOutResult(await this.channelWithRetry(line, stdin, timeoutMs), started, timeoutMs)
    } finally {
      this.release()
    }
  }

  /** sshd refuses channels beyond its MaxSessions ("open failed"): wait and retry a few times. */
  private async channelWithRetry(line: string, stdin: string | Buffer | undefined, timeoutMs: number) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.channel(line, stdin, timeoutMs)
      } catch (err) {
        if (!(err instanceof ChannelRefused) || attempt >= 5) {
          throw err instanceof ChannelRefused
            ? new UnreachableError(
                this.host,
                `${err.message} (more channels than sshd's MaxSessions? lower maxSessions)`,
              )
            : err
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt))
      }
    }
  }

  private channel(line: string, stdin: string | Buffer | undefined, timeoutMs: number) {
    return new Promise<{ code: number; stdout: Buffer; stderr: Buffer; killedLocally: boolean }>((resolve, reject) => {
      let settled = false
      const fail = (err: Error) => {
        if (settled) return
        settled = true
        this.pending.delete(fail)
        reject(err)
      }
      this.pending.add(fail)
      this.client.exec(line, (err, ch) => {
        if (err) return fail(new ChannelRefused(`cannot open a channel to ${describe(this.spec)}: ${err.message}`))
        const out: Buffer[] = []
        const errs: Buffer[] = []
        let code: number | null = null
        let signal: string | undefined
        let killedLocally = false
        // Fallback when the remote `timeout` did not end the command: close the channel ourselves.
        const timer = setTimeout(() => {
          killedLocally = true
          try {
            ch.signal('KILL')
          } catch {}
          ch.close()
        }, timeoutMs + LOCAL_GRACE_MS)
        ch.on('data', (c) => out.push(c))
        ch.stderr.on('data', (c) => errs.push(c))
        ch.on('exit', (c, s) => {
          code = c
          signal = s
        })
        ch.on('close', () => {
          clearTimeout(timer)
          if (settled) return
          settled = true
          this.pending.delete(fail)
          resolve({
            code: code ?? signalCode(signal),
            stdout: Buffer.concat(out),
            stderr: Buffer.concat(errs),
            killedLocally,
          })
        })
        if (stdin !== undefined) ch.write(stdin)
        ch.end()
      })
    })
  }

  private async acquire(): Promise<void> {
    if (this.active < this.maxSessions) {
      this.active++
      return
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.active--
  }

  /**
   * A command kept running on its own channel (one of maxSessions) until released: its input stays
   * open, and closing the channel, or losing the connection, ends it. Resolves at its first output line.
   */
  async hold(command: string | string[], options: RunOptions = {}): Promise<HeldCommand> {
    await this.locked()
    const line = wrapCommand(command, { ...options, timeoutMs: options.timeoutMs ?? HOLD_TIMEOUT_MS }, this.spec.become)
    await this.acquire()
    this.count++
    return new Promise<HeldCommand>((resolve, reject) => {
      this.client.exec(line, (err, ch) => {
        if (err) {
          this.release()
          const why = `cannot open a channel to ${describe(this.spec)}: ${err.message}`
          return reject(new UnreachableError(this.host, why))
        }
        let out = ''
        let errs = ''
        let code: number | null = null
        let started = false
        const closed = new Promise<void>((done) =>
          ch.on('close', () => {
            this.release()
            done()
            const result = { code: code ?? 255, stdout: out, stderr: errs, durationMs: 0 }
            if (!started) reject(new CommandError(this.host, commandText(command), result))
          }),
        )
        const release = async () => {
          ch.end()
          const bounded = new Promise<void>((done) => setTimeout(done, HOLD_RELEASE_WAIT_MS).unref())
          await Promise.race([closed, bounded])
          ch.close()
        }
        ch.on('exit', (c) => void (code = c))
        ch.stderr.on('data', (c) => void (errs += c.toString('utf8')))
        ch.on('data', (c) => {
          out += c.toString('utf8')
          const end = out.indexOf('\n')
          if (!started && end >= 0) {
            started = true
            resolve({ firstLine: out.slice(0, end), release })
          }
        })
      })
    })
  }
}

/** A held command is killed by the remote `timeout` after a week at the latest. */
const HOLD_TIMEOUT_MS = 7 * 86_400_000
/** How long release() waits for a held command to exit before closing its channel anyway. */
const HOLD_RELEASE_WAIT_MS = 5_000

class ChannelRefused extends Error {}

interface ExecResult {
  code: number
  stdout: Buffer
  stderr: Buffer
  durationMs: number
}

/** The result with its duration; a command past its deadline gets code 124 and a note on stderr. */
function timedOutResult(
  raw: { code: number; stdout: Buffer; stderr: Buffer; killedLocally: boolean },
  started: number,
  timeoutMs: number,
): ExecResult {
  const durationMs = Math.round(performance.now() - started)
  const timedOut = raw.killedLocally || (durationMs >= timeoutMs && (raw.code === 124 || raw.code === 137))
  if (!timedOut) return { code: raw.code, stdout: raw.stdout, stderr: raw.stderr, durationMs }
  const note = Buffer.from(`hastack: command timed out after ${timeoutMs / 1000}s and was killed\n`)
  return { code: 124, stdout: raw.stdout, stderr: Buffer.concat([raw.stderr, note]), durationMs }
}

/** A process killed by a signal reports 128 + its number, like a shell does. */
function signalCode(signal: string | undefined): number {
  // ssh2 reports signals as 'SIGKILL'; accept the bare name too.
  const name = signal && !signal.startsWith('SIG') ? `SIG${signal}` : signal
  const n = name ? (osConstants.signals as Record<string, number>)[name] : undefined
  return n ? 128 + n : 255
}

/** `user@address:port`, with the jump host when there is one. */
function describe(spec: ConnectionSpec): string {
  const j = spec.jump
  return `${spec.user}@${spec.address}:${spec.port}${j ? ` via ${j.user}@${j.host}:${j.port}` : ''}`
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path
}

/** Marks an error with which side failed and how we authenticated, for classify(). */
class AttemptError extends Error {
  constructor(
    readonly inner: unknown,
    readonly side: 'target' | 'jump',
    readonly auth: string,
    readonly user: string,
    readonly timeoutMs: number,
  ) {
    super(inner instanceof Error ? inner.message : String(inner))
  }
}

/** Key material or agent for a user, and a description of it for error messages. */
async function credentials(key: string | undefined): Promise<{ config: Record<string, unknown>; auth: string }> {
  if (key) {
    const path = expandHome(key)
    try {
      return { config: { privateKey: await readFile(path, 'utf8') }, auth: `key ${key}` }
    } catch (err) {
      throw Object.assign(new Error(`cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`), {
        fatal: true,
      })
    }
  }
  if (process.env.SSH_AUTH_SOCK) return { config: { agent: process.env.SSH_AUTH_SOCK }, auth: 'the SSH agent' }
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const path = `${homedir()}/.ssh/${name}`
    if (existsSync(path)) return { config: { privateKey: await readFile(path, 'utf8') }, auth: `key ${path}` }
  }
  throw Object.assign(new Error('no key file given, no SSH agent (SSH_AUTH_SOCK) and no ~/.ssh/id_* key'), {
    fatal: true,
  })
}

/** Raised when a host key is refused; its message is the whole story (host, fingerprints, fix). */
class HostKeyRefused extends Error {
  readonly fatal = true
}

/**
 * The ssh2 options that check one server's host key (`hostVerifier`, and the key
 * algorithms that make a server offer the type already pinned), and the refusal, if any.
 */
async function hostKeyPolicy(spec: ConnectionSpec, host: string, address: string, port: number) {
  let refusal: HostKeyRefused | undefined
  const pinned = spec.knownHosts ? new KnownHosts(spec.knownHosts.file, spec.knownHosts.checking) : undefined
  const preferred = pinned ? preferredAlgorithms(await pinned.known(address, port)) : []
  const options = {
    ...(preferred.length ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } } } : {}),
    hostVerifier: (key: Buffer, verify: (ok: boolean) => void): void => {
      if (!pinned) {
        const id = `${address}:${port}`
        const first = memoryHostKeys.get(id) ?? key
        memoryHostKeys.set(id, first)
        if (!first.equals(key)) {
          const why = `host key of ${host} changed during this run: was ${fingerprint(first)}, now ${fingerprint(key)}`
          refusal = new HostKeyRefused(why)
        }
        return verify(refusal === undefined)
      }
      pinned.verify({ host, address, port, key }).then(
        (verdict) => {
          if (!verdict.ok) refusal = new HostKeyRefused(verdict.reason)
          verify(verdict.ok)
        },
        (err: Error) => {
          refusal = new HostKeyRefused(`cannot use ${pinned.file}: ${err.message}`)
          verify(false)
        },
      )
    },
  }
  return { options, refusal: () => refusal }
}

const SSH_DEFAULTS = { keepaliveInterval: 15_000, keepaliveCountMax: 4 }

async function connectOnce(spec: ConnectionSpec): Promise<{ ssh: NodeSSH; jump?: NodeSSH }> {
  let jump: NodeSSH | undefined
  let sock: unknown
  if (spec.jump) {
    const j = spec.jump
    const cred = await credentials(j.key ?? spec.key)
    const hostKey = await hostKeyPolicy(spec, `the jump host of ${spec.host}`, j.host, j.port)
    jump = new NodeSSH()
    try {
      await jump.connect({
        ...SSH_DEFAULTS,
        ...cred.config,
        ...hostKey.options,
        host: j.host,
        port: j.port,
        username: j.user,
        readyTimeout: spec.connectTimeoutMs,
      } as never)
      sock = await jump.forwardOut('127.0.0.1', 0, spec.address, spec.port)
    } catch (err) {
      jump.dispose()
      throw new AttemptError(hostKey.refusal() ?? err, 'jump', cred.auth, j.user, spec.connectTimeoutMs)
    }
  }
  const cred = await credentials(spec.key)
  const hostKey = await hostKeyPolicy(spec, spec.host, spec.address, spec.port)
  const ssh = new NodeSSH()
  try {
    await ssh.connect({
      ...SSH_DEFAULTS,
      ...cred.config,
      ...hostKey.options,
      ...(sock ? { sock } : { host: spec.address, port: spec.port }),
      username: spec.user,
      readyTimeout: spec.connectTimeoutMs,
    } as never)
  } catch (err) {
    ssh.dispose()
    jump?.dispose()
    throw new AttemptError(hostKey.refusal() ?? err, 'target', cred.auth, spec.user, spec.connectTimeoutMs)
  }
  return { ssh, jump }
}

/** Turn a connection failure into a short cause and whether retrying may help. */
function classify(err: unknown, spec: ConnectionSpec): { cause: string; retry: boolean } {
  const e = err instanceof AttemptError ? err : undefined
  const inner = (e ? e.inner : err) as (Error & { code?: string; level?: string; fatal?: boolean }) | undefined
  const where = e?.side === 'jump' ? 'jump host: ' : ''
  const msg = inner?.message ?? String(err)
  if (inner?.fatal) return { cause: msg, retry: false }
  if (inner?.level === 'client-authentication') {
    return { cause: `${where}authentication failed for user ${e?.user} with ${e?.auth}`, retry: false }
  }
  if (msg === 'No response from server') {
    return { cause: `${where}the server closed the connection during the handshake`, retry: true }
  }
  if (inner?.level === 'client-timeout' || inner?.code === 'ETIMEDOUT') {
    return { cause: `${where}timed out after ${(e?.timeoutMs ?? spec.connectTimeoutMs) / 1000}s`, retry: true }
  }
  const byCode: Record<string, [string, boolean]> = {
    ECONNREFUSED: ['connection refused', true],
    ECONNRESET: ['connection reset by peer', true],
    EHOSTUNREACH: ['host unreachable', true],
    ENETUNREACH: ['network unreachable', true],
    ENOTFOUND: ['address not found (DNS)', false],
    EAI_AGAIN: ['address lookup failed (DNS, temporary)', true],
  }
  const known = inner?.code ? byCode[inner.code] : undefined
  if (known) return { cause: where + known[0], retry: known[1] }
  if (/open failure|connection refused/i.test(msg))
    return { cause: `${where}cannot reach the target from the jump host: ${msg}`, retry: true }
  if (/cannot parse privatekey|passphrase/i.test(msg))
    return { cause: `${where}unusable key (${e?.auth}): ${msg}`, retry: false }
  return { cause: where + msg, retry: true }
}
