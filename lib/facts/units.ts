/**
 * Unit facts: the command whose two lines say whether a systemd unit is enabled and whether it is
 * active (`systemctl is-enabled`, then `systemctl is-active`). The service task reads it with
 * parseServiceState; batched probes answer it for many units with one call of each.
 */
import { sh } from '../connection/quote.ts'

/** `systemctl is-enabled UNIT; systemctl is-active UNIT`, errors dropped, always exiting 0. */
export function unitStateCommand(unit: string): string {
  return sh`systemctl is-enabled ${unit} 2>/dev/null; systemctl is-active ${unit} 2>/dev/null; true`
}
