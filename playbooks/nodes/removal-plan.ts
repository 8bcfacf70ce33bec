/**
 * Whether a host may leave the stack, and how: a pure judgement of one reading of the stack. A host
 * is never removed while it is the PostgreSQL or Redis primary (switch over first), nor when the
 * etcd members left would be fewer than three or not a healthy majority, nor when the Sentinels left
 * that answer could not reach their quorum. The steps run in this order: Patroni stopped on the host
 * (and its member key deleted through a healthy etcd member), Redis and Sentinel stopped, its etcd
 * membership removed through a healthy member, then every remaining Sentinel reset one at a time so it
 * forgets the host.
 */
import { hostOf, postgresView, redisView } from '../day2/health.ts'
import type { StackState } from '../day2/stack-state.ts'

/** The inventory's members of each group the removal touches. */
export interface StackMembers {
  etcd: string[]
  postgres: string[]
  redis: string[]
  sentinel: string[]
}

export interface RemovalPlan {
  host: string
  /** Why the removal must not happen (empty: it may go ahead). */
  refusals: string[]
  /** The host's groups the removal empties it of, in the order above. */
  groups: (keyof StackMembers)[]
  /** Whether the host answers: its services are stopped only then. */
  reachable: boolean
  /** The healthy etcd member `member remove` runs through (with an etcd membership to remove). */
  etcdVia?: string
  /**
   * The healthy etcd member the stopped Patroni member's key is deleted through (with a Patroni member to
   * remove on a reachable host, stopped first): the others forget it at once instead of when the key's TTL
   * runs out.
   */
  dcsVia?: string
  /** The Sentinels that stay, reset one at a time (after a Redis or Sentinel removal). */
  sentinelsToReset: string[]
  /** What the Sentinels must know again after a reset: other Sentinels each, and replicas. */
  expectedOtherSentinels: number
  expectedReplicas: number
  /** One sentence per step, for the plan and the report. */
  steps: string[]
}

/** Judge the removal of `host` from one reading of the stack. */
export function planRemoval(state: StackState, host: string, members: StackMembers, quorum: number): RemovalPlan {
  const groups = (Object.keys(members) as (keyof StackMembers)[]).filter((g) => members[g].includes(host))
  const refusals: string[] = []
  const steps: string[] = []
  const reachable = !(host in state.unreachable)
  const healthyEtcd = state.etcd.filter((r) => r.host !== host && r.healthy).map((r) => r.host)
  const dcsVia = groups.includes('postgres') && reachable ? healthyEtcd[0] : undefined
  if (groups.length === 0) refusals.push(`${host} is in none of the etcd, postgres, redis and sentinel groups`)

  if (groups.includes('postgres')) {
    const leader = postgresView(state).leader
    if (!leader) refusals.push('the Patroni cluster has no leader: make it healthy first (playbooks/status.ts)')
    else if (leader === host)
      refusals.push(
        `${host} is the PostgreSQL primary: switch over first (playbooks/switchover.ts --component postgres)`,
      )
    steps.push(
      `stop and disable Patroni on ${host}` +
        (dcsVia ? `, then delete its member key through ${dcsVia}'s etcd` : '') +
        ' (it leaves the cluster; the leader drops its replication slot)',
    )
  }
  if (groups.includes('redis')) {
    const view = redisView(state)
    const named = state.sentinels.map((s) => hostOf(state, s.primary)).filter(Boolean)
    if (view.primary === host || named.includes(host))
      refusals.push(`${host} is the Redis primary: switch over first (playbooks/switchover.ts --component redis)`)
    steps.push(`stop and disable Redis on ${host}`)
  }
  const remainingSentinels = members.sentinel.filter((s) => s !== host)
  if (groups.includes('sentinel')) {
    const answering = state.sentinels.filter((s) => s.host !== host && !s.error && s.primary).length
    if (answering < quorum)
      refusals.push(
        `only ${answering} of the ${remainingSentinels.length} Sentinels left answer: their quorum ${quorum} ` +
          'could not be reached',
      )
    steps.push(`stop and disable Sentinel on ${host}`)
  }
  let etcdVia: string | undefined
  if (groups.includes('etcd')) {
    const remaining = members.etcd.filter((m) => m !== host)
    if (remaining.length < 3)
      refusals.push(
        `removing ${host} would leave ${remaining.length} etcd member(s): fewer than 3 tolerate no failure; ` +
          'add a member first',
      )
    if (healthyEtcd.length <= remaining.length / 2)
      refusals.push(
        `only ${healthyEtcd.length} of the ${remaining.length} etcd members left are healthy: not a majority`,
      )
    etcdVia = healthyEtcd[0]
    steps.push(
      `remove ${host} from the etcd cluster (etcdctl member remove, through ${etcdVia ?? 'a healthy member'}), ` +
        `then stop and disable etcd on ${host} and delete its member data (a member added again starts afresh)`,
    )
  }
  const resetSentinels = groups.includes('redis') || groups.includes('sentinel')
  const sentinelsToReset = resetSentinels ? remainingSentinels : []
  const expectedReplicas = members.redis.filter((r) => r !== host).length - 1
  if (sentinelsToReset.length)
    steps.push(
      `SENTINEL RESET on ${sentinelsToReset.join(', ')}, one at a time, each waiting until it knows ` +
        `${sentinelsToReset.length - 1} other Sentinel(s) and ${expectedReplicas} replica(s) again`,
    )
  if (!reachable && groups.length)
    steps.push(`${host} cannot be reached (${state.unreachable[host]}): its services are not stopped; keep it off`)
  steps.push(
    `then delete ${host} from the inventory's ${groups.join(', ')} group(s) and run site.ts: ` +
      "HAProxy's backends and Prometheus's targets follow the inventory",
  )
  return {
    host,
    refusals,
    groups,
    reachable,
    etcdVia,
    dcsVia,
    sentinelsToReset,
    expectedOtherSentinels: Math.max(0, sentinelsToReset.length - 1),
    expectedReplicas,
    steps,
  }
}
