/**
 * Package facts: the command that prints the dpkg state of some packages, one `NAME STATUS` line each
 * (`installed` for an installed one; a package dpkg does not know prints nothing). The apt task reads
 * it with parseInstalled; batched probes answer it for many tasks with one dpkg-query.
 */
import { quoteArgs } from '../connection/quote.ts'

/** The dpkg state of these packages, always exiting 0. */
export function packageStateCommand(names: readonly string[]): string {
  return `dpkg-query -W -f '\${Package} \${db:Status-Status}\\n' ${quoteArgs([...names])} 2>/dev/null; true`
}
