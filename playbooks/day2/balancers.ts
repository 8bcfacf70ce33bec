/**
 * The client-facing tier in a rolling restart. An app host is drained at every HAProxy first (admin
 * socket `set server … state drain`, then a bounded wait until its sessions reach 0), its programs
 * restart, and once they answer `/healthz` on the host it is made `ready` again. An HAProxy host
 * gives the VIP to a peer first when it holds it (its app answers close their client connections for
 * as long as an idle one can last, so none is cut by the move; its keepalived is stopped, which
 * sends a priority-0 advert; the peer must hold the address), then its configuration is checked (`haproxy -c`)
 * and HAProxy reloaded (master-worker: the listeners are handed over, no connection refused), and
 * keepalived started again (as BACKUP: `nopreempt` keeps the VIP where it is). A Redis switchover
 * forces its endpoint entries' health at every HAProxy at once (`forceServerHealth`).
 */
import { delay, probeCommand, waitUntil } from '../../lib/tasks/wait.ts'
import { UNITS as APP_UNITS } from '../../roles/app/render.ts'
import type { Fleet } from './fleet.ts'
import { adminCommand, holdsAddress } from './readers.ts'

/** The HAProxy backends that carry an app host's programs (templates/haproxy/app.cfg.ejs). */
export const APP_BACKENDS = ['app_vote', 'app_result'] as const

/** The app's units, in the order they restart. */
export const APP_SERVICE_UNITS = Object.values(APP_UNITS).map((u) => u.unit)

/** HAProxy's configuration, as the haproxy role writes it. */
export const HAPROXY_CONFIG = '/etc/haproxy/haproxy.cfg'

/** The current sessions (`scur`) of one server in the given backends, summed, from `show stat` CSV. */
export function serverSessions(csv: string, backends: readonly string[], server: string): number {
  const lines = csv.split('\n').filter(Boolean)
  const head = (lines[0] ?? '').replace(/^# /, '').split(',')
  const scur = head.indexOf('scur')
  if (scur < 0) throw new Error(`no statistics from HAProxy: ${lines[0] ?? 'no output'}`)
  let total = 0
  for (const line of lines.slice(1)) {
    const f = line.split(',')
    if (backends.includes(f[0]!) && f[1] === server) total += Number(f[scur] ?? 0)
  }
  return total
}

/** Set the host's server to `drain` or `ready` in each of the backends of every HAProxy host. */
export async function setServerState(
  fleet: Fleet,
  backends: readonly string[],
  host: string,
  state: 'drain' | 'ready',
): Promise<void> {
  for (const balancer of fleet.members('haproxy')) {
    const conn = await fleet.conn(balancer)
    for (const backend of backends) {
      const answer = (await adminCommand(conn, `set server ${backend}/${host} state ${state}`)).trim()
      if (answer) throw new Error(`HAProxy on ${balancer}: set server ${backend}/${host} state ${state}: ${answer}`)
    }
  }
}

/** A health state forced on one server entry of one backend (admin socket `set server … health …`). */
export interface ServerHealth {
  backend: string
  server: string
  health: 'up' | 'down'
}

/** Backend and server names as HAProxy's admin socket reads them: one word, no `;`. */
const ADMIN_WORD = /^[A-Za-z0-9_.-]+$/

/**
 * Force the entries' health at every HAProxy host at once: one admin-socket line per host, its commands
 * `;`-separated (HAProxy runs them in order, so list the entries to take down first). `health up` sets
 * the entry's check counter to rise + fall - 1 (it takes `fall` failed checks to go down again), `health
 * down` to 0 (`rise` good checks to come up); the checks go on and may change the state again. Never
 * rejects for a host: each host that does not answer, or answers an error, comes back as a warning.
 */
export async function forceServerHealth(fleet: Fleet, entries: readonly ServerHealth[]): Promise<string[]> {
  const bad = entries.find((e) => !ADMIN_WORD.test(e.backend) || !ADMIN_WORD.test(e.server))
  if (bad) throw new Error(`not a backend/server name HAProxy's admin socket can take: ${bad.backend}/${bad.server}`)
  if (!entries.length) return []
  const line = entries.map((e) => `set server ${e.backend}/${e.server} health ${e.health}`).join('; ')
  const told = await Promise.allSettled(
    fleet.members('haproxy').map(async (balancer) => {
      const answer = (await adminCommand(await fleet.conn(balancer), line)).trim()
      if (answer) throw new Error(`HAProxy on ${balancer}: ${answer}`)
    }),
  )
  return told.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.message ?? r.reason)] : []))
}

/** Set the app host's servers to `drain` or `ready` in every app backend of every HAProxy host. */
export async function setAppServerState(fleet: Fleet, host: string, state: 'drain' | 'ready'): Promise<void> {
  await setServerState(fleet, APP_BACKENDS, host, state)
}

/** Drain the app host at every HAProxy and wait (bounded) until no session is left on it; the seconds it took. */
export async function drainApp(fleet: Fleet, host: string, timeoutMs: number): Promise<number> {
  const started = Date.now()
  await setAppServerState(fleet, host, 'drain')
  const idle = async () => {
    let sessions = 0
    for (const balancer of fleet.members('haproxy'))
      sessions += serverSessions(await adminCommand(await fleet.conn(balancer), 'show stat'), APP_BACKENDS, host)
    return sessions === 0 ? true : undefined
  }
  await waitUntil(`the sessions on ${host}'s app programs to end`, idle, { timeoutMs, intervalMs: 200 })
  return (Date.now() - started) / 1000
}

