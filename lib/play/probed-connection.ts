/**
 * The connection a run of tasks (HostRun.doAll) sees: it answers the tasks' declared probes from one
 * batched round trip, and passes everything else to the real connection. Anything that may write
 * (a command that is not a gathered probe, a put, a held command) drops every gathered answer first,
 * so a task after a write asks its probes again, live: a write never hides behind an older answer.
 */
import type { Connection, HeldCommand, Probe, ProbeAnswer, PutOptions, RunOptions, RunResult } from '../types.ts'
import { probeKey } from '../facts/probes.ts'

/**
 * Probes run with these options at most (as pathState's `check: true`, a command probe's `stdin` as text); any
 * other option is asked live.
 */
const PROBE_OPTIONS = new Set(['check', 'stdin'])

export class ProbedConnection implements Connection {
  private answers = new Map<string, ProbeAnswer>()
  private dropped = false
  /** Probes answered from the batch, for tests and benchmarks. */
  served = 0

  private constructor(private readonly conn: Connection) {}

  /**
   * Gather the answers of these probes in one round trip (when the connection can batch, and there are
   * probes). A failing batch is no failure: each check then asks its own probes. A lost host is.
   * `known`: answers read earlier that still hold (the run's early answers while it is settled): those
   * probes are answered from them, only the others are asked.
   */
  static async gather(
    conn: Connection,
    probes: Probe[],
    isLost: (err: unknown) => boolean,
    known?: ReadonlyMap<string, ProbeAnswer>,
  ): Promise<ProbedConnection> {
    const probed = new ProbedConnection(conn)
    const unique = [...new Map(probes.map((p) => [probeKey(p), p])).values()].filter((p) => {
      const answer = known?.get(probeKey(p))
      if (answer) probed.answers.set(probeKey(p), answer)
      return !answer
    })
    if (!conn.runProbes || unique.length === 0) return probed
    try {
      const answers = await conn.runProbes(unique)
      unique.forEach((p, i) => probed.answers.set(probeKey(p), answers[i]!))
    } catch (err) {
      if (isLost(err)) throw err
    }
    return probed
  }

  /** The answers of these probes by probeKey, read in one round trip; empty when the batch fails or cannot be made. */
  static async answersOf(conn: Connection, probes: Probe[]): Promise<Map<string, ProbeAnswer>> {
    const probed = await ProbedConnection.gather(conn, probes, () => false)
    return probed.answers
  }

  get host(): string {
    return this.conn.host
  }

  get commandCount(): number {
    return this.conn.commandCount
  }

  /** Whether gathered answers were dropped (the host may have changed since they were read). */
  get stale(): boolean {
    return this.dropped
  }

  /** Forget every gathered answer: the host may have changed (also through another connection). */
  invalidate(): void {
    if (this.answers.size > 0) this.dropped = true
    this.answers.clear()
  }

  async run(command: string | string[], options: RunOptions = {}): Promise<RunResult> {
    const plain = Object.entries(options).every(([k, v]) => v === undefined || PROBE_OPTIONS.has(k))
    const stdin = options.stdin
    const asked = typeof command === 'string' && plain && (stdin === undefined || typeof stdin === 'string')
    const answer = asked ? this.answers.get(probeKey({ kind: 'run', command, stdin })) : undefined
    // A failed probe run with `check` is asked again live for its real error (the batch drops stderr).
    if (answer && !(options.check && answer.code !== 0)) {
      this.served++
      return { code: answer.code, stdout: answer.stdout.toString('utf8'), stderr: '', durationMs: 0 }
    }
    if (!answer) this.invalidate()
    return this.conn.run(command, options)
  }

  async get(remotePath: string): Promise<Buffer> {
    const answer = this.answers.get(probeKey({ kind: 'read', path: remotePath }))
    if (answer && answer.code === 0) {
      this.served++
      return answer.stdout
    }
    return this.conn.get(remotePath)
  }

  async put(remotePath: string, content: string | Buffer, options?: PutOptions): Promise<void> {
    this.invalidate()
    return this.conn.put(remotePath, content, options)
  }

  async hold(command: string | string[], options?: RunOptions): Promise<HeldCommand> {
    this.invalidate()
    return this.conn.hold(command, options)
  }

  async close(): Promise<void> {
    this.invalidate()
    return this.conn.close()
  }
}
