#!/usr/bin/env -S npx zx
/**
 * A planned change of primary: `--component postgres` (Patroni switchover) or `redis` (SENTINEL
 * FAILOVER; with --to, the other replicas' priorities keep them from winning, restored after).
 * Refused (exit 2, nothing touched) when the stack is unhealthy or the target is not a healthy
 * replica within the lag limit (`patroni_maximum_lag_on_failover` bytes, `redis_min_replicas_max_lag`
 * seconds). Waits (bounded by --timeout) until the new primary is routed to by HAProxy, and prints
 * the write pause a writer through HAProxy saw, writing every 100 ms during the switch.
 * `npx zx playbooks/switchover.ts -i inventory/lab-small.yml --component postgres [--to node2]`
 */
import { InputError } from '../lib/types.ts'
import { day2, secondsOption } from './day2/fleet.ts'
import { switchover } from './day2/switch.ts'

await day2({
  name: 'switchover',
  script: import.meta.url,
  changes: true,
  options: {
    component: { type: 'string', valueName: 'postgres|redis', description: 'whose primary changes (required)' },
    to: { type: 'string', valueName: 'HOST', description: 'the replica to promote (default: the healthiest)' },
    timeout: { type: 'number', valueName: 'SECONDS', description: 'how long the switch may take (default 120)' },
  },
  validate(values, inventory) {
    if (values.component !== 'postgres' && values.component !== 'redis')
      throw new InputError('--component must be postgres or redis')
    if (values.to !== undefined && !inventory.hosts.has(String(values.to)))
      throw new InputError(`--to ${values.to}: no such host in the inventory`)
    secondsOption(values, 'timeout', 120)
  },
  async run(fleet, values) {
    const component = values.component as 'postgres' | 'redis'
    const timeoutMs = secondsOption(values, 'timeout', 120) * 1000
    const report = await switchover(fleet, component, values.to as string | undefined, timeoutMs)
    return { code: report.refused ? 2 : 0, report }
  },
})
