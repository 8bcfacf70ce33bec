/**
 * The health-gated rolling restart: `planRoll` orders the steps from a reading of the stack (etcd
 * followers before the leader; PostgreSQL replicas by lag, then a switchover to the healthiest
 * replica, then the old primary; Redis replicas, then SENTINEL FAILOVER, then the old primary;
 * Sentinels one at a time; HAProxy reloaded), and `roll` runs them one at a time. Before the first
 * step the whole stack must be healthy (else nothing is touched and the problems are named); after
 * each step it must be healthy again on two readings in a row, within the timeout, else the roll
 * stops there with the problems and touches nothing further.
 */
import { InputError } from '../../lib/types.ts'
import type { Fleet } from './fleet.ts'
import { GateFailed, gate } from './gates.ts'
import { COMPONENTS, componentProblems, postgresView, redisView, type Component, type Limits } from './health.ts'
import { Refused, postgresTarget, redisTarget, switchPostgres, switchRedis } from './switch.ts'
import { componentMembers, limitsOf, readStack, type StackState } from './stack-state.ts'

export type Step =
  | { kind: 'restart'; component: Component; host: string; role: string }
  | { kind: 'switchover'; component: 'postgres' | 'redis'; from: string }

/** The systemd unit of each component, and whether it is reloaded rather than restarted. */
export const UNITS: Record<Component, { unit: string; action: 'restart' | 'reload' }> = {
  etcd: { unit: 'etcd', action: 'restart' },
  postgres: { unit: 'patroni', action: 'restart' },
  redis: { unit: 'redis-server', action: 'restart' },
  sentinel: { unit: 'redis-sentinel', action: 'restart' },
  haproxy: { unit: 'haproxy', action: 'reload' },
}

export function describe(step: Step): string {
  if (step.kind === 'switchover') return `${step.component}: switch the primary away from ${step.from}`
  return `${step.component}: ${UNITS[step.component].action} ${UNITS[step.component].unit} on ${step.host} (${step.role})`
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
  const restart = (component: Component, host: string, role: string) =>
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
    } else {
      for (const h of hosts) restart(component, h, component === 'sentinel' ? 'sentinel' : 'balancer')
    }
  }
  return steps
}

/** Every component's problems in one list (the stack is healthy when it is empty). */
export function wholeStack(fleet: Fleet, limits: Limits) {
  const members = componentMembers(fleet)
  return (state: StackState) => COMPONENTS.flatMap((c) => componentProblems(state, c, members, limits))
}

export interface RollResult {
  done: Step[]
  /** The step after which the stack did not come back healthy, and why. */
  stopped?: { step: Step; reason: string }
}

/** Run the steps one at a time, each followed by the health gate; refuses to start on an unhealthy stack. */
export async function roll(
  fleet: Fleet,
  state: StackState,
  steps: Step[],
  limits: Limits,
  timeoutMs: number,
): Promise<RollResult> {
  const healthy = wholeStack(fleet, limits)
  const problems = healthy(state)
  if (problems.length) throw new Refused(`the stack is not healthy, nothing was touched: ${problems.join('; ')}`)
  const done: Step[] = []
  let current = state
  for (const step of steps) {
    fleet.say(`${describe(step)} ...`)
    const started = Date.now()
    try {
      if (step.kind === 'restart') {
        const { unit, action } = UNITS[step.component]
        const r = await (await fleet.conn(step.host)).run(['systemctl', action, unit], { timeoutMs })
        if (r.code !== 0) throw new Error(`systemctl ${action} ${unit} failed: ${r.stderr.trim()}`)
        current = await gate(fleet, `the stack healthy after ${describe(step)}`, healthy, { timeoutMs })
      } else if (step.component === 'postgres') {
        const move = postgresTarget(current, limits)
        fleet.say(`  postgres: switching over from ${move.from} to ${move.to}`)
        current = await switchPostgres(fleet, limits, move, timeoutMs)
        current = await gate(fleet, `the stack healthy after the switchover`, healthy, { timeoutMs })
      } else {
        const move = redisTarget(current, limits)
        current = await switchRedis(fleet, limits, current, move, timeoutMs)
        fleet.say(`  redis: ${redisView(current).primary} is the primary`)
        current = await gate(fleet, `the stack healthy after the failover`, healthy, { timeoutMs })
      }
    } catch (error) {
      const reason = error instanceof GateFailed || error instanceof Refused ? error.message : String(error)
      return { done, stopped: { step, reason } }
    }
    done.push(step)
    fleet.say(`  healthy again after ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
  return { done }
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
  steps: string[]
  done: string[]
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
): Promise<RollingRestartReport> {
  const started = Date.now()
  const state = await readStack(fleet)
  const steps = planRoll(state, componentMembers(fleet), components, allowed)
  fleet.say(`Rolling restart: ${steps.length} step(s)`)
  for (const [i, step] of steps.entries()) fleet.say(`  ${i + 1}. ${describe(step)}`)
  const report: RollingRestartReport = { steps: steps.map(describe), done: [], seconds: 0 }
  if (planOnly) return report
  try {
    const result = await roll(fleet, state, steps, limitsOf(fleet), timeoutMs)
    report.done = result.done.map(describe)
    report.seconds = (Date.now() - started) / 1000
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
