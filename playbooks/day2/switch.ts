/**
 * A planned change of primary. PostgreSQL: Patroni's `POST /switchover` on the leader's REST API (at
 * its inventory address, with the API's credentials). Redis: `SENTINEL FAILOVER`; with a chosen
 * target the other replicas' `replica-priority` is set to 0 (never promoted) until every Sentinel has
 * seen it, and restored afterwards whatever happens; the old primary's writes wait meanwhile (its
 * replication PINGs off), the replicas catch up first, and once the Sentinels name the new primary
 * the old one becomes its replica before its pause is lifted while every HAProxy is told to route to
 * the new one (redis-handover.ts). The target is
 * chosen (or checked) first and refused when it is not a healthy, streaming replica within the lag
 * limit. Each switch waits (bounded) until the new primary is the one HAProxy routes to; `switchover`
 * measures the write pause.
 */
import type { Connection } from '../../lib/types.ts'
import { delay, waitUntil } from '../../lib/tasks/wait.ts'
import { rest } from '../../roles/patroni/rest.ts'
import type { Fleet } from './fleet.ts'
import { openArchiveLink } from './archive-link.ts'
import { setServerState } from './balancers.ts'
import { gate } from './gates.ts'
import { componentProblems, postgresView, redisView, type Component, type Limits } from './health.ts'
import { redisCommands } from './readers.ts'
import {
  finishHandover,
  pauseWrites,
  waitReplicasCaughtUp,
  waitSentinelsMoved,
  type NamedPrimary,
} from './redis-handover.ts'
import {
  componentMembers,
  limitsOf,
  patroniApi,
  readStack,
  redisEndpoint,
  sentinelEndpoint,
  type StackState,
} from './stack-state.ts'
import { patroniApiCa } from '../../roles/tls.ts'
import {
  longestPause,
  pauseLine,
  switchWatch,
  startWriter,
  timelineLines,
  writerPlacement,
  type WriteSummary,
} from './writer.ts'

/** A switch that must not be made, and why (nothing was touched). */
export class Refused extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'Refused'
  }
}

/** The PostgreSQL replica to promote: `to` when it qualifies, else the healthy replica with the least lag. */
export function postgresTarget(state: StackState, limits: Limits, to?: string): { from: string; to: string } {
  const view = postgresView(state)
  if (!view.leader) throw new Refused('the Patroni cluster has no leader')
  const fit = view.members.filter(
    (m) =>
      m.role === 'replica' &&
      (m.state === 'running' || m.state === 'streaming') &&
      m.streaming &&
      m.lagBytes !== undefined &&
      m.lagBytes <= limits.pgMaxLagBytes,
  )
  if (to !== undefined) {
    if (to === view.leader) throw new Refused(`${to} is already the leader`)
    const member = view.members.find((m) => m.name === to)
    if (!member) throw new Refused(`${to} is not a member of the Patroni cluster`)
    if (!fit.includes(member)) {
      const how = `${member.state}, ${member.streaming ? 'streaming' : 'not streaming'}, lag ${member.lagBytes ?? 'unknown'}`
      throw new Refused(`${to} is not a healthy replica within ${limits.pgMaxLagBytes} bytes of the leader (${how})`)
    }
    return { from: view.leader, to }
  }
  const best = [...fit].sort((a, b) => a.lagBytes! - b.lagBytes!)[0]
  if (!best) throw new Refused('no replica is healthy, streaming and within the lag limit')
  return { from: view.leader, to: best.name }
}

/** The Redis replica to promote: `to` when it qualifies, else whichever the Sentinels choose among healthy ones. */
export function redisTarget(state: StackState, limits: Limits, to?: string): { from: string; to?: string } {
  const view = redisView(state)
  if (!view.primary) throw new Refused('there is no single Redis primary')
  const primary = state.redis.find((r) => r.host === view.primary)!
  const healthy = (host: string) => {
    const r = state.redis.find((x) => x.host === host)
    const acked = primary.replicas?.find((x) => x.address === state.addresses[host])
    return Boolean(r?.linkUp && !r.syncInProgress && acked && acked.lag <= limits.redisMaxLagSeconds)
  }
  if (to === undefined) {
    if (!view.replicas.some(healthy)) throw new Refused('no Redis replica is linked, in sync and within the lag limit')
    return { from: view.primary }
  }
  if (to === view.primary) throw new Refused(`${to} is already the Redis primary`)
  if (!view.replicas.includes(to)) throw new Refused(`${to} is not a Redis replica`)
  if (!healthy(to)) throw new Refused(`${to} is not linked, in sync and within ${limits.redisMaxLagSeconds} s`)
  return { from: view.primary, to }
}

/** Problems of the components a primary change involves (the primary's own, its clients' route). */
export function switchProblems(fleet: Fleet, limits: Limits, components: Component[]) {
  const members = componentMembers(fleet)
  return (state: StackState) => components.flatMap((c) => componentProblems(state, c, members, limits))
}