/** Restart the app's programs on the host and wait (bounded) until vote and result answer /healthz there. */
export async function restartApp(fleet: Fleet, host: string, timeoutMs: number): Promise<void> {
  const conn = await fleet.conn(host)
  const r = await conn.run(['systemctl', 'restart', ...APP_SERVICE_UNITS], { timeoutMs })
  if (r.code !== 0) throw new Error(`systemctl restart ${APP_SERVICE_UNITS.join(' ')} failed: ${r.stderr.trim()}`)
  await appAnswers(fleet, host, timeoutMs)
}

/** Wait (bounded) until the host's vote and result programs answer /healthz on its address. */
export async function appAnswers(fleet: Fleet, host: string, timeoutMs: number): Promise<void> {
  const v = fleet.vars(host)
  const conn = await fleet.conn(host)
  for (const port of [v.app_vote_port, v.app_result_port]) {
    const probe = probeCommand({ url: `http://${v.address}:${port}/healthz` })
    const answers = async () => (await conn.run(probe, { sudo: false, timeoutMs: 10_000 })).code === 0 || undefined
    await waitUntil(`the app on ${host} to answer /healthz on port ${port}`, answers, { timeoutMs, intervalMs: 200 })
  }
}

/** The VIP's address when the inventory sets one on the balancers. */
export function vipOf(fleet: Fleet): string | undefined {
  const [balancer] = fleet.members('haproxy')
  const vip = balancer ? fleet.vars(balancer).vip_address : undefined
  return typeof vip === 'string' && vip ? vip : undefined
}

/** The app frontends' `vip_moving` ACLs (templates/haproxy/app.cfg.ejs), by their unique ids. */
export const VIP_MOVING_ACLS = ['#9101', '#9102']

/**
 * An idle keep-alive connection to the app frontends lasts at most their `timeout http-request`
 * (10 s): that long after every answer started closing its connection, none from before is left.
 */
export const KEEP_ALIVE_BOUND_MS = 11_000

/** Make every app answer on the host close its client connection (on), or stop doing so (off). */
export async function closeClientConnections(fleet: Fleet, host: string, on: boolean): Promise<void> {
  const conn = await fleet.conn(host)
  for (const acl of VIP_MOVING_ACLS) {
    const answer = (await adminCommand(conn, `${on ? 'add' : 'del'} acl ${acl} 0.0.0.0/0`)).trim()
    const fine = answer === '' || answer === 'Done.' || (!on && /not found|no such/i.test(answer))
    if (!fine) throw new Error(`HAProxy on ${host}: ${on ? 'add' : 'del'} acl ${acl}: ${answer}`)
  }
}

/**
 * When the host holds the VIP: stop its keepalived (a priority-0 advert hands the VIP over at once)
 * and wait (bounded) until one peer holds it. The peer that holds it now (keepalived is to be started
 * again on the host); undefined when the host did not hold it (nothing was touched).
 */
export async function moveVipAway(
  fleet: Fleet,
  host: string,
  timeoutMs: number,
  keepAliveMs = KEEP_ALIVE_BOUND_MS,
): Promise<string | undefined> {
  const vip = vipOf(fleet)
  if (!vip || !(await holdsAddress(await fleet.conn(host), vip))) return undefined
  const peers = fleet.members('haproxy').filter((h) => h !== host)
  if (!peers.length) throw new Error(`${host} holds the VIP ${vip} and no other haproxy host can take it`)
  if (fleet.members('app').length) {
    // Connections a client keeps to the VIP would be cut by the move: have them closed first.
    await closeClientConnections(fleet, host, true)
    await delay(keepAliveMs)
  }
  const stop = await (await fleet.conn(host)).run(['systemctl', 'stop', 'keepalived'], { timeoutMs })
  if (stop.code !== 0) throw new Error(`systemctl stop keepalived on ${host} failed: ${stop.stderr.trim()}`)
  const holder = async () => {
    if (await holdsAddress(await fleet.conn(host), vip)) return undefined
    for (const peer of peers) if (await holdsAddress(await fleet.conn(peer), vip)) return peer
    return undefined
  }
  return waitUntil(`a peer of ${host} to hold the VIP ${vip}`, holder, { timeoutMs, intervalMs: 100 })
}

/**
 * After a VIP move: start keepalived again on the host (it comes back as BACKUP and does not take the
 * VIP back) and let its app answers keep their connections again (a reload has already done so).
 */
export async function vipMoveDone(fleet: Fleet, host: string, timeoutMs: number): Promise<void> {
  const r = await (await fleet.conn(host)).run(['systemctl', 'start', 'keepalived'], { timeoutMs })
  if (r.code !== 0) throw new Error(`systemctl start keepalived on ${host} failed: ${r.stderr.trim()}`)
  if (fleet.members('app').length) await closeClientConnections(fleet, host, false)
}

/** Check HAProxy's configuration, then reload it (hitless); the admin socket must answer again. */
export async function reloadBalancer(fleet: Fleet, host: string, timeoutMs: number): Promise<void> {
  const conn = await fleet.conn(host)
  const check = await conn.run(['haproxy', '-c', '-f', HAPROXY_CONFIG], { timeoutMs: 30_000 })
  if (check.code !== 0)
    throw new Error(`haproxy -c refuses ${HAPROXY_CONFIG} on ${host}, not reloaded: ${check.stderr.trim()}`)
  const reload = await conn.run(['systemctl', 'reload', 'haproxy'], { timeoutMs })
  if (reload.code !== 0) throw new Error(`systemctl reload haproxy on ${host} failed: ${reload.stderr.trim()}`)
  const answers = async () => ((await adminCommand(conn, 'show info')).includes('Pid:') ? true : undefined)
  await waitUntil(`HAProxy on ${host} to answer after the reload`, answers, { timeoutMs, intervalMs: 200 })
}
