/**
 * The drill's readings of the live stack, each over fresh SSH connections (a host the drill killed and
 * started again needs a new one): a fleet that closes what it opened, the stack's problems (playbooks/day2's
 * judgement plus any app server an HAProxy host has marked down), and a bounded wait until there are none.
 */
import { SshConnection } from '../../lib/connection/ssh.ts'
import { waitUntil } from '../../lib/tasks/wait.ts'
import type { Connection, Inventory } from '../../lib/types.ts'
import { fleetOf, type Fleet } from '../day2/fleet.ts'
import { stackProblems } from '../day2/health.ts'
import { componentMembers, limitsOf, readStack, type StackState } from '../day2/stack-state.ts'

export interface LiveFleet {
  fleet: Fleet
  close(): Promise<void>
}

/** A fleet whose connections open on first use and all close with `close()`. */
export function liveFleet(inventory: Inventory, say: (line: string) => void): LiveFleet {
  const opened: Connection[] = []
  const connect = async (host: string) => {
    const conn = await SshConnection.connect(inventory.hosts.get(host)!.connection, { retries: 1 })
    opened.push(conn)
    return conn
  }
  return {
    fleet: fleetOf(inventory, connect, say),
    close: async () => {
      await Promise.all(opened.map((c) => c.close().catch(() => undefined)))
    },
  }
}

/** Every problem of the stack, as sentences (none: healthy). */
export function drillProblems(fleet: Fleet, state: StackState): string[] {
  const problems = Object.values(stackProblems(state, componentMembers(fleet), limitsOf(fleet))).flat()
  for (const reading of state.haproxy)
    for (const [backend, servers] of Object.entries(reading.backends ?? {}))
      if (backend.startsWith('app_') && servers.down.length)
        problems.push(`HAProxy on ${reading.host}: ${backend} has ${servers.down.join(', ')} down`)
  return problems
}

/** One reading of the stack over fresh connections, with its problems. */
export async function readLive(inventory: Inventory, say: (line: string) => void) {
  const live = liveFleet(inventory, say)
  try {
    const state = await readStack(live.fleet)
    return { state, problems: drillProblems(live.fleet, state) }
  } finally {
    await live.close()
  }
}

/** Wait (bounded) until the stack reads healthy twice in a row; resolves to the seconds it took. */
export async function waitHealthy(inventory: Inventory, say: (line: string) => void, timeoutMs: number) {
  const started = Date.now()
  let inARow = 0
  let last: string[] = []
  const healthy = async () => {
    last = (await readLive(inventory, say)).problems
    inARow = last.length === 0 ? inARow + 1 : 0
    return inARow >= 2 ? true : undefined
  }
  await waitUntil('a healthy stack', healthy, { timeoutMs, intervalMs: 1000 }).catch((error: Error) => {
    throw new Error(`${error.message}; still: ${last.join('; ')}`)
  })
  return (Date.now() - started) / 1000
}
