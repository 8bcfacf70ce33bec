/**
 * A lab suite's fail-fast gate. A suite's checks run in order against one stack; when one of them leaves
 * the stack broken (not healthy within its bound), every later check fails at once with a message naming
 * that first check, what was wrong and where its diagnosis is, instead of each waiting for its own
 * timeouts on a stack that will not recover by itself.
 */

/** The first time the stack was found broken. */
export interface Breakage {
  /** The check during which (or right after which) the stack was found broken. */
  check: string
  /** What was wrong. */
  reason: string
  /** The file holding the diagnosis (members' views, logs), when one was written. */
  diagnosis?: string
}

/** What the gate needs of a tap test: to fail it, and whether it passes so far. */
export interface GatedTest {
  fail(message: string): unknown
  passing(): boolean
}

export interface GateOptions {
  /** The suite's name in messages, e.g. "PostgreSQL suite". */
  suite: string
  /**
   * Asked after a check failed (and did not close the gate itself): what is wrong with the stack, within
   * the probe's own bound, or undefined when it is healthy. A probe that throws counts as broken.
   */
  probe?: () => Promise<Omit<Breakage, 'check'> | undefined>
}

export class SuiteGate {
  #broken?: Breakage
  #current = '(before the first check)'
  #startedAt = Date.now()

  constructor(private readonly options: GateOptions) {}

  /** The check running now (the last one started), and when it started (ms since the epoch). */
  get current(): { name: string; startedAt: number } {
    return { name: this.#current, startedAt: this.#startedAt }
  }

  /** The first breakage, once the gate is closed. */
  get broken(): Breakage | undefined {
    return this.#broken
  }

  /** Record that the stack is broken during the current check (the first breakage is kept: later ones follow). */
  close(reason: string, diagnosis?: string): void {
    this.#broken ??= { check: this.#current, reason, ...(diagnosis ? { diagnosis } : {}) }
  }

  /** The message a check fails with while the gate is closed; undefined while it is open. */
  refusal(): string | undefined {
    const b = this.#broken
    if (!b) return undefined
    const where = b.diagnosis ? `; diagnosis: ${b.diagnosis}` : ''
    return `not run: the ${this.options.suite} left its stack broken in the check "${b.check}" (${b.reason}${where})`
  }

  /**
   * A check's body behind the gate: it fails at once while the gate is closed; otherwise it runs, and when
   * it fails (an assertion or a throw) the probe decides whether the stack is left broken.
   */
  check<T extends GatedTest>(name: string, body: (t: T) => Promise<void>): (t: T) => Promise<void> {
    return async (t) => {
      const refusal = this.refusal()
      if (refusal) {
        t.fail(refusal)
        return
      }
      this.#current = name
      this.#startedAt = Date.now()
      try {
        await body(t)
      } catch (e) {
        await this.#probeAfterFailure()
        throw e
      }
      if (!t.passing()) await this.#probeAfterFailure()
    }
  }

  async #probeAfterFailure(): Promise<void> {
    if (this.#broken || !this.options.probe) return
    const found: Omit<Breakage, 'check'> | undefined = await this.options
      .probe()
      .catch((e: Error) => ({ reason: `the health probe failed: ${e.message}` }))
    if (found) this.close(found.reason, found.diagnosis)
  }
}
