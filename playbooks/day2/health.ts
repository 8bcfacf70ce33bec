/**
 * Judging a reading of the stack: the views the day-2 playbooks decide from (the Patroni leader and
 * its replicas with lag and streaming, the Redis primary and its replicas) and, per component, the
 * sentences that say what is unhealthy (no leader, a member not streaming or lagging, etcd members
 * unhealthy or disagreeing on the leader, Sentinels disagreeing, an HAProxy backend not routing to
 * the primary, the VIP held by no host or by two, an app host not up at an HAProxy). No problems:
 * healthy. Pure functions of the data.
 */
import type { StackState } from './stack-state.ts'
import { redisBackendName } from '../../roles/redis/render.ts'

export const COMPONENTS = ['etcd', 'postgres', 'redis', 'sentinel', 'app', 'haproxy'] as const
export type Component = (typeof COMPONENTS)[number]

export interface Limits {
  /** A replica further behind the leader than this (bytes) is unhealthy (patroni_maximum_lag_on_failover). */
  pgMaxLagBytes: number
  /** A Redis replica whose last ack is older than this (s) is unhealthy (redis_min_replicas_max_lag). */
  redisMaxLagSeconds: number
}

export interface PgMemberView {
  name: string
  role: 'leader' | 'replica'
  state: string
  timeline?: number
  /** Bytes behind the leader; undefined when Patroni reports it unknown. */
  lagBytes?: number
  streaming: boolean
}

/** The Patroni cluster as its leader's member lists it (or the first member that answered). */
export function postgresView(state: StackState): { leader?: string; members: PgMemberView[] } {
  const answered = state.patroni.filter((r) => r.members)
  const lists = answered.map((r) => r.members!)
  const isLead = (role: string) => role === 'leader' || role === 'master' || role === 'standby_leader'
  const fromLeader = answered.find((r) => r.members!.some((m) => m.name === r.host && isLead(m.role)))
  const members = (fromLeader ?? answered[0])?.members ?? lists[0] ?? []
  const streaming = new Set((fromLeader?.replication ?? []).filter((r) => r.state === 'streaming').map((r) => r.name))
  const leader = members.find((m) => isLead(m.role))?.name
  return {
    leader,
    members: members.map((m) => ({
      name: m.name,
      role: isLead(m.role) ? 'leader' : 'replica',
      state: m.state,
      timeline: m.timeline,
      lagBytes: typeof m.lag === 'number' ? m.lag : undefined,
      streaming: isLead(m.role) || streaming.has(m.name),
    })),
  }
}

/** The Redis primary (host name) and its replicas as the servers themselves report. */
export function redisView(state: StackState): { primary?: string; primaries: string[]; replicas: string[] } {
  const primaries = state.redis.filter((r) => r.role === 'master').map((r) => r.host)
  const replicas = state.redis.filter((r) => r.role === 'slave').map((r) => r.host)
  return { primary: primaries.length === 1 ? primaries[0] : undefined, primaries, replicas }
}

/** The host of an address, or the address itself when no host has it. */
export function hostOf(state: StackState, address: string | undefined): string | undefined {
  if (address === undefined) return undefined
  return Object.entries(state.addresses).find(([, a]) => a === address)?.[0] ?? address
}

/** Hosts of a component's readings the stack did not answer for. */
function missing(expected: string[], readings: { host: string }[], state: StackState): string[] {
  const read = new Set(readings.map((r) => r.host))
  return expected.filter((h) => !read.has(h)).map((h) => `${h} cannot be read: ${state.unreachable[h] ?? 'no answer'}`)
}

export function postgresProblems(state: StackState, expected: string[], limits: Limits): string[] {
  if (!expected.length) return []
  const problems = missing(expected, state.patroni, state)
  problems.push(...state.patroni.filter((r) => r.error).map((r) => `${r.host}: ${r.error}`))
  const view = postgresView(state)
  if (!view.members.length) return [...problems, 'no Patroni member answers with the cluster']
  const leaders = view.members.filter((m) => m.role === 'leader')
  if (leaders.length !== 1) problems.push(leaders.length ? `${leaders.length} leaders` : 'the cluster has no leader')
  const leader = leaders[0]
  for (const name of expected) {
    const m = view.members.find((x) => x.name === name)
    if (!m) {
      problems.push(`${name} is not a member of the Patroni cluster`)
      continue
    }
    if (m.state !== 'running' && m.state !== 'streaming') problems.push(`${name} is ${m.state}`)
    if (m.role !== 'replica' || !leader) continue
    if (!m.streaming) problems.push(`${name} does not stream from the leader ${leader.name}`)
    if (m.lagBytes === undefined) problems.push(`${name}'s lag is unknown`)
    else if (m.lagBytes > limits.pgMaxLagBytes)
      problems.push(`${name} lags ${m.lagBytes} bytes behind the leader (limit ${limits.pgMaxLagBytes})`)
    if (m.timeline !== undefined && leader.timeline !== undefined && m.timeline !== leader.timeline)
      problems.push(`${name} is on timeline ${m.timeline}, the leader on ${leader.timeline}`)
  }
  return problems
}

export function etcdProblems(state: StackState, expected: string[]): string[] {
  if (!expected.length) return []
  const problems = missing(expected, state.etcd, state)
  for (const r of state.etcd) if (!r.healthy) problems.push(`etcd on ${r.host} is not healthy`)
  const healthy = state.etcd.filter((r) => r.healthy)
  const leaders = new Set(healthy.map((r) => r.leaderId).filter((id) => id && id !== '0'))
  if (healthy.length && leaders.size === 0) problems.push('etcd has no leader')
  if (leaders.size > 1) problems.push(`etcd members disagree on the leader (${leaders.size} leaders named)`)
  const started = Math.max(0, ...healthy.map((r) => r.started ?? 0))
  if (healthy.length && started < expected.length)
    problems.push(`etcd lists ${started} started member(s), the inventory ${expected.length}`)
  return problems
}

