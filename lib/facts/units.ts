/**
 * Unit facts: the command whose two lines say whether a systemd unit is enabled and whether it is
 * active (`systemctl is-enabled`, then `systemctl is-active`). The service task reads it with
 * parseServiceState; batched probes answer it for many units with one call of each.
 */
import { sh } from '../connection/quote.ts'

/**
 * The states `systemctl is-active -q` exits 0 for: active and reloading (systemd 252, Debian 12), refreshing
 * too from systemd 256 on (never printed by 252).
 */
const IS_ACTIVE_STATES = new Set(['active', 'reloading', 'refreshing'])

/**
 * What `systemctl is-active -q UNIT` answers (exit 0), read from the unit state command's output: its last
 * line is always is-active's (is-active prints one state per unit; is-enabled prints nothing for a unit it
 * does not know, and no is-enabled state is an is-active one).
 */
export function isActiveState(stdout: string): boolean {
  const lines = stdout.split('\n').filter((line) => line !== '')
  return IS_ACTIVE_STATES.has(lines.at(-1) ?? '')
}

/** `systemctl is-enabled UNIT; systemctl is-active UNIT`, errors dropped, always exiting 0. */
export function unitStateCommand(unit: string): string {
  return sh`systemctl is-enabled ${unit} 2>/dev/null; systemctl is-active ${unit} 2>/dev/null; true`
}
