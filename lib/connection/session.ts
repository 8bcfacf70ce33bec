/**
 * The local half of the persistent privileged session: one exec channel running
 * `sudo -n -H -- perl -e HELPER_BOOT` (see session-helper.ts; the helper's program follows on its stdin)
 * that runs become commands
 * one at a time, so a run pays one channel open and one sudo start per host instead
 * of one per command. SshConnection decides when to use it; this class only speaks
 * to the channel.
 *
 * A session ends when its channel closes (helper killed, connection dropped, local
 * deadline passed): the request in flight is then rejected with a SessionLost and
 * never re-sent, because the command may already have had effects.
 */
import { quoteArgs } from './quote.ts'
import { HELPER_BOOT, ResponseReader, encodeLockRequest, encodeRequest, helperProgramInput } from './session-helper.ts'
import type { LockRequest } from '../types.ts'

/** The parts of an ssh2 exec channel the session uses. */
export interface SessionChannel {
  on(event: 'data', cb: (chunk: Buffer) => void): this
  on(event: 'close', cb: () => void): this
  stderr: { on(event: 'data', cb: (chunk: Buffer) => void): void }
  write(data: string | Buffer): boolean
  close(): void
}

/** Opens an exec channel running a command line (SshConnection's client.exec, promisified). */
export type OpenChannel = (line: string) => Promise<SessionChannel>

/** The command line that starts a session. */
export const SESSION_COMMAND = quoteArgs(['sudo', '-n', '-H', '--', 'perl', '-e', HELPER_BOOT])

/** How long sudo and perl may take to print the ready line. */
const START_TIMEOUT_MS = 30_000

/** The session's channel ended before it answered (never retried: the command may have run). */
export class SessionLost extends Error {}

/** The session could not start (no passwordless sudo, no perl, ...): the exec path takes over. */
export class SessionRefused extends Error {}

export interface SessionResult {
  code: number
  stdout: Buffer
  stderr: Buffer
  /** The local deadline passed and the session was closed to stop the command. */
  killedLocally: boolean
}

interface InFlight {
  id: number
  resolve: (r: SessionResult) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
  timedOut: boolean
}

export class PrivilegedSession {
  /** True while a request is in flight; SshConnection claims the session by setting it. */
  busy = false
  private nextId = 1
  private current: InFlight | undefined
  private closed = false
  private stderr = ''

  private constructor(
    private readonly channel: SessionChannel,
    private readonly reader: ResponseReader,
    private readonly onEnd: () => void,
  ) {}

  /** Whether the channel is still open. */
  get alive(): boolean {
    return !this.closed
  }

  /**
   * Start a session and wait for the helper's ready line. Rejects with SessionRefused when sudo or perl
   * refuse (the channel closes first); a failure to open the channel itself is passed on as is.
   * `onEnd` is called once when the channel closes.
   */
  static async open(openChannel: OpenChannel, onEnd: () => void): Promise<PrivilegedSession> {
    const channel = await openChannel(SESSION_COMMAND)
    // The program goes ahead of any request; a sudo that refuses never reads it.
    channel.write(helperProgramInput())
    const reader = new ResponseReader()
    const session = new PrivilegedSession(channel, reader, onEnd)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new SessionRefused(`no answer within ${START_TIMEOUT_MS / 1000}s`))
        channel.close()
      }, START_TIMEOUT_MS)
      channel.stderr.on('data', (c) => (session.stderr = (session.stderr + c.toString('utf8')).slice(-2000)))
      channel.on('data', (chunk) => {
        try {
          const wasStarted = reader.started
          const responses = reader.push(chunk)
          if (!wasStarted && reader.started) {
            clearTimeout(timer)
            resolve()
          }
          for (const r of responses) session.answer(r.id, r)
        } catch (err) {
          clearTimeout(timer)
          const why = err instanceof Error ? err.message : String(err)
          reject(new SessionRefused(why))
          session.end(why)
          channel.close()
        }
      })
      channel.on('close', () => {
        clearTimeout(timer)
        reject(new SessionRefused(session.stderr.trim() || 'the session channel closed at start'))
        session.end(session.stderr.trim() || 'channel closed')
      })
    })
    return session
  }

  /** Run one argv with its stdin. The caller must hold `busy`; a deadline closes the whole session. */
  run(argv: readonly string[], stdin: Buffer, deadlineMs: number): Promise<SessionResult> {
    return this.request((id) => encodeRequest(id, argv, stdin), deadlineMs)
  }

  /**
   * Take the host lock in the helper, kept until the session ends: exit 0 and `locked`, or LOCK_HELD and
   * `held <holder>` (see session-helper.ts). The caller must hold `busy`.
   */
  lock(request: LockRequest, deadlineMs: number): Promise<SessionResult> {
    return this.request((id) => encodeLockRequest(id, request), deadlineMs)
  }

  private request(encode: (id: number) => Buffer, deadlineMs: number): Promise<SessionResult> {
    if (this.closed) return Promise.reject(new SessionLost('the privileged session has ended'))
    if (this.current) return Promise.reject(new Error('the privileged session is already busy'))
    const id = this.nextId++
    const request = encode(id)
    return new Promise<SessionResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.current) this.current.timedOut = true
        this.channel.close()
      }, deadlineMs)
      this.current = { id, resolve, reject, timer, timedOut: false }
      this.channel.write(request)
    })
  }

  /** Close the channel (the helper reads EOF and exits). */
  close(): void {
    if (!this.closed) this.channel.close()
  }

  private answer(id: number, r: { code: number; stdout: Buffer; stderr: Buffer }): void {
    const current = this.current
    if (!current || current.id !== id) {
      this.end(`the session answered request ${id}, which is not in flight`)
      this.channel.close()
      return
    }
    clearTimeout(current.timer)
    this.current = undefined
    current.resolve({ ...r, killedLocally: false })
  }

  private end(why: string): void {
    if (this.closed) return
    this.closed = true
    const current = this.current
    this.current = undefined
    if (current) {
      clearTimeout(current.timer)
      const empty = Buffer.alloc(0)
      if (current.timedOut) current.resolve({ code: 124, stdout: empty, stderr: empty, killedLocally: true })
      else current.reject(new SessionLost(`the privileged session ended during the command (${why})`))
    }
    this.onEnd()
  }
}
