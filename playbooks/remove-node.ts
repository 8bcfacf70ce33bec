#!/usr/bin/env -S npx zx
/**
 * Remove a host from the stack cleanly: `--host H` prints the plan (and any reason to refuse it)
 * and touches nothing; `--host H --confirm` carries it out. Refused (exit 2, nothing touched) while H
 * is the PostgreSQL or Redis primary (switch over first), when fewer than three etcd members or no
 * healthy majority of them would be left, or when the Sentinels left could not reach their quorum.
 * Then: Patroni stopped and disabled on H (its member key then deleted in etcd, so the other members
 * forget it at once), Redis and Sentinel stopped and disabled, its etcd membership removed
 * (`etcdctl member remove` through a healthy member), every other Sentinel reset so it forgets H.
 * The inventory is not edited: delete H from its groups and run site.ts, as the last line says.
 * `npx zx playbooks/remove-node.ts -i inventory/lab-small.yml --host node4 [--confirm]`
 */
import { InputError } from '../lib/types.ts'
import { day2 } from './day2/fleet.ts'
import { readStack, stackGroups } from './day2/stack-state.ts'
import { removeNode } from './nodes/removal.ts'
import { planRemoval, type StackMembers } from './nodes/removal-plan.ts'

await day2({
  name: 'remove-node',
  script: import.meta.url,
  changes: true,
  options: {
    host: { type: 'string', valueName: 'HOST', description: 'the inventory host to remove (required)' },
    confirm: { type: 'boolean', description: 'carry the plan out (without it: print the plan, touch nothing)' },
  },
  validate(values, inventory) {
    if (typeof values.host !== 'string' || values.host === '') throw new InputError('--host HOST is required')
    if (!inventory.hosts.has(values.host)) throw new InputError(`--host ${values.host}: no such host in the inventory`)
  },
  async run(fleet, values) {
    const host = String(values.host)
    const g = stackGroups(fleet)
    const members: StackMembers = {
      etcd: fleet.members(g.etcd),
      postgres: fleet.members(g.postgres),
      redis: fleet.members(g.redis),
      sentinel: fleet.members(g.sentinel),
    }
    const state = await readStack(fleet)
    const plan = planRemoval(state, host, members, state.sentinelQuorum)
    const started = Date.now()
    if (plan.refusals.length) {
      for (const reason of plan.refusals) fleet.say(`refused: ${reason}`)
      return { code: 2, report: { host, refused: true, refusals: plan.refusals, steps: plan.steps } }
    }
    fleet.say(`removing ${host} (${plan.groups.join(', ')}):`)
    plan.steps.forEach((line, i) => fleet.say(`  ${i + 1}. ${line}`))
    if (!values.confirm) {
      fleet.say('nothing was touched: run again with --confirm to carry this out')
      return { code: 0, report: { host, refused: false, confirmed: false, steps: plan.steps } }
    }
    const done = await removeNode(fleet, plan, members)
    const seconds = (Date.now() - started) / 1000
    fleet.say(`${host} removed in ${seconds.toFixed(1)} s. ${plan.steps.at(-1)}`)
    return { code: 0, report: { host, refused: false, confirmed: true, steps: plan.steps, done, seconds } }
  },
})
