/**
 * Unit facts: the command whose two lines say whether a systemd unit is enabled and whether it is
 * active (`systemctl is-enabled`, then `systemctl is-active`), and its one reading (`unitStateWords`), which
 * the service task's parseServiceState and `isActiveState` use; batched probes answer it for many units
 * with one call of each.
 */
import { sh } from '../connection/quote.ts'

/**
 * The states `systemctl is-active -q` exits 0 for: active and reloading (systemd 252, Debian 12), refreshing
 * too from systemd 256 on (never printed by 252).
 */
const IS_ACTIVE_STATES = new Set(['active', 'reloading', 'refreshing'])

/**
 * The unit state command's two words: its last line is always is-active's (is-active prints one state per
 * unit), the one before it is-enabled's; is-enabled prints nothing for a unit it does not know (empty).
 */
export function unitStateWords(stdout: string): { enabled: string; active: string } {
  const lines = stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
  return { enabled: lines.length > 1 ? lines[0]! : '', active: lines.at(-1) ?? '' }
}

/** What `systemctl is-active -q UNIT` answers (exit 0), read from the unit state command's output. */
export function isActiveState(stdout: string): boolean {
  return IS_ACTIVE_STATES.has(unitStateWords(stdout).active)
}

/** `systemctl is-enabled UNIT; systemctl is-active UNIT`, errors dropped, always exiting 0. */
export function unitStateCommand(unit: string): string {
  return sh`systemctl is-enabled ${unit} 2>/dev/null; systemctl is-active ${unit} 2>/dev/null; true`
}
