/**
 * Carrying out a removal plan (removal-plan.ts) over the fleet's connections, step by step, each
 * bounded in time: Patroni stopped on the host (where it answers: then its member key is deleted through a
 * healthy etcd member, so the others forget it at once, not when the key's TTL runs out) and gone from the
 * cluster's member list, Redis and
 * Sentinel stopped, the etcd membership removed through a healthy member (then etcd stopped on the
 * host and its member data deleted), and every remaining Sentinel reset one at a time, each waiting
 * until it knows the other Sentinels and the replicas again. Returns what was done, step by step.
 */
import { raw, sh } from '../../lib/connection/quote.ts'
import { waitUntil } from '../../lib/tasks/wait.ts'
import { ETCDCTL, etcdRole } from '../../roles/etcd/index.ts'
import { parseMemberList } from '../../roles/etcd/membership.ts'
import { patroniMemberKey, patroniRole } from '../../roles/patroni/index.ts'
import { isError, pairs } from '../../roles/redis/cli.ts'
import type { Fleet } from '../day2/fleet.ts'
import { readPatroni, redisCommands } from '../day2/readers.ts'
import { patroniApi, sentinelEndpoint } from '../day2/stack-state.ts'
import { etcdClientUrl, etcdPeerUrl, patroniApiCa } from '../../roles/tls.ts'
import type { StackMembers, RemovalPlan } from './removal-plan.ts'

const STEP_TIMEOUT_MS = 90_000

/**
 * etcdctl asking one healthy member's own endpoint only: the wrapper's list holds the leaving member too, and
 * a request that member served answers "etcdserver: server stopped" as it stops.
 */
function etcdctlVia(fleet: Fleet, via: string, commandTimeout: string): string {
  return sh`${ETCDCTL} --endpoints=${etcdClientUrl(fleet.vars(via))} --command-timeout=${commandTimeout}`
}

/** Run a command as root on a host; a non-zero exit fails the step with its output. */
async function onHost(fleet: Fleet, host: string, command: string, timeoutMs = 60_000): Promise<string> {
  const r = await (await fleet.conn(host)).run(command, { timeoutMs })
  if (r.code !== 0) throw new Error(`${host}: ${command.split('\n')[0]} failed: ${(r.stderr || r.stdout).trim()}`)
  return r.stdout
}

/**
 * Stop Patroni on the host, delete its member key (only once it is stopped: a running member writes it
 * again), and wait until another member no longer lists it. The deletion only saves waiting for the key's
 * TTL: when it fails, the wait does the rest.
 */
async function leavePatroni(fleet: Fleet, plan: RemovalPlan, members: StackMembers): Promise<string> {
  const host = plan.host
  let keyDeleted = ''
  if (plan.reachable) {
    await onHost(fleet, host, 'systemctl disable --now patroni', 120_000)
    if (plan.dcsVia) {
      const v = { ...patroniRole.defaults, ...fleet.vars(host) }
      const key = patroniMemberKey(String(v.patroni_namespace), String(v.patroni_scope), host)
      // `del` prints how many keys it deleted: 0 when the key is gone already (its TTL ran out).
      keyDeleted = await onHost(fleet, plan.dcsVia, sh`${raw(etcdctlVia(fleet, plan.dcsVia, '5s'))} del ${key}`).then(
        (out) =>
          out.trim() === '0'
            ? `, its member key ${key} already gone`
            : `, its member key ${key} deleted through ${plan.dcsVia}`,
        (error: Error) => `, its member key not deleted (${error.message}): waiting for its TTL`,
      )
    }
  }
  const witness = members.postgres.find((m) => m !== host)!
  const conn = await fleet.conn(witness)
  await waitUntil(
    `${host} to leave the Patroni cluster`,
    async () => {
      const reading = await readPatroni(conn, witness, patroniApi(fleet, witness), patroniApiCa(fleet.vars(witness)))
      if (!reading.members) throw new Error(reading.error)
      return reading.members.some((m) => m.name === host) ? undefined : true
    },
    { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 2000 },
  )
  return `Patroni stopped on ${host}${keyDeleted}; ${witness} no longer lists it`
}

