/**
 * Running-kernel facts as guards: whether the running host name is NAME and whether a sysctl reads VALUE,
 * as the commands below answer them (exit 0 when so). Batched probes answer them from /proc/sys without a
 * process where that is provably the same answer (lib/facts/probes.ts), else by running the command.
 */
import { sh } from '../connection/quote.ts'

/** `test "$(hostname)" = NAME`: exit 0 when the running host name is NAME. */
export function hostnameIsCommand(name: string): string {
  return sh`test "$(hostname)" = ${name}`
}

/** `test "$(sysctl -n KEY)" = VALUE`: exit 0 when the running kernel's setting reads VALUE. */
export function sysctlIsCommand(key: string, value: string): string {
  return sh`test "$(sysctl -n ${key})" = ${value}`
}
