#!/usr/bin/env -S npx zx
/**
 * Restart the stack one member at a time, each step gated on the health of the whole stack: etcd
 * (followers, then the leader), PostgreSQL (replicas, a switchover to the healthiest replica, the
 * old primary), Redis (replicas, SENTINEL FAILOVER, the old primary), the Sentinels, the app (each
 * host drained at HAProxy first), HAProxy (the VIP moved away first, a hitless reload). `--reboot`
 * reboots whole hosts and `--upgrade` applies their pending minor Debian updates, one host at a
 * time, each emptied first (primaries switched away, the VIP moved, the app drained). Refuses to
 * start (exit 2, nothing touched) when the stack is not healthy and says why; stops (exit 2) at the
 * first member that does not come back healthy within --timeout and touches nothing further.
 * `--tags` picks components, `--limit` hosts, `--plan` prints the steps only.
 * `npx zx playbooks/rolling-restart.ts -i inventory/lab-small.yml [--tags postgres,redis] [--limit node2]`
 * `npx zx playbooks/rolling-restart.ts -i inventory/lab-small.yml --reboot|--upgrade [--limit node3]`
 */
import { InputError } from '../lib/types.ts'
import { day2, secondsOption } from './day2/fleet.ts'
import { COMPONENTS } from './day2/health.ts'
import { chosenComponents, rollingRestart } from './day2/rolling.ts'

await day2({
  name: 'rolling-restart',
  script: import.meta.url,
  changes: true,
  options: {
    limit: { type: 'string', short: 'l', valueName: 'PATTERN', description: 'only restart these hosts (a, a:b, a:!b)' },
    tags: { type: 'string', short: 't', multiple: true, valueName: 'T1,T2', description: COMPONENTS.join(',') },
    timeout: { type: 'number', valueName: 'SECONDS', description: 'how long each step may take to heal (default 180)' },
    plan: { type: 'boolean', description: 'print the steps in order and stop (restarts nothing)' },
    reboot: { type: 'boolean', description: 'reboot the hosts one at a time instead of restarting services' },
    upgrade: { type: 'boolean', description: 'apply pending minor Debian updates host by host, then restart' },
  },
  validate(values, inventory) {
    if (values.reboot && values.upgrade) throw new InputError('--reboot and --upgrade: choose one')
    chosenComponents(values.tags as string[] | undefined)
    if (values.limit !== undefined) inventory.select(String(values.limit))
    secondsOption(values, 'timeout', 180)
  },
  async run(fleet, values) {
    const components = chosenComponents(values.tags as string[] | undefined)
    const allowed = new Set(fleet.inventory.select(values.limit === undefined ? 'all' : String(values.limit)))
    const timeoutMs = secondsOption(values, 'timeout', 180) * 1000
    const action = values.reboot ? 'reboot' : values.upgrade ? 'upgrade' : undefined
    const plan = Boolean(values.plan)
    const report = await rollingRestart(fleet, components, (h) => allowed.has(h), timeoutMs, plan, action)
    return { code: report.refused || report.stopped ? 2 : 0, report }
  },
})
