/**
 * The health-gated rolling restart: `planRoll` orders the steps from a reading of the stack (etcd
 * followers before the leader; PostgreSQL replicas by lag, then a switchover to the healthiest
 * replica, then the old primary; Redis replicas, then SENTINEL FAILOVER, then the old primary;
 * Sentinels one at a time; app hosts one at a time, drained at HAProxy first; HAProxy hosts one at
 * a time, the VIP holder last and the VIP moved away first, each reloaded hitlessly). `planHosts`
 * does the same host by host for `--reboot` and `--upgrade` (hosts that hold a primary or the VIP
 * last; each is emptied first: switchovers, the VIP moved, the app drained). `roll` runs the steps
 * one at a time. Before the first step the whole stack must be healthy (else nothing is touched and
 * the problems are named); after each step it must be healthy again on two readings in a row, within
 * the timeout, else the roll stops there with the problems and touches nothing further. Every
 * switchover runs under a writer through HAProxy and its write pause is printed and reported.
 */
import { InputError } from '../../lib/types.ts'
import type { Fleet } from './fleet.ts'
import { GateFailed, gate } from './gates.ts'
import { COMPONENTS, componentProblems, postgresView, redisView, type Component, type Limits } from './health.ts'
import { Refused, measured, postgresTarget, redisTarget, switchPostgres, switchRedis } from './switch.ts'
import { componentMembers, limitsOf, readStack, type StackState } from './stack-state.ts'
import { longestPause, type WriteSummary } from './writer.ts'
import {
  APP_SERVICE_UNITS,
  appAnswers,
  drainApp,
  moveVipAway,
  reloadBalancer,
  restartApp,
  setAppServerState,
  vipMoveDone,
  KEEP_ALIVE_BOUND_MS,
  vipOf,
} from './balancers.ts'
import { rebootHost } from './reboot.ts'
import { applyUpdates, pendingUpdates, splitByMajor, unitsToRestart } from './upgrades.ts'

/** The components restarted through their own systemd unit. */
export type ServiceComponent = 'etcd' | 'postgres' | 'redis' | 'sentinel'
export type HostAction = 'reboot' | 'upgrade'

export type Step =
  | { kind: 'restart'; component: ServiceComponent; host: string; role: string }
  | { kind: 'switchover'; component: 'postgres' | 'redis'; from: string }
  | { kind: 'app'; host: string }
  | { kind: 'balancer'; host: string; vip: boolean }
  | { kind: 'host'; host: string; action: HostAction; holds: string[] }

/** The systemd unit of each component restarted by its own unit. */
export const UNITS: Record<ServiceComponent, string> = {
  etcd: 'etcd',
  postgres: 'patroni',
  redis: 'redis-server',
  sentinel: 'redis-sentinel',
}

export function describe(step: Step): string {
  switch (step.kind) {
    case 'switchover':
      return `${step.component}: switch the primary away from ${step.from}`
    case 'restart':
      return `${step.component}: restart ${UNITS[step.component]} on ${step.host} (${step.role})`
    case 'app':
      return `app: drain ${step.host} at HAProxy, restart ${APP_SERVICE_UNITS.join(', ')}, make it ready`
    case 'balancer':
      return `haproxy: ${step.vip ? `move the VIP away from ${step.host}, ` : ''}check and reload haproxy on ${step.host}`
    case 'host': {
      const what = step.action === 'reboot' ? 'reboot' : 'apply the pending minor updates'
      return `${step.host}: ${what}${step.holds.length ? ` (first moving away: ${step.holds.join(', ')})` : ''}`
    }
  }
}

/**
 * The steps, in order, for the chosen components and the hosts `--limit` allows; a primary outside
 * the limit is neither switched away from nor restarted.
 */