/** `etcdctl member remove` through a healthy member, then etcd stopped on the host and its member data deleted. */
async function leaveEtcd(fleet: Fleet, plan: RemovalPlan): Promise<string> {
  const host = plan.host
  const via = plan.etcdVia!
  const v = { ...etcdRole.defaults, ...fleet.vars(host) }
  const peer = etcdPeerUrl(v)
  const memberList = async () =>
    parseMemberList(await onHost(fleet, via, `${etcdctlVia(fleet, via, '5s')} member list`))
  const member = (await memberList()).find((m) => m.name === host || m.peerUrls.includes(peer))
  if (member) {
    await onHost(fleet, via, sh`${raw(etcdctlVia(fleet, via, '10s'))} member remove ${member.id}`).catch(
      async (error) => {
        // A removal the cluster applied may still answer with an error (the leaving member was the leader, say):
        // the member list decides, read for up to 15 s.
        const gone = await waitUntil(
          `${host} to leave the etcd member list`,
          async () => ((await memberList()).some((m) => m.id === member.id) ? undefined : true),
          { timeoutMs: 15_000, intervalMs: 1000 },
        ).catch(() => false)
        if (!gone) throw error
      },
    )
  }
  if (plan.reachable) {
    await onHost(fleet, host, sh`systemctl disable --now etcd && rm -rf -- ${`${v.etcd_data_dir}/member`}`, 120_000)
  }
  const removed = member ? `removed member ${member.id} through ${via}` : `not a member any more (asked ${via})`
  return `etcd: ${host} ${removed}${plan.reachable ? '; etcd stopped there and its member data deleted' : ''}`
}

/** SENTINEL RESET on each remaining Sentinel in turn; each must know the others and the replicas again. */
async function resetSentinels(fleet: Fleet, plan: RemovalPlan): Promise<string> {
  const name = String(fleet.vars(plan.sentinelsToReset[0]!).redis_master_name)
  for (const sentinel of plan.sentinelsToReset) {
    const conn = await fleet.conn(sentinel)
    const ep = sentinelEndpoint(fleet, sentinel)
    const [reset = []] = await redisCommands(conn, ep, [['SENTINEL', 'RESET', name]])
    if (isError(reset)) throw new Error(`SENTINEL RESET on ${sentinel} failed: ${reset.join(' ')}`)
    await waitUntil(
      `Sentinel on ${sentinel} to know ${plan.expectedOtherSentinels} other Sentinel(s) and ` +
        `${plan.expectedReplicas} replica(s) again`,
      async () => {
        const [master = []] = await redisCommands(conn, ep, [['SENTINEL', 'MASTER', name]])
        if (isError(master)) throw new Error(master.join(' '))
        const fields = pairs(master)
        const known = Number(fields['num-other-sentinels']) === plan.expectedOtherSentinels
        return known && Number(fields['num-slaves']) === plan.expectedReplicas ? true : undefined
      },
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 1000 },
    )
  }
  return `Sentinels reset one at a time: ${plan.sentinelsToReset.join(', ')}`
}

/** Carry the plan out (it must have no refusals); one line per step done, printed as it ends. */
export async function removeNode(fleet: Fleet, plan: RemovalPlan, members: StackMembers): Promise<string[]> {
  if (plan.refusals.length) throw new Error(`refused: ${plan.refusals.join('; ')}`)
  const done: string[] = []
  const step = async (work: () => Promise<string>) => {
    const started = Date.now()
    const line = `${await work()} (${((Date.now() - started) / 1000).toFixed(1)} s)`
    fleet.say(`done: ${line}`)
    done.push(line)
  }
  const host = plan.host
  if (plan.groups.includes('postgres')) await step(() => leavePatroni(fleet, plan, members))
  const stop = (unit: string, label: string) => async () => {
    await onHost(fleet, host, sh`systemctl disable --now ${unit}`)
    return `${label} stopped and disabled on ${host}`
  }
  if (plan.reachable && plan.groups.includes('redis')) await step(stop('redis-server', 'Redis'))
  if (plan.reachable && plan.groups.includes('sentinel')) await step(stop('redis-sentinel', 'Sentinel'))
  if (plan.groups.includes('etcd')) await step(() => leaveEtcd(fleet, plan))
  if (plan.sentinelsToReset.length) await step(() => resetSentinels(fleet, plan))
  return done
}
