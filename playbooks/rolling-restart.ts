#!/usr/bin/env -S npx zx
/**
 * Restart the stack one member at a time, each step gated on the health of the whole stack: etcd
 * (followers, then the leader), PostgreSQL (replicas, a switchover to the healthiest replica, the
 * old primary), Redis (replicas, SENTINEL FAILOVER, the old primary), the Sentinels, HAProxy (a
 * hitless reload). Refuses to start (exit 2, nothing touched) when the stack is not healthy and says
 * why; stops (exit 2) at the first member that does not come back healthy within --timeout and
 * touches nothing further. `--tags` picks components, `--limit` hosts, `--plan` prints the steps only.
 * `npx zx playbooks/rolling-restart.ts -i inventory/lab-small.yml [--tags postgres,redis] [--limit node2]`
 */
import { day2, secondsOption } from './day2/fleet.ts'
import { COMPONENTS } from './day2/health.ts'
import { chosenComponents, describe, planRoll, roll } from './day2/rolling.ts'
import { componentMembers, limitsOf, readStack } from './day2/stack-state.ts'
import { Refused } from './day2/switch.ts'

await day2({
  name: 'rolling-restart',
  script: import.meta.url,
  changes: true,
  options: {
    limit: { type: 'string', short: 'l', valueName: 'PATTERN', description: 'only restart these hosts (a, a:b, a:!b)' },
    tags: { type: 'string', short: 't', multiple: true, valueName: 'T1,T2', description: COMPONENTS.join(',') },
    timeout: { type: 'number', valueName: 'SECONDS', description: 'how long each step may take to heal (default 180)' },
    plan: { type: 'boolean', description: 'print the steps in order and stop (restarts nothing)' },
  },
  validate(values, inventory) {
    chosenComponents(values.tags as string[] | undefined)
    if (values.limit !== undefined) inventory.select(String(values.limit))
    secondsOption(values, 'timeout', 180)
  },
  async run(fleet, values) {
    const components = chosenComponents(values.tags as string[] | undefined)
    const allowed = new Set(fleet.inventory.select(values.limit === undefined ? 'all' : String(values.limit)))
    const timeoutMs = secondsOption(values, 'timeout', 180) * 1000
    const limits = limitsOf(fleet)
    const state = await readStack(fleet)
    const steps = planRoll(state, componentMembers(fleet), components, (h) => allowed.has(h))
    fleet.say(`Rolling restart: ${steps.length} step(s)`)
    for (const [i, step] of steps.entries()) fleet.say(`  ${i + 1}. ${describe(step)}`)
    if (values.plan) return 0
    const started = Date.now()
    try {
      const result = await roll(fleet, state, steps, limits, timeoutMs)
      const seconds = ((Date.now() - started) / 1000).toFixed(0)
      if (!result.stopped) {
        fleet.say(`DONE: ${result.done.length} step(s) in ${seconds} s, the stack is healthy`)
        return 0
      }
      fleet.say(`STOPPED at "${describe(result.stopped.step)}": ${result.stopped.reason}`)
      fleet.say(`${result.done.length} step(s) done before it; nothing further was touched.`)
      return 2
    } catch (error) {
      if (!(error instanceof Refused)) throw error
      fleet.say(`REFUSED: ${error.message}`)
      return 2
    }
  },
})