export function planRoll(
  state: StackState,
  members: (component: Component) => string[],
  components: readonly Component[],
  allowed: (host: string) => boolean,
): Step[] {
  const steps: Step[] = []
  const restart = (component: ServiceComponent, host: string, role: string) =>
    steps.push({ kind: 'restart', component, host, role })
  for (const component of COMPONENTS.filter((c) => components.includes(c))) {
    const hosts = members(component).filter(allowed)
    if (component === 'etcd') {
      const isLeader = (h: string) => state.etcd.some((r) => r.host === h && r.memberId && r.memberId === r.leaderId)
      for (const h of hosts.filter((x) => !isLeader(x))) restart(component, h, 'follower')
      for (const h of hosts.filter(isLeader)) restart(component, h, 'leader')
    } else if (component === 'postgres') {
      const view = postgresView(state)
      const replicas = view.members
        .filter((m) => m.role === 'replica' && hosts.includes(m.name))
        .sort((a, b) => (a.lagBytes ?? Infinity) - (b.lagBytes ?? Infinity))
      for (const m of replicas) restart(component, m.name, 'replica')
      if (view.leader && hosts.includes(view.leader)) {
        steps.push({ kind: 'switchover', component, from: view.leader })
        restart(component, view.leader, 'old primary')
      }
    } else if (component === 'redis') {
      const view = redisView(state)
      for (const h of hosts.filter((x) => view.replicas.includes(x))) restart(component, h, 'replica')
      if (view.primary && hosts.includes(view.primary)) {
        steps.push({ kind: 'switchover', component, from: view.primary })
        restart(component, view.primary, 'old primary')
      }
    } else if (component === 'sentinel') {
      for (const h of hosts) restart(component, h, 'sentinel')
    } else if (component === 'app') {
      for (const h of hosts) steps.push({ kind: 'app', host: h })
    } else {
      const holds = (h: string) => state.vip?.holders.includes(h) ?? false
      for (const h of [...hosts.filter((x) => !holds(x)), ...hosts.filter(holds)])
        steps.push({ kind: 'balancer', host: h, vip: holds(h) })
    }
  }
  return steps
}

/** What the host holds that must move before it goes down: the primaries, the VIP, app traffic. */
export function heldBy(state: StackState, members: (component: Component) => string[], host: string): string[] {
  const held: string[] = []
  if (postgresView(state).leader === host) held.push('the PostgreSQL leader')
  if (redisView(state).primary === host) held.push('the Redis primary')
  if (state.vip?.holders.includes(host)) held.push('the VIP')
  if (members('app').includes(host)) held.push('app traffic')
  return held
}

/**
 * `--reboot` / `--upgrade`: one step per host running a chosen component (inventory order), those
 * holding a primary or the VIP last, fewest first.
 */
export function planHosts(
  state: StackState,
  members: (component: Component) => string[],
  components: readonly Component[],
  allowed: (host: string) => boolean,
  action: HostAction,
): Step[] {
  const hosts = [...new Set(components.flatMap((c) => members(c)))].filter(allowed)
  const weight = (h: string) => heldBy(state, members, h).filter((x) => x !== 'app traffic').length
  return [...hosts]
    .sort((a, b) => weight(a) - weight(b))
    .map((host) => ({ kind: 'host', host, action, holds: heldBy(state, members, host) }))
}

/** Every component's problems in one list (the stack is healthy when it is empty). */
export function wholeStack(fleet: Fleet, limits: Limits) {
  const members = componentMembers(fleet)
  return (state: StackState) => COMPONENTS.flatMap((c) => componentProblems(state, c, members, limits))
}

/** A switchover's write pause as a client through HAProxy saw it. */
export interface MeasuredPause {
  component: 'postgres' | 'redis'
  from: string
  pauseMs: number
  /** Where the pause went (the watcher's changes, seconds after the last write before it). */
  timeline?: string[]
}

/** When a step started (seconds after the roll started) and how long it took. */
export interface StepTiming {
  step: string
  startedS: number
  seconds: number
}

