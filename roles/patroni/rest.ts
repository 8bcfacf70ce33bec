/**
 * Patroni's REST API, called with curl on a cluster host: reads without
 * credentials, unsafe calls (PATCH /config, POST /restart, /switchover) with
 * the API's basic-auth user. Credentials and bodies travel in a curl config
 * read from standard input, never on a command line. Over HTTPS (`patroni_api_tls`)
 * curl verifies the member's certificate with the stack's CA. Also the one `isLeader`
 * (the tests import it too) and the wait for a leader built on it.
 */
import type { CommandProbe, Connection, HostRun, Inventory, Plan, Task } from '../../lib/types.ts'
import { httpGetCommand } from '../../lib/facts/http.ts'
import { probeCommand } from '../../lib/facts/probes.ts'
import { defineTask, waitUntil } from '../../lib/tasks/index.ts'
import { groupMembers } from '../stack.ts'
import { patroniApiCa, patroniApiUrl } from '../tls.ts'

export interface PatroniMember {
  name: string
  role: string
  state: string
  host: string
  api_url?: string
  lag?: number | string
  pending_restart?: boolean
  timeline?: number
}

/** A curl config string value: quotes and backslashes escaped. */
function curlString(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`
}

export interface RestAuth {
  user: string
  password: string
}

export interface RestResponse {
  status: number
  body: string
}

export interface RestOptions {
  auth?: RestAuth
  body?: unknown
  timeoutS?: number
  /** The CA of an https URL; from a HostRun, its own `patroniApiCa` when not given. */
  caFile?: string
}

/** Call the API from the host. Status 0 means no answer. */
export async function rest(
  conn: Connection | HostRun,
  method: string,
  url: string,
  opts: RestOptions = {},
): Promise<RestResponse> {
  const caFile = opts.caFile ?? ('vars' in conn ? patroniApiCa(conn.vars) : undefined)
  if (url.startsWith('https:') && caFile === undefined) throw new Error(`${url}: an https call needs the CA file`)
  const lines = [
    `url = ${curlString(url)}`,
    `request = ${curlString(method)}`,
    `max-time = ${opts.timeoutS ?? 10}`,
    'silent',
    'show-error',
    'write-out = "\\n%{http_code}"',
  ]
  if (url.startsWith('https:')) lines.push(`cacert = ${curlString(caFile!)}`)
  if (opts.auth) lines.push(`user = ${curlString(`${opts.auth.user}:${opts.auth.password}`)}`)
  if (opts.body !== undefined)
    lines.push('header = "Content-Type: application/json"', `data = ${curlString(JSON.stringify(opts.body))}`)
  const run = 'run' in conn ? conn.run.bind(conn) : (conn as HostRun).query.bind(conn)
  const result = await run('curl -K -', {
    stdin: lines.join('\n') + '\n',
    sudo: false,
    timeoutMs: ((opts.timeoutS ?? 10) + 10) * 1000,
  })
  return restResponse(result.stdout)
}

/**
 * curl's output as `rest` and `httpGetCommand` (lib/facts/http.ts) ask for it: the body, a newline, the HTTP
 * status (0: no answer).
 */
export function restResponse(stdout: string): RestResponse {
  const cut = stdout.lastIndexOf('\n')
  const status = Number(stdout.slice(cut + 1).trim()) || 0
  return { status, body: cut >= 0 ? stdout.slice(0, cut) : '' }
}

/** The same GET as a typed probe (a batch may answer an https one without a curl process of its own). */
export function restGetProbe(url: string, caFile?: string): CommandProbe {
  httpGetCommand(url, caFile) // refuses an https URL without its CA file, as the command does
  return { kind: 'get', url, ...(caFile === undefined ? {} : { caFile }) }
}

/**
 * Whether this member leads (its API answers 200 to `GET /primary`), read as a check's probe: in a run of tasks
 * it is answered with the others' in one round trip, from the run's early batch while the host is settled, so
 * it is for a role's decisions, never for a wait (`isPatroniLeader` in roles/pgbackrest/wal.ts reads live).
 */
export async function leadsNow(h: HostRun): Promise<boolean> {
  const [primary] = await h.queryAll([restGetProbe(`${patroniApiUrl(h.vars)}/primary`, patroniApiCa(h.vars))])
  return restResponse(primary!.stdout).status === 200
}

/** The members in a `GET /cluster` answer, undefined unless it is a 2xx JSON document. */
export function membersIn(response: RestResponse): PatroniMember[] | undefined {
  return documentOf<{ members?: PatroniMember[] }>(response)?.members
}

/** GET a JSON document; undefined when the API does not answer with 2xx. */
export async function restJson<T>(conn: Connection | HostRun, url: string, caFile?: string): Promise<T | undefined> {
  return documentOf<T>(await rest(conn, 'GET', url, { caFile }))
}

/** An answer's JSON document; undefined unless it is 2xx JSON. */
export function documentOf<T>(response: RestResponse): T | undefined {
  if (response.status < 200 || response.status >= 300) return undefined
  try {
    return JSON.parse(response.body) as T
  } catch {
    return undefined
  }
}

/** The members of the cluster as Patroni sees them (GET /cluster on one member). */
export async function clusterMembers(
  conn: Connection | HostRun,
  apiBase: string,
): Promise<PatroniMember[] | undefined> {
  const c = await restJson<{ members: PatroniMember[] }>(conn, `${apiBase}/cluster`)
  return c?.members
}

export function isLeader(m: PatroniMember): boolean {
  return m.role === 'leader' || m.role === 'master' || m.role === 'standby_leader'
}

/**
 * Wait (bounded) until the cluster names a leader, read through `GET /cluster`; skipped in check mode. The
 * first read is a probe: in a run of tasks it is answered with the others' in one round trip.
 */
export function waitForLeader(h: HostRun, apiBase: string, timeoutMs = 120_000): Task {
  const firstProbe = restGetProbe(`${apiBase}/cluster`, patroniApiCa(h.vars))
  const firstTry = probeCommand(firstProbe)
  const probes = [firstProbe]
  return defineTask('Wait for the cluster to have a leader', { probes }, async (ctx): Promise<Plan> => {
    if (ctx.check) return { change: false, skip: true, reason: 'not waited for in check mode' }
    const first = membersIn(restResponse((await ctx.conn.run(firstTry)).stdout))?.find(isLeader)?.name
    if (first) return { change: false, reason: `${first} leads` }
    const leader = async () => (await clusterMembers(h, apiBase))?.find(isLeader)?.name
    const name = await waitUntil('the cluster to have a leader', leader, { timeoutMs, intervalMs: 1000 })
    return { change: false, reason: `${name} leads` }
  })
}

/** The REST API of each Patroni member of the inventory, by member name (the inventory host name). */
export function inventoryApis(inventory: Inventory, group: string): Map<string, string> {
  const apis = new Map<string, string>()
  for (const name of groupMembers(inventory, group)) {
    const vars = inventory.hosts.get(name)!.vars
    apis.set(name, patroniApiUrl(vars))
  }
  return apis
}

/**
 * Where an authenticated call for a member goes: its inventory address, never the
 * `api_url` the DCS holds (anyone who can write to etcd could point it elsewhere
 * and collect the REST credentials). A member the inventory does not know is refused.
 */
export function memberApi(apis: Map<string, string>, member: PatroniMember): string {
  const base = apis.get(member.name)
  if (!base)
    throw new Error(
      `Patroni member ${member.name} is not in the inventory: the REST credentials go only to its members`,
    )
  return base
}
