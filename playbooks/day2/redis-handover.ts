/**
 * A planned Redis primary change that loses no acknowledged write and needs no full resync. Before
 * SENTINEL FAILOVER the old primary's writes are paused (`CLIENT PAUSE … WRITE`: a client's write
 * waits, it is not refused) and every replica must reach its replication offset: the promoted
 * replica then holds every acknowledged write, and the other replicas follow it with a partial
 * resync (a replica ahead of the promoted one needs a full resync, which Redis holds back by
 * `repl-diskless-sync-delay`, 5 s, while the new primary refuses writes for want of a good replica).
 * A pause does not stop the primary's own replication PING (every `repl-ping-replica-period`, 10 s;
 * only Redis' FAILOVER command holds it back): one sent after the promoted replica left but before
 * the others did put them 14 bytes ahead of it, and that was the 6 s stall of issue 13. So the
 * primary's PINGs are off (a period no uptime reaches) for as long as its writes are paused.
 * Once every Sentinel names the new primary, the old one is made its replica at once (REPLICAOF, as
 * Sentinel would do some 10 s later, by when Sentinel's hello messages had put it ahead too and it
 * needed a full resync; meanwhile a client that reached it was refused writes for want of replicas),
 * its PING period restored and written back (CONFIG REWRITE, as Sentinel does), its clients
 * disconnected (a paused write never runs there) and the pause lifted. Meanwhile every HAProxy is told
 * at once what its checks are about to conclude (the old primary's entries down, then the new one's
 * up, once it answers role:master) instead of waiting out `rise` × the check interval (routeWritesTo).
 */
import { waitUntil } from '../../lib/tasks/wait.ts'
import { parseInfo } from '../../roles/redis/cli.ts'
import { redisBackendName, redisEntryName } from '../../roles/redis/render.ts'
import { forceServerHealth, type ServerHealth } from './balancers.ts'
import type { Fleet } from './fleet.ts'
import { redisCommands } from './readers.ts'
import { redisEndpoint, sentinelEndpoint } from './stack-state.ts'

async function ask(fleet: Fleet, host: string, commands: (string | number)[][]): Promise<string[][]> {
  return redisCommands(await fleet.conn(host), redisEndpoint(fleet, host), commands)
}

/** The replication offset in a server's INFO replication (the primary's own, or what a replica applied). */
export function replicationOffset(info: string[]): number | undefined {
  const fields = parseInfo(info)
  const offset = Number(fields.role === 'master' ? fields.master_repl_offset : fields.slave_repl_offset)
  return Number.isFinite(offset) ? offset : undefined
}

/** `repl-ping-replica-period` while writes are paused: Redis PINGs when its seconds counter is a multiple of it. */
export const PING_OFF_PERIOD = 2_147_483_647

/** The old primary while its writes are paused: its replication offset and the PING period to restore. */
export interface PausedPrimary {
  host: string
  offset: number
  pingPeriod: number
}

/** Turn the primary's replication PINGs off, then pause its writes for at most `ms`; where its stream stopped. */
export async function pauseWrites(fleet: Fleet, primary: string, ms: number): Promise<PausedPrimary> {
  const [period = []] = await ask(fleet, primary, [['CONFIG', 'GET', 'repl-ping-replica-period']])
  const pingPeriod = Number(period[1])
  if (!Number.isInteger(pingPeriod) || pingPeriod < 1)
    throw new Error(`${primary} gave no repl-ping-replica-period: ${period[0] ?? 'no reply'}`)
  const [off = [], paused = [], info = []] = await ask(fleet, primary, [
    ['CONFIG', 'SET', 'repl-ping-replica-period', PING_OFF_PERIOD],
    ['CLIENT', 'PAUSE', ms, 'WRITE'],
    ['INFO', 'replication'],
  ])
  const held = { host: primary, offset: replicationOffset(info) ?? NaN, pingPeriod }
  if (off[0] !== 'OK' || paused[0] !== 'OK') {
    await releaseOldPrimary(fleet, held)
    throw new Error(`pausing ${primary}: ${[off[0], paused[0]].find((r) => r !== 'OK') ?? 'no reply'}`)
  }
  if (Number.isNaN(held.offset)) {
    await releaseOldPrimary(fleet, held)
    throw new Error(`${primary} gave no replication offset: ${info[0] ?? 'no reply'}`)
  }
  return held
}

/** Every promise's outcome once all have settled; the first rejection, if any, is thrown then. */
async function allOrFirstError<T>(promises: Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(promises)
  const failed = outcomes.find((o) => o.status === 'rejected')
  if (failed) throw failed.reason
  return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value)
}

/** Wait (bounded) until every replica has applied the primary's offset; the replicas are asked side by side. */
export async function waitReplicasCaughtUp(
  fleet: Fleet,
  replicas: string[],
  offset: number,
  timeoutMs: number,
): Promise<void> {
  const waits = replicas.map((replica) => {
    const caughtUp = async () => {
      const [info = []] = await ask(fleet, replica, [['INFO', 'replication']])
      return (replicationOffset(info) ?? -1) >= offset ? true : undefined
    }
    return waitUntil(`${replica} to reach the primary's offset ${offset}`, caughtUp, { timeoutMs, intervalMs: 50 })
  })
  await allOrFirstError(waits)
}

/** The Redis server every Sentinel names, as an address and port. */
export interface NamedPrimary {
  address: string
  port: number
}

