/**
 * Patroni's dynamic configuration, the cluster-wide settings kept in etcd: what
 * the inventory wants, what differs from GET /config, and the tasks that PATCH
 * the difference and then restart the members that need it one at a time
 * (replicas first; the leader only after a switchover moved its role away).
 */
import type { HostRun, Plan, Task, Vars } from '../../lib/types.ts'
import { defineTask, delay, noChange, waitUntil } from '../../lib/tasks/index.ts'
import { walArchiving, type WalArchiving } from '../pgbackrest/archiving.ts'
import { probeCommand } from '../../lib/facts/probes.ts'
import {
  clusterMembers,
  documentOf,
  isLeader,
  memberApi,
  membersIn,
  rest,
  restGetProbe,
  restResponse,
  type PatroniMember,
  type RestAuth,
} from './rest.ts'
import { patroniApiCa } from '../tls.ts'

export type Dynamic = Record<string, unknown> & {
  postgresql: {
    parameters: Record<string, unknown>
    use_pg_rewind: boolean
    use_slots: boolean
    recovery_conf?: Record<string, string>
  }
}

/** The dynamic configuration the inventory asks for, with pgBackRest's WAL archiving when it has a repository. */
export function desiredDynamic(v: Vars, archiving?: WalArchiving): Dynamic {
  const dynamic: Dynamic = {
    ttl: v.patroni_ttl,
    loop_wait: v.patroni_loop_wait,
    retry_timeout: v.patroni_retry_timeout,
    maximum_lag_on_failover: v.patroni_maximum_lag_on_failover,
    synchronous_mode: v.patroni_synchronous_mode,
    synchronous_mode_strict: v.patroni_synchronous_mode_strict,
    failsafe_mode: v.patroni_failsafe_mode,
    postgresql: {
      use_pg_rewind: Boolean(v.patroni_use_pg_rewind),
      use_slots: Boolean(v.patroni_use_slots),
      parameters: { ...(v.postgresql_parameters as Record<string, unknown>), ...archiving?.parameters },
    },
  }
  if (archiving) dynamic.postgresql.recovery_conf = { ...archiving.recovery_conf }
  return dynamic
}

/** PostgreSQL's spelling of a value: booleans as on/off, everything else as text. */
function normal(value: unknown): string {
  if (value === true || value === 'true' || value === 'on') return 'on'
  if (value === false || value === 'false' || value === 'off') return 'off'
  return value === undefined || value === null ? '' : String(value)
}

/** The PATCH body that turns `current` into `desired` (only differing keys), or undefined when equal. */
export function dynamicPatch(current: Record<string, any>, desired: Dynamic): Record<string, any> | undefined {
  const patch: Record<string, any> = {}
  for (const [key, want] of Object.entries(desired)) {
    if (key === 'postgresql') continue
    if (normal(current[key] ?? (typeof want === 'boolean' ? false : undefined)) !== normal(want)) patch[key] = want
  }
  const pg: Record<string, any> = {}
  const curPg = current.postgresql ?? {}
  for (const key of ['use_pg_rewind', 'use_slots'] as const)
    if (normal(curPg[key] ?? false) !== normal(desired.postgresql[key])) pg[key] = desired.postgresql[key]
  const params: Record<string, unknown> = {}
  for (const [name, want] of Object.entries(desired.postgresql.parameters))
    if (normal(curPg.parameters?.[name]) !== normal(want)) params[name] = want
  if (Object.keys(params).length) pg.parameters = params
  const recovery: Record<string, string> = {}
  for (const [name, want] of Object.entries(desired.postgresql.recovery_conf ?? {}))
    if (normal(curPg.recovery_conf?.[name]) !== normal(want)) recovery[name] = want
  if (Object.keys(recovery).length) pg.recovery_conf = recovery
  if (Object.keys(pg).length) patch.postgresql = pg
  return Object.keys(patch).length ? patch : undefined
}

function describePatch(patch: Record<string, any>): string {
  const names = Object.keys(patch).filter((k) => k !== 'postgresql')
  const pg = patch.postgresql ?? {}
  const nested = ['parameters', 'recovery_conf']
  names.push(...Object.keys(pg).filter((k) => !nested.includes(k)), ...Object.keys(pg.parameters ?? {}))
  names.push(...Object.keys(pg.recovery_conf ?? {}))
  return `dynamic settings differ: ${names.join(', ')}`
}

export interface ApiContext {
  /** `http(s)://ADDR:PORT` of this host's API. */
  base: string
  auth: RestAuth
  /** Each inventory member's API (`http(s)://ADDR:PORT`) by member name: the only places credentials are sent. */
  members: Map<string, string>
}

/** Ensure the dynamic configuration in etcd matches the inventory (PATCH /config, once per cluster). */
export function dynamicConfigTask(h: HostRun, api: ApiContext): Task {
  // The read is a probe (no credentials in it); the PATCH carries them on curl's standard input.
  const readProbe = restGetProbe(`${api.base}/config`, patroniApiCa(h.vars))
  const read = probeCommand(readProbe)
  const probes = [readProbe]
  const name = 'Ensure the Patroni dynamic configuration matches the inventory'
  return defineTask(name, { probes }, async (ctx): Promise<Plan> => {
    const current = documentOf<Record<string, any>>(restResponse((await ctx.conn.run(read)).stdout))
    if (!current) {
      if (h.check) return { change: false, skip: true, reason: 'Patroni is not running yet' }
      throw new Error(`GET ${api.base}/config did not answer`)
    }
    const patch = dynamicPatch(current, desiredDynamic(h.vars, walArchiving(h.inventory, h.vars)))
    if (!patch) return noChange()
    return {
      change: true,
      reason: describePatch(patch),
      apply: async () => {
        const r = await rest(h, 'PATCH', `${api.base}/config`, { auth: api.auth, body: patch })
        if (r.status !== 200) throw new Error(`PATCH /config answered ${r.status}: ${r.body.slice(0, 300)}`)
      },
    }
  })
}