export interface RollResult {
  done: Step[]
  pauses: MeasuredPause[]
  timings: StepTiming[]
  /** The step after which the stack did not come back healthy, and why. */
  stopped?: { step: Step; reason: string }
}

/** The work of one roll: the fleet, the limits, each step's bound, the pauses measured so far. */
interface RollContext {
  fleet: Fleet
  limits: Limits
  timeoutMs: number
  pauses: MeasuredPause[]
  healthy: (state: StackState) => string[]
  /** How long a VIP holder's clients get to close their kept connections before the VIP moves. */
  keepAliveMs: number
}

/** A switchover's reading for the roll's report: its pause and, when the writer watched, where it went. */
function measuredPause(
  component: 'postgres' | 'redis',
  from: string,
  { summary, timeline }: { summary: WriteSummary; timeline?: string[] },
): MeasuredPause {
  return { component, from, pauseMs: longestPause(summary), ...(timeline ? { timeline } : {}) }
}

/** Move the primary of `component` away from its host under a writer; the reading once healthy again. */
async function switchAway(ctx: RollContext, component: 'postgres' | 'redis', current: StackState) {
  const { fleet, limits, timeoutMs } = ctx
  if (component === 'postgres') {
    const move = postgresTarget(current, limits)
    fleet.say(`  postgres: switching over from ${move.from} to ${move.to}`)
    const reading = await measured(fleet, component, timeoutMs, () => switchPostgres(fleet, limits, move, timeoutMs))
    ctx.pauses.push(measuredPause(component, move.from, reading))
  } else {
    const move = redisTarget(current, limits)
    const reading = await measured(fleet, component, timeoutMs, () =>
      switchRedis(fleet, limits, current, move, timeoutMs),
    )
    fleet.say(`  redis: ${redisView(reading.value).primary} is the primary`)
    ctx.pauses.push(measuredPause(component, move.from, reading))
  }
  return gate(fleet, `the stack healthy after the ${component} switchover`, ctx.healthy, { timeoutMs })
}

async function systemctl(fleet: Fleet, host: string, verb: string, units: string[], timeoutMs: number) {
  const r = await (await fleet.conn(host)).run(['systemctl', verb, ...units], { timeoutMs })
  if (r.code !== 0) throw new Error(`systemctl ${verb} ${units.join(' ')} on ${host} failed: ${r.stderr.trim()}`)
}

/** The units the host runs for the stack (what an update of a shared library restarts). */
function hostUnits(fleet: Fleet, host: string): string[] {
  const members = componentMembers(fleet)
  const runs = (c: Component) => members(c).includes(host)
  const units = (['etcd', 'postgres', 'redis', 'sentinel'] as const).filter(runs).map((c) => UNITS[c])
  if (runs('app')) units.push(...APP_SERVICE_UNITS)
  if (runs('haproxy')) units.push('haproxy', ...(vipOf(fleet) ? ['keepalived'] : []))
  return units
}

