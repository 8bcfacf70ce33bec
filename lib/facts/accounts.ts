/**
 * Account facts: the commands that print a group's and a user's entries as the name service answers them
 * (`getent group NAME`; `getent passwd NAME && id -nG NAME`, the user's entry and its group names). The
 * group and user tasks read them; batched probes answer them from /etc/group and /etc/passwd without a
 * process where that is provably the same answer (lib/facts/probes.ts), else by running the command.
 */
import { sh } from '../connection/quote.ts'

/** `getent group NAME`: the group's line, exit 2 when there is none. */
export function groupLookupCommand(name: string): string {
  return sh`getent group ${name}`
}

/** `getent passwd NAME && id -nG NAME`: the user's passwd line, then its group names on one line. */
export function userLookupCommand(name: string): string {
  return sh`getent passwd ${name} && id -nG ${name}`
}
