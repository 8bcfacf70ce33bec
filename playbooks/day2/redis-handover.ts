/**
 * A planned Redis primary change that loses no acknowledged write and needs no full resync. Before
 * SENTINEL FAILOVER the old primary's writes are paused (`CLIENT PAUSE … WRITE`: a client's write
 * waits, it is not refused) and every replica must reach its replication offset: the promoted
 * replica then holds every acknowledged write, and the other replicas follow it with a partial
 * resync (a replica ahead of the promoted one needs a full resync, which Redis holds back by
 * `repl-diskless-sync-delay`, 5 s, while the new primary refuses writes for want of a good replica).
 * Once every Sentinel names the new primary, the old primary's clients are disconnected (a paused
 * write never runs there; the client reconnects and writes to the new primary) and the pause lifted.
 */
import { waitUntil } from '../../lib/tasks/wait.ts'
import { parseInfo } from '../../roles/redis/cli.ts'
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

/** Pause writes on the primary for at most `ms`; its replication offset once paused. */
export async function pauseWrites(fleet: Fleet, primary: string, ms: number): Promise<number> {
  const [paused = [], info = []] = await ask(fleet, primary, [
    ['CLIENT', 'PAUSE', ms, 'WRITE'],
    ['INFO', 'replication'],
  ])
  if (paused[0] !== 'OK') throw new Error(`CLIENT PAUSE on ${primary}: ${paused[0] ?? 'no reply'}`)
  const offset = replicationOffset(info)
  if (offset === undefined) throw new Error(`${primary} gave no replication offset: ${info[0] ?? 'no reply'}`)
  return offset
}

/** Wait (bounded) until every replica has applied the primary's offset. */
export async function waitReplicasCaughtUp(
  fleet: Fleet,
  replicas: string[],
  offset: number,
  timeoutMs: number,
): Promise<void> {
  for (const replica of replicas) {
    const caughtUp = async () => {
      const [info = []] = await ask(fleet, replica, [['INFO', 'replication']])
      return (replicationOffset(info) ?? -1) >= offset ? true : undefined
    }
    await waitUntil(`${replica} to reach the primary's offset ${offset}`, caughtUp, { timeoutMs, intervalMs: 50 })
  }
}

/** Wait (bounded) until every Sentinel names a primary other than the one at `fromAddress`. */
export async function waitSentinelsMoved(
  fleet: Fleet,
  sentinels: string[],
  masterName: string,
  fromAddress: string,
  timeoutMs: number,
): Promise<void> {
  for (const sentinel of sentinels) {
    const moved = async () => {
      const [addr = []] = await redisCommands(await fleet.conn(sentinel), sentinelEndpoint(fleet, sentinel), [
        ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName],
      ])
      return addr.length === 2 && addr[0] !== fromAddress ? true : undefined
    }
    await waitUntil(`the Sentinel on ${sentinel} to name the new primary`, moved, { timeoutMs, intervalMs: 100 })
  }
}

/**
 * Lift the pause on the old primary; when the primary moved, first disconnect its clients, so that
 * the writes they had waiting never run on a server that is no longer the primary.
 */
export async function releaseOldPrimary(fleet: Fleet, host: string, moved: boolean): Promise<void> {
  const commands = [...(moved ? [['CLIENT', 'KILL', 'TYPE', 'normal']] : []), ['CLIENT', 'UNPAUSE']]
  const replies = await ask(fleet, host, commands)
  const unpaused = replies[replies.length - 1] ?? []
  if (unpaused[0] !== 'OK') throw new Error(`CLIENT UNPAUSE on ${host}: ${unpaused[0] ?? 'no reply'}`)
}