/** HAProxy's read-write PostgreSQL backend (templates/haproxy/haproxy.cfg.ejs); its servers are the members' names. */
export const PG_WRITE_BACKEND = 'postgres_rw'

/**
 * Patroni switchover from `from` to `to`; waits until `to` leads and HAProxy routes writes to it.
 * The old primary is set to `drain` in every HAProxy's read-write backend first and `ready` again
 * afterwards, whatever happens: without it, a client connecting while the old primary shuts down
 * is sent there until its check fails (up to fall × interval) and HAProxy retries the refused
 * connection after a 1 s turn-around, so the client waits out its connect timeout (libpq: 2 s at
 * least) instead of failing at once and trying again. Its open sessions are left alone (they end
 * with the demotion). Back to `ready`, the old primary, now a replica, fails its `/primary` check.
 * Before anything, `to` opens its SSH connection to the pgBackRest repository (archive-link.ts), so the
 * archive lookups of its promotion do not pay a full SSH login inside the write pause.
 */
export async function switchPostgres(
  fleet: Fleet,
  limits: Limits,
  move: { from: string; to: string },
  timeoutMs: number,
): Promise<StackState> {
  const v = fleet.vars(move.from)
  const auth = { user: String(v.patroni_restapi_user), password: String(v.patroni_restapi_password) }
  const body = { leader: move.from, candidate: move.to }
  await openArchiveLink(fleet, move.to)
  await setServerState(fleet, [PG_WRITE_BACKEND], move.from, 'drain')
  try {
    const api = `${patroniApi(fleet, move.from)}/switchover`
    const answer = await rest(await fleet.conn(move.from), 'POST', api, {
      caFile: patroniApiCa(fleet.vars(move.from)),
      auth,
      body,
      timeoutS: 60,
    })
    if (answer.status !== 200)
      throw new Error(`Patroni refused the switchover (${answer.status}): ${answer.body.trim()}`)
    const healthy = switchProblems(fleet, limits, ['postgres', 'haproxy'])
    return await gate(
      fleet,
      `${move.to} leading PostgreSQL and routed to by HAProxy`,
      (state) => {
        const leader = postgresView(state).leader
        return leader === move.to ? healthy(state) : [`the leader is ${leader ?? 'none'}, not yet ${move.to}`]
      },
      { timeoutMs },
    )
  } finally {
    await setServerState(fleet, [PG_WRITE_BACKEND], move.from, 'ready')
  }
}

/** The replica priorities Sentinel reads, as one Sentinel reports them (`SENTINEL REPLICAS`), by address. */
async function sentinelPriorities(fleet: Fleet, sentinel: string, name: string): Promise<Map<string, number>> {
  const [reply = []] = await redisCommands(await fleet.conn(sentinel), sentinelEndpoint(fleet, sentinel), [
    ['SENTINEL', 'REPLICAS', name],
  ])
  const priorities = new Map<string, number>()
  let ip: string | undefined
  for (let i = 0; i + 1 < reply.length; i += 2) {
    if (reply[i] === 'ip') ip = reply[i + 1]
    if (reply[i] === 'slave-priority' && ip) priorities.set(ip, Number(reply[i + 1]))
  }
  return priorities
}

async function setPriority(conn: Connection, fleet: Fleet, host: string, priority: number): Promise<void> {
  const [reply = []] = await redisCommands(conn, redisEndpoint(fleet, host), [
    ['CONFIG', 'SET', 'replica-priority', priority],
  ])
  if (reply[0] !== 'OK') throw new Error(`CONFIG SET replica-priority on ${host}: ${reply[0] ?? 'no reply'}`)
}

