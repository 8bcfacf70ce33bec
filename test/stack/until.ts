/**
 * The lab tests' one way to wait for a condition: poll it, bounded in count and
 * time, and say what was awaited (with the last error) when it never came.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Poll `fn` every `intervalMs` until it returns a truthy value, at most `timeoutMs`; that value. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await sleep(intervalMs)
  }
  throw new Error(`${what}: not reached within ${timeoutMs / 1000}s${last ? ` (${last})` : ''}`)
}
