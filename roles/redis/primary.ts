/**
 * Who is the Redis primary: the address most Sentinels name now; when no Sentinel
 * answers (all of them new or down), the one Redis server that says it is a primary;
 * before any Redis or Sentinel runs (the first deploy), the inventory's initial
 * primary. Later runs follow the running stack, so a promoted replica is never turned
 * back, and two servers that both say primary stop the run instead of being guessed at.
 */
import type { HostRun, HostView } from '../../lib/types.ts'
import { cliEndpoint, isError, redisCli } from './cli.ts'

export interface PrimaryAnswer {
  /** The primary's address. */
  address: string
  /** Where the answer came from. */
  source: 'sentinel' | 'servers' | 'inventory'
  /** Each Sentinel's answer (undefined: no answer). */
  answers: Record<string, string | undefined>
  /** Each Redis server's role (`master`, `slave`; undefined: no answer), asked only when no Sentinel answered. */
  roles?: Record<string, string | undefined>
}

/** The inventory host chosen as the first primary: `redis_initial_primary`, else the first host of `redis`. */
export function initialPrimaryHost(h: HostView): string {
  const chosen = h.vars.redis_initial_primary
  if (typeof chosen === 'string' && chosen !== '') return chosen
  const first = h.inventory.groupHosts('redis')[0]
  if (!first) throw new Error('the redis group has no hosts')
  return first
}

/**
 * The answer most Sentinels gave, when at least one answered (ties: the first Sentinel's answer in
 * inventory order).
 */
export function majority(answers: Record<string, string | undefined>): string | undefined {
  const counts = new Map<string, number>()
  for (const a of Object.values(answers)) if (a) counts.set(a, (counts.get(a) ?? 0) + 1)
  let best: string | undefined
  let most = 0
  for (const [addr, n] of counts) {
    if (n > most) {
      best = addr
      most = n
    }
  }
  return best
}

/** One host of a group as asked by `askEvery`: its name, its address and its reply (undefined: none, or an error). */
interface Asked {
  host: string
  address: string
  reply: string[] | undefined
}

/** One command to every host of `group` at its address and `port`, side by side, each bounded at 10 s. */
async function askEvery(
  h: HostRun,
  group: string,
  port: number,
  password: string,
  command: (string | number)[],
): Promise<Asked[]> {
  return Promise.all(
    h.inventory.groupHosts(group).map(async (host) => {
      const address = String(h.hostvars(host).address)
      const replies = await redisCli(h, cliEndpoint(h.vars, address, port, password), [command], 10_000).catch(
        () => undefined,
      )
      const reply = replies?.[0]
      return { host, address, reply: reply && !isError(reply) ? reply : undefined }
    }),
  )
}

/** Ask every Sentinel of the inventory which address it names as the primary. */
export async function askSentinels(h: HostRun): Promise<Record<string, string | undefined>> {
  const name = String(h.vars.redis_master_name)
  const asked = await askEvery(h, 'sentinel', Number(h.vars.sentinel_port), String(h.vars.sentinel_password), [
    'SENTINEL',
    'get-master-addr-by-name',
    name,
  ])
  const named = (reply?: string[]) => (/^\d+\.\d+\.\d+\.\d+$/.test(reply?.[0] ?? '') ? reply![0] : undefined)
  return Object.fromEntries(asked.map((a) => [a.host, named(a.reply)]))
}

/** Ask every Redis server of the inventory for its role (`ROLE`'s first word: `master` or `slave`), by address. */
export async function askServers(h: HostRun): Promise<Record<string, string | undefined>> {
  const asked = await askEvery(h, 'redis', Number(h.vars.redis_port), String(h.vars.redis_password), ['ROLE'])
  const role = (reply?: string[]) => (reply?.[0] === 'master' || reply?.[0] === 'slave' ? reply[0] : undefined)
  return Object.fromEntries(asked.map((a) => [a.address, role(a.reply)]))
}

/**
 * The primary the Redis servers name when no Sentinel answers: the one that says `master`; undefined when none
 * answers as one (nothing runs yet). Two or more primaries are a split the run must not guess at: it throws.
 */
export function primaryFromServers(roles: Record<string, string | undefined>): string | undefined {
  const primaries = Object.keys(roles).filter((a) => roles[a] === 'master')
  if (primaries.length > 1)
    throw new Error(
      `no Sentinel answers and ${primaries.length} Redis servers say they are the primary (${primaries.join(', ')}): ` +
        'start the Sentinels (or make all but one a replica) before this run, which will not choose between them',
    )
  return primaries[0]
}

/** The current primary, asked once per play batch (every host of the batch gets the same answer). */
export function currentPrimary(h: HostRun): Promise<PrimaryAnswer> {
  return h.once('redis:primary', async () => {
    const answers = await askSentinels(h)
    const fromSentinels = majority(answers)
    if (fromSentinels) return { address: fromSentinels, source: 'sentinel', answers }
    const roles = await askServers(h)
    const fromServers = primaryFromServers(roles)
    if (fromServers) return { address: fromServers, source: 'servers', answers, roles }
    return { address: String(h.hostvars(initialPrimaryHost(h)).address), source: 'inventory', answers, roles }
  })
}
