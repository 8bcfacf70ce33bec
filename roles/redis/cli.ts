/**
 * Talking to Redis and Sentinel from a role: `redis-cli` runs on the host, the
 * password travels on standard input (never on a command line, so neither `ps`
 * nor a failed task's message shows it), and replies come back as plain lines.
 * The script runs through the host's privileged session like the role's other commands (its
 * environment, where the password sits, is then root's alone): one message on the open session
 * instead of a new SSH channel and a login shell per call. A check's read is a probe (`redisReadProbe`):
 * gathered with the other tasks' in one round trip, its password kept in the probe plan by name only.
 * Pure builders and parsers are exported for the unit tests.
 */
import type { Connection, HostRun, Probe, Vars } from '../../lib/types.ts'
import { quote, quoteArgs } from '../../lib/connection/quote.ts'
import { tlsOn } from '../stack.ts'
import { tlsFiles } from '../tls.ts'

export interface Endpoint {
  host: string
  port: number
  password: string
  /** redis-cli's TLS options (`redisTlsArgs`); none for a plaintext Redis. */
  tls?: string[]
}

/**
 * redis-cli's options to reach this stack's Redis and Sentinels: `--tls --cacert <tls_dir>/ca.crt` when
 * `tlsOn(vars, 'redis')` (the CA certificate every host has, readable by any user), none otherwise.
 * The one place these flags are made: roles, day-2 readers, the audit, the snapshot script and the lab
 * checks all take them from here.
 */
export function redisTlsArgs(vars: Vars): string[] {
  return tlsOn(vars, 'redis') ? ['--tls', '--cacert', tlsFiles(vars).ca] : []
}

/** The endpoint of a Redis or Sentinel at `host:port`, with the TLS options the host's variables ask for. */
export function cliEndpoint(vars: Vars, host: string, port: number, password: string): Endpoint {
  return { host, port, password, tls: redisTlsArgs(vars) }
}

/** One word for redis-cli's own line parser (sdssplitargs): double-quoted, escaped. */
export function cliWord(word: string | number): string {
  return `"${String(word).replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** A `sh` script that runs each command in its own redis-cli, replies separated by a marker line. */
export function cliScript(ep: Endpoint, commands: (string | number)[][]): string {
  const lines = [`REDISCLI_AUTH=${quote(ep.password)}`, 'export REDISCLI_AUTH']
  for (const [i, cmd] of commands.entries()) {
    if (i > 0) lines.push(`echo ${MARKER}`)
    lines.push(
      `redis-cli --no-auth-warning --raw ${tlsWords(ep)}-h ${quote(ep.host)} -p ${ep.port} <<'HASTACK_EOF' 2>&1`,
      cmd.map(cliWord).join(' '),
      'HASTACK_EOF',
    )
  }
  return lines.join('\n') + '\n'
}

const MARKER = '---hastack-next---'

/** The endpoint's TLS options as shell words followed by a blank, or nothing. */
const tlsWords = (ep: Endpoint) => (ep.tls?.length ? `${quoteArgs(ep.tls)} ` : '')

/** Split the script's output into one reply (list of lines) per command. */
export function splitReplies(stdout: string): string[][] {
  return stdout.split(`${MARKER}\n`).map((part) =>
    part
      .replace(/\n$/, '')
      .split('\n')
      .filter((l, i, a) => !(a.length === 1 && l === '')),
  )
}

/** Whether a reply is an error or a failed connection. */
export function isError(reply: string[]): boolean {
  const first = reply[0] ?? ''
  return (
    /^(ERR|NOAUTH|WRONGPASS|WRONGTYPE|LOADING|MASTERDOWN|READONLY|NOPERM|Could not connect|Error:)/.test(first) ||
    first.startsWith('(error)')
  )
}

/**
 * Run commands against Redis or Sentinel through redis-cli on the host (read-only
 * use runs in check mode too: the caller decides). Returns one reply per command;
 * `undefined` when redis-cli is not installed yet.
 */
export async function redisCli(
  h: HostRun,
  ep: Endpoint,
  commands: (string | number)[][],
  timeoutMs = 15_000,
): Promise<string[][] | undefined> {
  const result = await h.query(['sh', '-s'], { stdin: guardedScript(ep, commands), timeoutMs })
  return guardedReplies(result.stdout)
}

/** cliScript, answering `HASTACK_NO_CLI` alone where redis-cli is not installed. */
const guardedScript = (ep: Endpoint, commands: (string | number)[][]) =>
  `command -v redis-cli >/dev/null 2>&1 || { echo HASTACK_NO_CLI; exit 0; }\n${cliScript(ep, commands)}`

const guardedReplies = (stdout: string) => (stdout.startsWith('HASTACK_NO_CLI') ? undefined : splitReplies(stdout))

/** A read's bound: its probe runs with no other (the batch's commands have none of their own). */
const READ_COMMAND = 'timeout 15 sh -s'

/** The probe of a check's read-only redis-cli commands (`redisRead` asks the same). */
export function redisReadProbe(ep: Endpoint, commands: (string | number)[][]): Probe {
  return { kind: 'run', command: READ_COMMAND, stdin: guardedScript(ep, commands) }
}

/**
 * Read-only commands in a task's check, through the task's connection: answered from the probes gathered
 * with the other tasks' when the task declares `redisReadProbe` of the same, else asked now (at most 15 s).
 * One reply per command; undefined when redis-cli is not installed yet.
 */
export async function redisRead(
  conn: Connection,
  ep: Endpoint,
  commands: (string | number)[][],
): Promise<string[][] | undefined> {
  const result = await conn.run(READ_COMMAND, { stdin: guardedScript(ep, commands) })
  return guardedReplies(result.stdout)
}

/** `CONFIG GET a b ...` replies (name, value, name, value) as a map. */
export function pairs(reply: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i]!] = reply[i + 1]!
  return out
}

/** `INFO` text as a map of its key:value lines. */
export function parseInfo(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of lines) {
    const at = line.indexOf(':')
    if (at > 0 && !line.startsWith('#')) out[line.slice(0, at)] = line.slice(at + 1).trim()
  }
  return out
}
