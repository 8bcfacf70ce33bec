/**
 * The one place where cwd, env, sudo and the remote timeout are applied to a
 * command, plus the scripts behind `put` and `get`. Pure functions: they only
 * build POSIX `sh` text, so they can be unit-tested without a host.
 *
 * A wrapped command looks like
 *   sudo -n -H -u postgres -- timeout --signal=KILL 300.000 sh -c 'cd -- /tmp || exit
 *   export PGDATA=/var/lib/x
 *   psql -c ...'
 * `sudo -n` fails at once instead of waiting for a password, and `timeout`
 * runs inside sudo so it can kill the whole command (its process group) as root.
 */
import type { PutOptions, RunOptions } from '../types.ts'
import { quote, quoteArgs } from './quote.ts'

/** Used when RunOptions.timeoutMs is absent. */
export const DEFAULT_TIMEOUT_MS = 300_000

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const MODE = /^[0-7]{3,4}$/

/** The command as the user wrote it: a string as is, an array quoted word by word. */
export function commandText(command: string | string[]): string {
  return typeof command === 'string' ? command : quoteArgs(command)
}

/** Whether the command runs through sudo: explicit option, else `user` implies it, else the host's become. */
export function usesSudo(options: RunOptions, become: boolean): boolean {
  if (options.sudo === false && options.user) {
    throw new TypeError(`RunOptions.user (${options.user}) needs sudo, but sudo is false`)
  }
  return options.sudo ?? (options.user ? true : become)
}

/** Build the full command line sent over SSH (read by the login shell, so POSIX only). */
export function wrapCommand(command: string | string[], options: RunOptions, become: boolean): string {
  const argv: string[] = []
  if (usesSudo(options, become)) {
    argv.push('sudo', '-n', '-H')
    if (options.user) argv.push('-u', options.user)
    argv.push('--')
  }
  return quoteArgs([...argv, ...timedArgv(command, options)])
}

/**
 * The argv a persistent privileged session (already root) runs for a sudo command: the same
 * `timeout ... sh -c` as {@link wrapCommand}, under `runuser -u USER --` when `user` is set
 * (like `sudo -H -u`, it sets HOME, USER and LOGNAME to the user's).
 */
export function sessionArgv(command: string | string[], options: RunOptions): string[] {
  const timed = timedArgv(command, options)
  return options.user ? ['runuser', '-u', options.user, '--', ...timed] : timed
}

/** `timeout --signal=KILL S sh -c SCRIPT`: cwd and env applied, killed with its process group at the deadline. */
function timedArgv(command: string | string[], options: RunOptions): string[] {
  const lines: string[] = []
  if (options.cwd) lines.push(`cd -- ${quote(options.cwd)} || exit`)
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!ENV_NAME.test(name)) throw new TypeError(`invalid environment variable name: ${JSON.stringify(name)}`)
    lines.push(`export ${name}=${quote(value)}`)
  }
  lines.push(commandText(command))
  const seconds = ((options.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000).toFixed(3)
  return ['timeout', '--signal=KILL', seconds, 'sh', '-c', lines.join('\n')]
}

/** What the host must have received before a put may replace anything. */
export interface PutPayload {
  bytes: number
  /** Lowercase hex sha256 of the content. */
  sha256: string
}

/**
 * The script behind `put`, atomic on the host: the content arrives on stdin in
 * a temp file next to the target (`.NAME.hastack-XXXXXX`), its length and
 * sha256 are checked (a dropped connection ends stdin early: the short file is
 * never renamed), mode and owner are set on the temp file, it is fsynced, the
 * optional validator runs on it (`%s` is the temp file), and only then is it
 * renamed over the target. A trap removes the temp file on every exit path
 * (failure, SIGHUP/SIGINT/SIGTERM/SIGPIPE); SIGKILL alone can leave it behind.
 * Without `mode`, an existing file keeps its mode and a new one gets 0644;
 * without owner/group, an existing file keeps its owner (when root) and a new
 * one belongs to the user running the script (root when becoming).
 */
export function putScript(path: string, payload: PutPayload, options: PutOptions = {}): string {
  if (!Number.isSafeInteger(payload.bytes) || payload.bytes < 0) {
    throw new TypeError(`invalid byte count: ${payload.bytes}`)
  }
  if (!/^[0-9a-f]{64}$/.test(payload.sha256)) throw new TypeError(`invalid sha256: ${JSON.stringify(payload.sha256)}`)
  const p = quote(path)
  const lines = [
    'set -e',
    'umask 077',
    `d=$(dirname -- ${p})`,
    `[ -d "$d" ] || { printf 'hastack put: directory %s does not exist\\n' "$d" >&2; exit 1; }`,
    `t=$(mktemp "$d/.$(basename -- ${p}).hastack-XXXXXX")`,
    `trap 'rm -f -- "$t"' EXIT`,
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM",
    'cat > "$t"',
    'n=$(wc -c < "$t")',
    `if [ "$n" -ne ${payload.bytes} ]; then`,
    `  printf 'hastack put: received %s of ${payload.bytes} bytes, %s left unchanged\\n' "$n" ${p} >&2; exit 1`,
    'fi',
    's=$(sha256sum < "$t")',
    `if [ "\${s%% *}" != ${payload.sha256} ]; then`,
    `  printf 'hastack put: content checksum mismatch, %s left unchanged\\n' ${p} >&2; exit 1`,
    'fi',
  ]
  if (options.mode !== undefined) {
    if (!MODE.test(options.mode))
      throw new TypeError(`invalid file mode: ${JSON.stringify(options.mode)} (want octal like 0644)`)
    lines.push(`chmod ${options.mode} "$t"`)
  } else {
    lines.push(`if [ -e ${p} ]; then chmod --reference=${p} "$t"; else chmod 0644 "$t"; fi`)
  }
  if (options.owner !== undefined || options.group !== undefined) {
    const spec = (options.owner ?? '') + (options.group !== undefined ? `:${options.group}` : '')
    lines.push(`chown -- ${quote(spec)} "$t"`)
  } else {
    lines.push(`if [ -e ${p} ] && [ "$(id -u)" = 0 ]; then chown --reference=${p} "$t"; fi`)
  }
  lines.push('sync -- "$t"')
  if (options.validate !== undefined) lines.push(...validateLines(path, options.validate))
  lines.push(`mv -f -- "$t" ${p}`, 'sync -- "$d" || true')
  return lines.join('\n')
}

/**
 * Run a validator on the temp file before the rename: `%s` (each occurrence)
 * becomes the temp file's path. Its output goes to stderr; failing leaves the
 * target untouched and the put fails with code 3.
 */
function validateLines(path: string, validate: string): string[] {
  if (!validate.includes('%s')) {
    throw new TypeError(`a validate command needs %s for the file to check: ${JSON.stringify(validate)}`)
  }
  if (/[\n\r\0]/.test(validate)) throw new TypeError(`a validate command must be one line: ${JSON.stringify(validate)}`)
  const command = validate.replaceAll('%s', '"$t"')
  const failed = `validation of the new ${path} failed (${validate}), the file is left unchanged`
  return [`if ! { ${command} ; } >&2; then printf '%s\\n' ${quote(`hastack put: ${failed}`)} >&2; exit 3; fi`]
}

/** The script behind `get`: the file's bytes on stdout, a clear message when absent. */
export function getScript(path: string): string {
  const p = quote(path)
  return `if [ ! -e ${p} ]; then printf 'hastack get: %s does not exist\\n' ${p} >&2; exit 1; fi\ncat -- ${p}`
}