/** SENTINEL FAILOVER (towards `to` when given); waits until Sentinels, Redis and HAProxy agree on the new primary. */
export async function switchRedis(
  fleet: Fleet,
  limits: Limits,
  state: StackState,
  move: { from: string; to?: string },
  timeoutMs: number,
): Promise<StackState> {
  const sentinels = componentMembers(fleet)('sentinel')
  const name = state.redisMasterName
  const others = move.to ? redisView(state).replicas.filter((h) => h !== move.to) : []
  const saved = new Map(others.map((h) => [h, state.redis.find((r) => r.host === h)?.priority ?? 100]))
  try {
    for (const host of others) await setPriority(await fleet.conn(host), fleet, host, 0)
    if (others.length) {
      const addresses = others.map((h) => state.addresses[h]!)
      // Sentinel reads a replica's priority from its INFO, every 10 s: wait until each has read the new one.
      for (const sentinel of sentinels) {
        const seen = async () => {
          const p = await sentinelPriorities(fleet, sentinel, name)
          return addresses.every((a) => p.get(a) === 0) ? true : undefined
        }
        await waitUntil(`Sentinel on ${sentinel} to see the new priorities`, seen, { timeoutMs: 30_000 })
      }
    }
    // Writes wait on the old primary while the replicas catch up and the Sentinels switch (redis-handover.ts).
    const held = await pauseWrites(fleet, move.from, timeoutMs + 5000)
    let moved: NamedPrimary | undefined
    try {
      await waitReplicasCaughtUp(fleet, redisView(state).replicas, held.offset, 5000)
      const [reply = []] = await redisCommands(
        await fleet.conn(sentinels[0]!),
        sentinelEndpoint(fleet, sentinels[0]!),
        [['SENTINEL', 'FAILOVER', name]],
      )
      if (reply[0] !== 'OK') throw new Error(`SENTINEL FAILOVER: ${reply[0] ?? 'no reply'}`)
      moved = await waitSentinelsMoved(fleet, sentinels, name, state.addresses[move.from]!, timeoutMs)
    } finally {
      await finishHandover(fleet, held, moved)
    }
    const healthy = switchProblems(fleet, limits, ['redis', 'sentinel', 'haproxy'])
    return await gate(
      fleet,
      `a new Redis primary${move.to ? ` (${move.to})` : ''} named by every Sentinel and routed to by HAProxy`,
      (s) => {
        const primary = redisView(s).primary
        const wanted = move.to ? primary === move.to : primary !== undefined && primary !== move.from
        return wanted ? healthy(s) : [`the Redis primary is ${primary ?? 'none'}`]
      },
      { timeoutMs },
    )
  } finally {
    const restored = await Promise.allSettled(
      [...saved].map(async ([host, priority]) => setPriority(await fleet.conn(host), fleet, host, priority)),
    )
    for (const r of restored) if (r.status === 'rejected') fleet.say(`WARNING: priority not restored: ${r.reason}`)
  }
}

export interface SwitchoverReport {
  component: 'postgres' | 'redis'
  from?: string
  to?: string
  /** Why nothing was touched. */
  refused?: string
  /** The longest time without an acknowledged write through HAProxy, ms. */
  pauseMs?: number
  writes?: { attempts: number; acknowledged: number; failures: number }
  seconds?: number
  /** What the switch went through, seconds after the last write before the pause. */
  timeline?: string[]
}

/**
 * The switchover playbook's work: refuse on an unhealthy stack or target; else start the writer,
 * let it write for a second, switch, stop it and report the pause.
 */
export async function switchover(
  fleet: Fleet,
  component: 'postgres' | 'redis',
  to: string | undefined,
  timeoutMs: number,
): Promise<SwitchoverReport> {
  const limits = limitsOf(fleet)
  const state = await readStack(fleet)
  const involved: Component[] = component === 'postgres' ? ['postgres', 'haproxy'] : ['redis', 'sentinel', 'haproxy']
  let pgMove: { from: string; to: string } | undefined
  let redisMove: { from: string; to?: string } | undefined
  try {
    const problems = switchProblems(fleet, limits, involved)(state)
    if (problems.length) throw new Refused(`the stack is not healthy: ${problems.join('; ')}`)
    if (component === 'postgres') pgMove = postgresTarget(state, limits, to)
    else redisMove = redisTarget(state, limits, to)
  } catch (error) {
    if (!(error instanceof Refused)) throw error
    fleet.say(`REFUSED: ${error.message}`)
    return { component, refused: error.message }
  }
  const move = (pgMove ?? redisMove)!
  fleet.say(`${component}: switching over from ${move.from} to ${move.to ?? "the Sentinels' choice"}`)
  const started = Date.now()
  const reading = await measured(fleet, component, timeoutMs, () =>
    pgMove
      ? switchPostgres(fleet, limits, pgMove, timeoutMs)
      : switchRedis(fleet, limits, state, redisMove!, timeoutMs),
  )
  const { value: after, summary, timeline } = reading
  const writes = { attempts: summary.attempts, acknowledged: summary.acks.length, failures: summary.failures }
  const pauseMs = longestPause(summary)
  const primary = pgMove ? pgMove.to : redisView(after).primary
  const seconds = (Date.now() - started) / 1000
  fleet.say(`${component}: ${primary} is the primary (${seconds.toFixed(1)} s)`)
  return { component, from: move.from, to: primary, pauseMs, writes, seconds, timeline }
}

/**
 * Run a switch while a writer writes through HAProxy (a second before it starts), print the pause
 * and where it went; the writer is stopped either way.
 */
export async function measured<T>(
  fleet: Fleet,
  component: 'postgres' | 'redis',
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<{ value: T; summary: WriteSummary; timeline?: string[] }> {
  const placement = writerPlacement(fleet, component)
  const watch = switchWatch(fleet, component)
  const maxSeconds = Math.ceil(timeoutMs / 1000) + 60
  const writer = startWriter(await fleet.conn(placement.host), placement.target, maxSeconds, watch)
  await delay(1000)
  let value: T
  try {
    value = await work()
  } catch (error) {
    await writer.stop().catch(() => undefined)
    throw error
  }
  const summary = await writer.stop()
  fleet.say(pauseLine(component, summary))
  const timeline = summary.events ? timelineLines(summary) : undefined
  for (const line of timeline ?? []) fleet.say(`    ${line}`)
  return { value, summary, timeline }
}