/** A whole host rebooted or upgraded, emptied first; the reading once the stack is healthy again. */
async function hostStep(ctx: RollContext, step: Extract<Step, { kind: 'host' }>): Promise<StackState> {
  const { fleet, timeoutMs } = ctx
  const { host } = step
  let updates: Awaited<ReturnType<typeof pendingUpdates>> = []
  if (step.action === 'upgrade') {
    const { minor, major } = splitByMajor(await pendingUpdates(await fleet.conn(host)))
    for (const u of major) fleet.say(`  ${host}: ${u.name} ${u.from} → ${u.to} changes the major version: left alone`)
    if (!minor.length) {
      fleet.say(`  ${host}: 0 pending`)
      return readStack(fleet)
    }
    fleet.say(`  ${host}: ${minor.length} pending: ${minor.map((u) => `${u.name} ${u.from} → ${u.to}`).join(', ')}`)
    updates = minor
  }
  let current = await readStack(fleet)
  if (postgresView(current).leader === host) current = await switchAway(ctx, 'postgres', current)
  if (redisView(current).primary === host) await switchAway(ctx, 'redis', current)
  const isApp = componentMembers(fleet)('app').includes(host)
  if (isApp) fleet.say(`  app: ${host} drained in ${(await drainApp(fleet, host, timeoutMs)).toFixed(1)} s`)
  const balancer = componentMembers(fleet)('haproxy').includes(host)
  const peer = balancer ? await moveVipAway(fleet, host, timeoutMs, ctx.keepAliveMs) : undefined
  if (peer) fleet.say(`  the VIP moved to ${peer}`)
  if (step.action === 'reboot') {
    fleet.say(
      `  ${host}: back with every unit started after ${(await rebootHost(fleet, host, timeoutMs)).toFixed(1)} s`,
    )
  } else {
    await applyUpdates(await fleet.conn(host), updates)
    const units = unitsToRestart(
      updates.map((u) => u.name),
      hostUnits(fleet, host),
    )
    fleet.say(`  ${host}: updated; restarting ${units.length ? units.join(', ') : 'nothing (no unit uses them)'}`)
    const restarts = units.filter((u) => u !== 'haproxy')
    if (restarts.length) await systemctl(fleet, host, 'restart', restarts, timeoutMs)
    if (units.includes('haproxy')) await reloadBalancer(fleet, host, timeoutMs)
  }
  if (isApp) {
    await appAnswers(fleet, host, timeoutMs)
    await setAppServerState(fleet, host, 'ready')
  }
  if (peer) await vipMoveDone(fleet, host, timeoutMs)
  return gate(fleet, `the stack healthy after ${describe(step)}`, ctx.healthy, { timeoutMs })
}

/** Run one step; the reading once the stack is healthy again. */
async function runStep(ctx: RollContext, step: Step, current: StackState): Promise<StackState> {
  const { fleet, timeoutMs } = ctx
  const healthyAfter = () => gate(fleet, `the stack healthy after ${describe(step)}`, ctx.healthy, { timeoutMs })
  switch (step.kind) {
    case 'restart':
      await systemctl(fleet, step.host, 'restart', [UNITS[step.component]], timeoutMs)
      return healthyAfter()
    case 'switchover':
      return switchAway(ctx, step.component, current)
    case 'app': {
      fleet.say(`  drained in ${(await drainApp(fleet, step.host, timeoutMs)).toFixed(1)} s`)
      await restartApp(fleet, step.host, timeoutMs)
      await setAppServerState(fleet, step.host, 'ready')
      return healthyAfter()
    }
    case 'balancer': {
      const peer = await moveVipAway(fleet, step.host, timeoutMs, ctx.keepAliveMs)
      if (peer) fleet.say(`  the VIP moved to ${peer}`)
      await reloadBalancer(fleet, step.host, timeoutMs)
      if (peer) await vipMoveDone(fleet, step.host, timeoutMs)
      return healthyAfter()
    }
    case 'host':
      return hostStep(ctx, step)
  }
}

/** Run the steps one at a time, each followed by the health gate; refuses to start on an unhealthy stack. */
export async function roll(
  fleet: Fleet,
  state: StackState,
  steps: Step[],
  limits: Limits,
  timeoutMs: number,
  keepAliveMs = KEEP_ALIVE_BOUND_MS,
): Promise<RollResult> {
  const healthy = wholeStack(fleet, limits)
  const ctx: RollContext = { fleet, limits, timeoutMs, pauses: [], healthy, keepAliveMs }
  const problems = ctx.healthy(state)
  if (problems.length) throw new Refused(`the stack is not healthy, nothing was touched: ${problems.join('; ')}`)
  const done: Step[] = []
  const timings: StepTiming[] = []
  const rollStarted = Date.now()
  let current = state
  for (const step of steps) {
    fleet.say(`${describe(step)} ...`)
    const started = Date.now()
    const timing = { step: describe(step), startedS: (started - rollStarted) / 1000, seconds: 0 }
    timings.push(timing)
    try {
      current = await runStep(ctx, step, current)
    } catch (error) {
      timing.seconds = (Date.now() - started) / 1000
      const reason = error instanceof GateFailed || error instanceof Refused ? error.message : String(error)
      return { done, pauses: ctx.pauses, timings, stopped: { step, reason } }
    }
    timing.seconds = (Date.now() - started) / 1000
    done.push(step)
    fleet.say(`  healthy again after ${timing.seconds.toFixed(1)} s`)
  }
  return { done, pauses: ctx.pauses, timings }
}