/** Poll /cluster until `ok` holds, bounded. */
function until(
  h: HostRun,
  base: string,
  what: string,
  ok: (m: PatroniMember[]) => boolean,
  timeoutMs = 180_000,
): Promise<PatroniMember[]> {
  const probe = async () => {
    const members = await clusterMembers(h, base)
    return members && ok(members) ? members : undefined
  }
  return waitUntil(what, probe, { timeoutMs, intervalMs: 1000 })
}

const healthy = (m: PatroniMember) => m.state === 'running' || m.state === 'streaming'

/**
 * Restart the members whose PostgreSQL has a pending restart, one at a time:
 * replicas first, each back to running before the next; then a switchover moves
 * the leader role to a healthy replica, and the old leader restarts as a replica.
 * A lowered max_connections-like setting cannot take effect on a replica before
 * the primary runs with it (a replica keeps the primary's value from its control
 * file): when restarted replicas stay pending, the leader restarts in place
 * first, then the replicas again. Bounded to three rounds.
 */
export function rollingRestartTask(h: HostRun, api: ApiContext, afterPatch: boolean): Task {
  // The first read of the members is a probe (no credentials in it); after a PATCH it is read live, later.
  const readProbe = restGetProbe(`${api.base}/cluster`, patroniApiCa(h.vars))
  const read = probeCommand(readProbe)
  return defineTask(
    'Ensure members with pending PostgreSQL settings are restarted one at a time',
    { probes: afterPatch ? [] : [readProbe] },
    async (ctx): Promise<Plan> => {
      // A PATCH is seen by the members within one loop_wait: give them that long to flag a pending restart.
      if (afterPatch && !h.check) await delay((Number(h.vars.patroni_loop_wait) + 2) * 1000)
      const members = afterPatch
        ? await clusterMembers(h, api.base)
        : membersIn(restResponse((await ctx.conn.run(read)).stdout))
      if (!members)
        return h.check
          ? { change: false, skip: true, reason: 'Patroni is not running yet' }
          : noChange('no cluster view')
      const pending = members.filter((m) => m.pending_restart)
      if (pending.length === 0) return noChange()
      return {
        change: true,
        reason: `pending restart on ${pending.map((m) => m.name).join(', ')}`,
        apply: async () => {
          const view = async () => (await clusterMembers(h, api.base)) ?? []
          // Members refresh their pending_restart flag once per HA loop: read it only after one has passed.
          const settle = () => delay((Number(h.vars.patroni_loop_wait) + 1) * 1000)
          const restart = async (m: PatroniMember) => {
            h.log(`restarting ${m.name} (${isLeader(m) ? 'leader, in place' : 'replica'})`)
            const url = `${memberApi(api.members, m)}/restart`
            const r = await rest(h, 'POST', url, { auth: api.auth, body: {}, timeoutS: 120 })
            if (r.status !== 200)
              throw new Error(`POST /restart on ${m.name} answered ${r.status}: ${r.body.slice(0, 300)}`)
            await until(
              h,
              api.base,
              `${m.name} to run again`,
              (ms) =>
                ms.some((x) => x.name === m.name && healthy(x)) && ms.some((x) => isLeader(x) && x.state === 'running'),
            )
          }
          for (let round = 0; round < 3; round++) {
            let ms = await view()
            if (!ms.some((m) => m.pending_restart)) return
            const replicas = ms.filter((x) => x.pending_restart && !isLeader(x))
            for (const m of replicas) await restart(m)
            if (replicas.length) await settle()
            ms = await view()
            const leader = ms.find(isLeader)
            if (!leader?.pending_restart) continue
            if (ms.some((x) => !isLeader(x) && x.pending_restart)) {
              // The replicas wait for the primary's lower value: only an in-place restart of the leader applies it.
              await restart(leader)
              await settle()
              continue
            }
            if (!ms.some((x) => !isLeader(x) && healthy(x))) throw new Error('no healthy replica to switch over to')
            h.log(`switching over from ${leader.name} before restarting it`)
            const url = `${memberApi(api.members, leader)}/switchover`
            const s = await rest(h, 'POST', url, { auth: api.auth, body: { leader: leader.name }, timeoutS: 120 })
            if (s.status !== 200) throw new Error(`POST /switchover answered ${s.status}: ${s.body.slice(0, 300)}`)
            const after = await until(
              h,
              api.base,
              'a new leader and the old one back as a replica',
              (xs) =>
                xs.some((x) => isLeader(x) && x.name !== leader.name && x.state === 'running') &&
                xs.some((x) => x.name === leader.name && healthy(x)),
            )
            const old = after.find((x) => x.name === leader.name)!
            // The demotion restarted it already; restart only when still pending.
            if (old.pending_restart) await restart(old)
            await settle()
          }
          const left = (await view()).filter((m) => m.pending_restart)
          if (left.length)
            throw new Error(`still pending a restart after three rounds: ${left.map((m) => m.name).join(', ')}`)
        },
      }
    },
  )
}
