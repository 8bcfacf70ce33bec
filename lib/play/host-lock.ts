/**
 * The lock on each host, so that two control machines never converge one host
 * at once: `flock -n <state dir>/run.lock` (the host's `hastack_state_dir`,
 * /var/lib/hastack by default) held for the whole run by the host's privileged
 * session (Connection.holdLock), or where there is none by a long-lived command;
 * released when the session or that command's channel ends with the connection
 * (a crashed controller leaves no lock). The holder is
 * described in `<state dir>/run.holder` for the message of the next run that
 * finds the lock taken. The same run reaching one machine under two
 * inventory names does not conflict with itself.
 */
import type { Connection, HeldCommand } from '../types.ts'
import { quote } from '../connection/quote.ts'
import { LOCK_HELD } from '../connection/session-helper.ts'

/** The lock and its holder's description, in the host's engine state directory. */
export const hostLockFiles = (stateDir: string) => ({ lock: `${stateDir}/run.lock`, holder: `${stateDir}/run.holder` })
/** Who takes the lock: a run id, unique per run, and a description for the operator. */
export interface LockHolder {
  runId: string
  description: string
}

/** What the holder file says of a run. */
const holderLine = (holder: LockHolder) => `run ${holder.runId}: ${holder.description}`

/**
 * The script run as root on the host: print `locked` and keep the lock while input stays open,
 * or print `held <holder>` and exit when another run has it.
 */
export function hostLockScript(holder: LockHolder, stateDir: string): string {
  const line = quote(holderLine(holder))
  const files = hostLockFiles(stateDir)
  const lock = quote(files.lock)
  const who = quote(files.holder)
  return [
    `mkdir -p -m 0700 ${quote(stateDir)}`,
    `flock -n -E ${LOCK_HELD} ${lock} sh -c ` +
      `'printf "%s\\n" "$1" > "$2" && echo locked && exec cat > /dev/null' sh ${line} ${who}`,
    'rc=$?',
    // The winner writes its name just after taking the lock: give it that moment.
    `if [ $rc -eq ${LOCK_HELD} ]; then sleep 0.3; printf 'held %s\\n' "$(cat ${who} 2>/dev/null)"; fi`,
    'exit $rc',
  ].join('\n')
}

/**
 * Take the host's lock for this run; throws naming the holder when another run has it. The privileged session
 * holds it where there is one (no sudo and channel of its own); else a held command does.
 */
export async function takeHostLock(conn: Connection, holder: LockHolder, stateDir: string): Promise<HeldCommand> {
  const files = hostLockFiles(stateDir)
  const line = holderLine(holder)
  const inSession = await conn.holdLock?.({ dir: stateDir, lock: files.lock, holder: files.holder, line })
  const held = inSession ?? (await conn.hold(hostLockScript(holder, stateDir)))
  if (held.firstLine === 'locked') return held
  await held.release()
  const other = held.firstLine.replace(/^held /, '')
  if (other.startsWith(`run ${holder.runId}:`)) return held // this run, reaching the machine under another name
  throw new Error(
    `${conn.host} is being converged by another run (${other || 'holder unknown'}); ` +
      `wait for it to end, or stop it (the lock is ${hostLockFiles(stateDir).lock} on the host)`,
  )
}
