/**
 * Batched probes: the read-only questions of many tasks' checks (path states, package and unit states,
 * file contents) asked in one remote shell script, one round trip, as pyinfra batches its facts. Each
 * probe's answer is one line, `CODE BASE64`, so any output (trailing newlines included) comes back
 * byte for byte. Reads larger than PROBE_READ_MAX_BYTES, and every failing read, answer non-zero: the
 * task then reads live and sees the real error.
 */
import type { Probe, ProbeAnswer } from '../types.ts'
import { quote } from '../connection/quote.ts'

/** Files larger than this are not read by a batch. */
export const PROBE_READ_MAX_BYTES = 1024 * 1024

/**
 * The shell functions of a batch: a command runs in a subshell with its stderr dropped; the trailing
 * `.` keeps the command's trailing newlines through the command substitution.
 */
const PROBE_FUNCTIONS = [
  'hastack_run() {',
  '  o=$( (eval "$1") 2>/dev/null; s=$?; printf .; exit $s); c=$?',
  `  printf '%s %s\\n' "$c" "$(printf %s "\${o%.}" | base64 -w0)"`,
  '}',
  'hastack_read() {',
  `  if [ -f "$1" ] && [ "$(stat -L -c %s -- "$1" 2>/dev/null || echo x)" -le ${PROBE_READ_MAX_BYTES} ] 2>/dev/null &&` +
    ' b=$(base64 -w0 -- "$1" 2>/dev/null); then',
  `    printf '0 %s\\n' "$b"`,
  '  else echo 1; fi',
  '}',
].join('\n')

/** The script that answers these probes, one line each, in order. */
export function probeScript(probes: readonly Probe[]): string {
  const calls = probes.map((p) =>
    p.kind === 'run' ? `hastack_run ${quote(p.command)}` : `hastack_read ${quote(p.path)}`,
  )
  return [PROBE_FUNCTIONS, ...calls].join('\n')
}

/** Parse a batch's output into one answer per probe; throws when it does not hold exactly `count` answers. */
export function parseProbeAnswers(stdout: string, count: number): ProbeAnswer[] {
  const lines = stdout.split('\n')
  if (lines.at(-1) === '') lines.pop()
  if (lines.length !== count) throw new Error(`probe batch: expected ${count} answers, got ${lines.length}`)
  return lines.map((line, i) => {
    const m = /^(\d+)(?: ([A-Za-z0-9+/=]*))?$/.exec(line)
    if (!m) throw new Error(`probe batch: answer ${i + 1} is malformed`)
    return { code: Number(m[1]), stdout: Buffer.from(m[2] ?? '', 'base64') }
  })
}

/** The key under which a probe's answer is kept: equal probes share one answer. */
export function probeKey(probe: Probe): string {
  return probe.kind === 'run' ? `run\u0000${probe.command}` : `read\u0000${probe.path}`
}
