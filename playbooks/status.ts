#!/usr/bin/env -S npx zx
/**
 * One screen for the whole stack, read over SSH from the hosts (one connection per host, in
 * parallel): Patroni members (role, state, lag, timeline), etcd members and health, the Redis primary
 * and replicas, each Sentinel's view, HAProxy's backends, the VIP holder, the last backup's age and
 * the alerts firing. Coloured on a terminal, plain when piped; `--json FILE` (or `-`) writes it as JSON.
 * Exit 0 when healthy, 2 when something is not (no leader, a member not streaming, Sentinels
 * disagreeing, a backend not routing to the primary), 1 on bad input.
 * `npx zx playbooks/status.ts -i inventory/lab-small.yml [--json -]`
 */
import { day2 } from './day2/fleet.ts'
import { stackProblems } from './day2/health.ts'
import { componentMembers, limitsOf, readStack } from './day2/stack-state.ts'
import { statusReport, statusText } from './day2/status-report.ts'

await day2({
  name: 'status',
  script: import.meta.url,
  changes: false,
  options: {},
  async run(fleet, values) {
    const state = await readStack(fleet)
    const report = statusReport(state, stackProblems(state, componentMembers(fleet), limitsOf(fleet)))
    const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR
    if (values.json !== '-') fleet.say(statusText(report, colour))
    return { code: report.healthy ? 0 : 2, report }
  },
})
