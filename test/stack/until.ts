/**
 * The lab tests' way to wait for a condition, on the engine's one bounded poll (lib/tasks/wait.ts
 * `waitUntil`): poll `fn` every `intervalMs` until it returns a truthy value, at most `timeoutMs`,
 * and say what was awaited (with the last error) when it never came.
 */
import { waitUntil } from '../../lib/tasks/wait.ts'

export function until<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  intervalMs = 250,
): Promise<T> {
  const probe = async () => (await fn()) || undefined
  return waitUntil(what, probe, { timeoutMs, intervalMs })
}
