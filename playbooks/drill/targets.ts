/**
 * Which host a drill breaks, read from the live stack (one reading of playbooks/day2): the Patroni
 * leader, the Redis primary, the load balancer clients reach (the VIP holder, else the first haproxy
 * host), an etcd member carrying as little else as possible, or an app host other than the one clients
 * reach. Pure: the reading and the inventory's groups in, a host and the reason out.
 */
import { postgresView, redisView } from '../day2/health.ts'
import type { StackState } from '../day2/stack-state.ts'
import type { Target } from './options.ts'

export interface Victim {
  host: string
  /** Why this host: `the Patroni leader`, `holds the VIP 10.0.0.9`, ... */
  why: string
}

/** The stack's groups as the drill needs them. */
export type Members = (group: string) => string[]

/** The load balancer clients reach: the one VIP holder, or the first haproxy host without a VIP. */
export function clientBalancer(state: StackState, members: Members): string | undefined {
  if (state.vip) return state.vip.holders.length === 1 ? state.vip.holders[0] : undefined
  return members('haproxy')[0]
}

/** The hosts that hold something clients need: the primaries and the balancer they reach. */
function busyHosts(state: StackState, members: Members): Set<string> {
  return new Set(
    [postgresView(state).leader, redisView(state).primary, clientBalancer(state, members)].filter(
      (h): h is string => h !== undefined,
    ),
  )
}

/** The host to break for `target`; throws when the stack has none (no leader, no VIP holder, ...). */
export function findVictim(target: Target, state: StackState, members: Members): Victim {
  const none = (what: string): never => {
    throw new Error(`no ${what} in the live stack to break`)
  }
  switch (target) {
    case 'postgres-primary': {
      const leader = postgresView(state).leader ?? none('Patroni leader')
      return { host: leader, why: 'the Patroni leader' }
    }
    case 'redis-primary': {
      const primary = redisView(state).primary ?? none('single Redis primary')
      return { host: primary, why: 'the Redis primary' }
    }
    case 'lb': {
      const balancer = clientBalancer(state, members) ?? none('single VIP holder')
      return { host: balancer, why: state.vip ? `holds the VIP ${state.vip.address}` : 'the first haproxy host' }
    }
    case 'etcd-member': {
      const busy = busyHosts(state, members)
      const etcd = members('etcd')
      const host = etcd.find((h) => !busy.has(h)) ?? etcd[etcd.length - 1] ?? none('etcd member')
      return {
        host,
        why: busy.has(host) ? 'an etcd member (every one carries a primary)' : 'an etcd member, no primary',
      }
    }
    case 'app': {
      const balancer = clientBalancer(state, members)
      const apps = members('app').filter((h) => h !== balancer)
      const busy = busyHosts(state, members)
      const host = apps.find((h) => !busy.has(h)) ?? apps[0] ?? none('app host other than the client balancer')
      return { host, why: 'an app host clients do not reach HAProxy through' }
    }
  }
}