export function redisProblems(state: StackState, expected: string[], limits: Limits): string[] {
  if (!expected.length) return []
  const problems = missing(expected, state.redis, state)
  problems.push(...state.redis.filter((r) => r.error).map((r) => `${r.host}: ${r.error}`))
  const view = redisView(state)
  if (view.primaries.length !== 1) {
    problems.push(view.primaries.length ? `${view.primaries.join(' and ')} all act as primary` : 'no Redis primary')
    return problems
  }
  const primary = state.redis.find((r) => r.host === view.primary)!
  for (const r of state.redis.filter((x) => x.role === 'slave')) {
    const follows = hostOf(state, r.masterHost)
    if (follows !== view.primary) problems.push(`Redis on ${r.host} replicates from ${follows}, not ${view.primary}`)
    else if (!r.linkUp) problems.push(`Redis on ${r.host}: the link to the primary is down`)
    else if (r.syncInProgress) problems.push(`Redis on ${r.host} is still synchronising`)
    const seen = primary.replicas?.find((x) => x.address === state.addresses[r.host])
    if (seen && seen.lag > limits.redisMaxLagSeconds)
      problems.push(`Redis on ${r.host} last acknowledged ${seen.lag} s ago (limit ${limits.redisMaxLagSeconds})`)
  }
  return problems
}

export function sentinelProblems(state: StackState, expected: string[]): string[] {
  if (!expected.length) return []
  const problems = missing(expected, state.sentinels, state)
  problems.push(...state.sentinels.filter((r) => r.error).map((r) => `Sentinel on ${r.host}: ${r.error}`))
  const named = state.sentinels.filter((r) => r.primary)
  const views = new Set(named.map((r) => hostOf(state, r.primary)))
  if (views.size > 1)
    problems.push(`Sentinels disagree: ${named.map((r) => `${r.host} names ${hostOf(state, r.primary)}`).join(', ')}`)
  const primary = redisView(state).primary
  if (views.size === 1 && primary && !views.has(primary))
    problems.push(`the Sentinels name ${[...views][0]}, but ${primary} acts as the primary`)
  for (const r of named) {
    if (r.otherSentinels !== expected.length - 1)
      problems.push(`Sentinel on ${r.host} knows ${r.otherSentinels} other Sentinels, not ${expected.length - 1}`)
  }
  return problems
}

export function haproxyProblems(state: StackState, expected: string[]): string[] {
  if (!expected.length) return []
  const problems = missing(expected, state.haproxy, state)
  const pg = postgresView(state)
  const redis = redisView(state)
  for (const r of state.haproxy) {
    if (!r.backends) {
      problems.push(`HAProxy on ${r.host}: ${r.error}`)
      continue
    }
    const rw = r.backends.postgres_rw
    if (rw && pg.leader && (rw.up.length !== 1 || rw.up[0] !== pg.leader))
      problems.push(`HAProxy on ${r.host}: postgres_rw routes to [${rw.up.join(', ')}], not the leader ${pg.leader}`)
    const ro = r.backends.postgres_ro
    if (ro && pg.members.some((m) => m.role === 'replica') && ro.up.length === 0)
      problems.push(`HAProxy on ${r.host}: postgres_ro has no replica up`)
    if (redis.primary) {
      const backend = r.backends[redisBackendName(redis.primary)]
      if (backend && backend.up.length < state.sentinelQuorum)
        problems.push(`HAProxy on ${r.host}: the Redis endpoint does not route to the primary ${redis.primary}`)
    }
  }
  if (state.vip && state.vip.holders.length !== 1)
    problems.push(
      state.vip.holders.length
        ? `the VIP ${state.vip.address} is held by ${state.vip.holders.join(' and ')}`
        : `no host holds the VIP ${state.vip.address}`,
    )
  return problems
}

/** Every app host must be up (not drained, not down) in the app backends of every HAProxy that has them. */
export function appProblems(state: StackState, expected: string[]): string[] {
  const problems: string[] = []
  for (const r of state.haproxy) {
    for (const name of ['app_vote', 'app_result']) {
      const backend = r.backends?.[name]
      if (!backend) continue
      const notUp = expected.filter((h) => !backend.up.includes(h))
      if (notUp.length) problems.push(`HAProxy on ${r.host}: ${name} has ${notUp.join(', ')} not up`)
    }
  }
  return problems
}

/** The problems of one component; the members each component should have come from the inventory. */
export function componentProblems(
  state: StackState,
  component: Component,
  members: (component: Component) => string[],
  limits: Limits,
): string[] {
  const expected = members(component)
  switch (component) {
    case 'etcd':
      return etcdProblems(state, expected)
    case 'postgres':
      return postgresProblems(state, expected, limits)
    case 'redis':
      return redisProblems(state, expected, limits)
    case 'sentinel':
      return sentinelProblems(state, expected)
    case 'app':
      return appProblems(state, expected)
    case 'haproxy':
      return haproxyProblems(state, expected)
  }
}

/** Every component's problems, by component (an empty list: healthy). */
export function stackProblems(
  state: StackState,
  members: (component: Component) => string[],
  limits: Limits,
): Record<Component, string[]> {
  return Object.fromEntries(COMPONENTS.map((c) => [c, componentProblems(state, c, members, limits)])) as Record<
    Component,
    string[]
  >
}