/**
 * Wait (bounded) until every Sentinel names one same primary other than the one at `fromAddress`
 * (the Sentinels are asked side by side, every 100 ms); that primary.
 */
export async function waitSentinelsMoved(
  fleet: Fleet,
  sentinels: string[],
  masterName: string,
  fromAddress: string,
  timeoutMs: number,
): Promise<NamedPrimary> {
  const waits = sentinels.map((sentinel) => {
    const moved = async () => {
      const [addr = []] = await redisCommands(await fleet.conn(sentinel), sentinelEndpoint(fleet, sentinel), [
        ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName],
      ])
      const [address = '', port = NaN] = [addr[0], Number(addr[1])]
      return addr.length === 2 && address !== fromAddress && Number.isInteger(port) ? { address, port } : undefined
    }
    const what = `the Sentinel on ${sentinel} to name the new primary`
    return waitUntil(what, moved, { timeoutMs, intervalMs: 100 })
  })
  const named = await allOrFirstError(waits)
  const [first] = named
  const differ = named.filter((n) => n.address !== first?.address || n.port !== first.port)
  if (!first || differ.length) {
    const names = named.map((n) => `${n.address}:${n.port}`).join(', ')
    throw new Error(`the Sentinels name different primaries: ${names}`)
  }
  return first
}

/**
 * Let the old primary go. With `to` (the primary the Sentinels name now) it becomes its replica first
 * and keeps that across a restart (REPLICAOF, CONFIG REWRITE once its PING period is back), and its
 * clients are disconnected, so that the writes they had waiting never run on it; then the pause is
 * lifted. Without `to` (no switch happened) it stays the primary: PING period back, pause lifted.
 * Every step is tried; the first failure is thrown at the end.
 */
export async function releaseOldPrimary(fleet: Fleet, held: PausedPrimary, to?: NamedPrimary): Promise<void> {
  const period = ['CONFIG', 'SET', 'repl-ping-replica-period', held.pingPeriod]
  const commands = to
    ? [['REPLICAOF', to.address, to.port], period, ['CONFIG', 'REWRITE'], ['CLIENT', 'KILL', 'TYPE', 'normal']]
    : [period]
  commands.push(['CLIENT', 'UNPAUSE'])
  const replies = await ask(fleet, held.host, commands)
  const failed = commands
    .map((command, i) => ({ command, reply: replies[i]?.[0] }))
    .filter(({ command, reply }) => command[1] !== 'KILL' && reply !== 'OK')
  if (failed[0])
    throw new Error(`${failed[0].command.slice(0, 2).join(' ')} on ${held.host}: ${failed[0].reply ?? 'no reply'}`)
}

/**
 * The entries HAProxy's checks are about to conclude on once every Sentinel names the primary `to`:
 * each of the old primary's entries down (listed first: never two backends at quorum), then, when `to`
 * answers role:master, each of its own up. One per Sentinel in each host's backend (redis.cfg.ejs).
 */
export function switchedEntries(fleet: Fleet, from: string, to: string, toIsPrimary: boolean): ServerHealth[] {
  const sentinels = fleet.members('sentinel')
  const entries = (host: string, health: 'up' | 'down') =>
    sentinels.map((s) => ({ backend: redisBackendName(host), server: redisEntryName(host, s), health }))
  return [...entries(from, 'down'), ...(toIsPrimary ? entries(to, 'up') : [])]
}

/**
 * Tell every HAProxy at once that writes go to `to` now (the Sentinels all name it): the old primary's
 * entries down, then, once `to` answers role:master, its entries up. This only brings forward what the
 * checks conclude some `rise` × interval later; they keep running. Never fails the switch: a HAProxy that
 * does not answer (or `to` not yet master) is a warning, and its checks conclude on their own.
 */
export async function routeWritesTo(fleet: Fleet, from: string, to: string): Promise<void> {
  const warn = (why: string) => fleet.say(`WARNING: ${why}; HAProxy's checks will route to ${to} on their own`)
  try {
    const [info = []] = await ask(fleet, to, [['INFO', 'replication']])
    const primary = parseInfo(info).role === 'master'
    if (!primary) warn(`${to} does not answer role:master yet (${info[0] ?? 'no reply'})`)
    for (const problem of await forceServerHealth(fleet, switchedEntries(fleet, from, to, primary))) warn(problem)
  } catch (error) {
    warn(error instanceof Error ? error.message : String(error))
  }
}

/**
 * The handover's end: the old primary released (releaseOldPrimary) and, when the Sentinels named a new
 * primary, HAProxy told to route to it (routeWritesTo), side by side. Routing before the release is done
 * keeps every acknowledged write: the old primary runs no write while paused, and its pause is lifted only
 * after it is the new primary's replica. A release failure is thrown once both are done.
 */
export async function finishHandover(fleet: Fleet, held: PausedPrimary, to?: NamedPrimary): Promise<void> {
  const newPrimary = to && fleet.members('redis').find((h) => fleet.vars(h).address === to.address)
  if (to && !newPrimary) fleet.say(`WARNING: no redis host has the address ${to.address} the Sentinels name`)
  const [released] = await Promise.allSettled([
    releaseOldPrimary(fleet, held, to),
    newPrimary ? routeWritesTo(fleet, held.host, newPrimary) : undefined,
  ])
  if (released.status === 'rejected') throw released.reason
}
