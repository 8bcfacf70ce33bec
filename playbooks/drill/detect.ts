/**
 * When did the stack notice the fault? Each target has a probe, asked on a surviving host over its
 * connection: another Patroni member leading, a Sentinel naming another primary, another haproxy host
 * holding the VIP, HAProxy marking the app host down, or an etcd client seeing the member unhealthy.
 * `watchDetection` polls it (every 250 ms, bounded by the time it is given) and resolves to the moment
 * it first said yes, as performance.now(), or undefined.
 */
import { quote } from '../../lib/connection/quote.ts'
import { delay } from '../../lib/tasks/wait.ts'
import { ETCDCTL } from '../../roles/etcd/index.ts'
import type { Fleet } from '../day2/fleet.ts'
import { holdsAddress, readHaproxy, readPatroni, readSentinel } from '../day2/readers.ts'
import { patroniApi, sentinelEndpoint, stackGroups } from '../day2/stack-state.ts'
import { etcdClientUrl, patroniApiCa } from '../../roles/tls.ts'
import type { Target } from './options.ts'

export type Detector = () => Promise<boolean>

/** A member of `group` other than the victim, to ask. */
function survivor(fleet: Fleet, group: string, victim: string): string {
  const host = fleet.members(group).find((h) => h !== victim)
  if (!host) throw new Error(`no ${group} host other than ${victim} to watch the drill from`)
  return host
}

/** The probe for `target` once `victim` is broken; `balancer` is the haproxy host clients reach. */
export function detectorFor(fleet: Fleet, target: Target, victim: string, balancer: string | undefined): Detector {
  const g = stackGroups(fleet)
  switch (target) {
    case 'postgres-primary': {
      const host = survivor(fleet, g.postgres, victim)
      return async () => {
        const reading = await readPatroni(
          await fleet.conn(host),
          host,
          patroniApi(fleet, host),
          patroniApiCa(fleet.vars(host)),
        )
        return (reading.members ?? []).some((m) => m.role === 'leader' && m.name !== victim && m.state === 'running')
      }
    }
    case 'redis-primary': {
      const host = survivor(fleet, g.sentinel, victim)
      const name = String(fleet.vars(host).redis_master_name)
      const victimAddress = String(fleet.vars(victim).address)
      return async () => {
        const reading = await readSentinel(await fleet.conn(host), host, sentinelEndpoint(fleet, host), name)
        return reading.primary !== undefined && reading.primary !== victimAddress
      }
    }
    case 'lb': {
      const others = fleet.members(g.haproxy).filter((h) => h !== victim)
      const vip = fleet.vars(victim).vip_address
      if (typeof vip !== 'string' || !vip) return async () => false
      return async () => {
        const held = await Promise.all(others.map(async (h) => holdsAddress(await fleet.conn(h), vip)))
        return held.some(Boolean)
      }
    }
    case 'app': {
      if (!balancer) throw new Error('no load balancer clients reach, to watch the app host leave it')
      return async () => {
        const reading = await readHaproxy(await fleet.conn(balancer), balancer)
        return (reading.backends?.app_vote?.down ?? []).includes(victim)
      }
    }
    case 'etcd-member': {
      const host = survivor(fleet, g.etcd, victim)
      const v = fleet.vars(victim)
      const url = etcdClientUrl(v)
      const command = `${ETCDCTL} --endpoints=${quote(url)} --command-timeout=1s endpoint health >/dev/null 2>&1`
      return async () => (await (await fleet.conn(host)).run(command, { timeoutMs: 5000 })).code !== 0
    }
  }
}

/** Poll the detector until it says yes or `untilMs` (performance.now()) passes. */
export async function watchDetection(detector: Detector, untilMs: number): Promise<number | undefined> {
  for (let n = 0; n < 10_000 && performance.now() < untilMs; n++) {
    const began = performance.now()
    if (await detector().catch(() => false)) return performance.now()
    await delay(Math.max(0, 250 - (performance.now() - began)))
  }
  return undefined
}