/** The components of --tags (all when absent); an unknown one is bad input. */
export function chosenComponents(tags: string[] | undefined): Component[] {
  const names = (tags ?? []).flatMap((t) => t.split(',').map((s) => s.trim())).filter(Boolean)
  for (const name of names)
    if (!COMPONENTS.includes(name as Component))
      throw new InputError(`--tags: unknown component ${name} (known: ${COMPONENTS.join(', ')})`)
  return names.length ? (names as Component[]) : [...COMPONENTS]
}

export interface RollingRestartReport {
  /** restart (services), reboot or upgrade (whole hosts). */
  mode: 'restart' | HostAction
  steps: string[]
  done: string[]
  /** Each switchover's write pause through HAProxy. */
  pauses: MeasuredPause[]
  /** Each step's start (seconds after the roll started) and duration. */
  timings: StepTiming[]
  /** When the first step was about to start (ISO time; the timings count from it). */
  startedAt: string
  /** Why nothing was touched. */
  refused?: string
  stopped?: { step: string; reason: string }
  seconds: number
}

/** The rolling-restart playbook's work: read, plan, print the plan, then roll (unless only the plan was asked). */
export async function rollingRestart(
  fleet: Fleet,
  components: Component[],
  allowed: (host: string) => boolean,
  timeoutMs: number,
  planOnly: boolean,
  action?: HostAction,
): Promise<RollingRestartReport> {
  const started = Date.now()
  const state = await readStack(fleet)
  const members = componentMembers(fleet)
  const steps = action
    ? planHosts(state, members, components, allowed, action)
    : planRoll(state, members, components, allowed)
  fleet.say(`Rolling ${action ?? 'restart'}: ${steps.length} step(s)`)
  for (const [i, step] of steps.entries()) fleet.say(`  ${i + 1}. ${describe(step)}`)
  const report: RollingRestartReport = {
    mode: action ?? 'restart',
    steps: steps.map(describe),
    done: [],
    pauses: [],
    timings: [],
    startedAt: new Date(started).toISOString(),
    seconds: 0,
  }
  if (planOnly) return report
  try {
    report.startedAt = new Date().toISOString()
    const result = await roll(fleet, state, steps, limitsOf(fleet), timeoutMs)
    report.done = result.done.map(describe)
    report.pauses = result.pauses
    report.timings = result.timings
    report.seconds = (Date.now() - started) / 1000
    for (const p of result.pauses)
      fleet.say(`${p.component} switchover from ${p.from}: write pause ${(p.pauseMs / 1000).toFixed(2)} s`)
    if (!result.stopped) {
      fleet.say(`DONE: ${report.done.length} step(s) in ${report.seconds.toFixed(0)} s, the stack is healthy`)
      return report
    }
    report.stopped = { step: describe(result.stopped.step), reason: result.stopped.reason }
    fleet.say(`STOPPED at "${report.stopped.step}": ${report.stopped.reason}`)
    fleet.say(`${report.done.length} step(s) done before it; nothing further was touched.`)
  } catch (error) {
    if (!(error instanceof Refused)) throw error
    report.refused = error.message
    fleet.say(`REFUSED: ${error.message}`)
  }
  report.seconds = (Date.now() - started) / 1000
  return report
}
