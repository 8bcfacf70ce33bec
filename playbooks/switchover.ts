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
import { Refused, postgresTarget, redisTarget, switchPostgres, switchProblems, switchRedis } from './day2/switch.ts'
import { limitsOf, readStack } from './day2/stack-state.ts'
import { pauseLine, startWriter, writerPlacement } from './day2/writer.ts'

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
    const to = values.to as string | undefined
    const timeoutMs = secondsOption(values, 'timeout', 120) * 1000
    const limits = limitsOf(fleet)
    const state = await readStack(fleet)
    const involved =
      component === 'postgres' ? (['postgres', 'haproxy'] as const) : (['redis', 'sentinel', 'haproxy'] as const)
    const problems = switchProblems(fleet, limits, [...involved])(state)
    try {
      if (problems.length) throw new Refused(`the stack is not healthy: ${problems.join('; ')}`)
      const pgMove = component === 'postgres' ? postgresTarget(state, limits, to) : undefined
      const redisMove = component === 'redis' ? redisTarget(state, limits, to) : undefined
      const move = (pgMove ?? redisMove)!
      fleet.say(`${component}: switching over from ${move.from} to ${move.to ?? "the Sentinels' choice"}`)
      const placement = writerPlacement(fleet, component)
      const writer = startWriter(await fleet.conn(placement.host), placement.target, Math.ceil(timeoutMs / 1000) + 60)
      const started = Date.now()
      let after
      try {
        after = pgMove
          ? await switchPostgres(fleet, limits, pgMove, timeoutMs)
          : await switchRedis(fleet, limits, state, redisMove!, timeoutMs)
      } finally {
        fleet.say(pauseLine(component, await writer.stop()))
      }
      const primary = pgMove ? pgMove.to : after.redis.find((r) => r.role === 'master')?.host
      fleet.say(`${component}: ${primary} is the primary (${((Date.now() - started) / 1000).toFixed(1)} s)`)
      return 0
    } catch (error) {
      if (!(error instanceof Refused)) throw error
      fleet.say(`REFUSED: ${error.message}`)
      return 2
    }
  },
})
