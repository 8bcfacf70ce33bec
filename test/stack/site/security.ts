/**
 * The firewall and the audit on the converged lab, which runs with both TLS and the firewall on (the
 * defaults): hastack's table is loaded on every host; from each lab host, every port of another host whose
 * allowed set leaves that host out is dropped (no answer at all: the firewall, not a missing listener), while
 * the monitoring host still reaches node_exporter; this machine (hastack's control address, the admin
 * network) reaches the management ports (etcd's client port) but not a peer link (etcd's peer port); the
 * audit passes; a stray listener started on purpose makes it fail naming host and port. With
 * HASTACK_SITE_FIREWALL=off (the lab converged without the firewall) only the audit part runs.
 */
import { Socket } from 'node:net'
import { loadInventory } from '../../../lib/inventory/index.ts'
import { allRoles } from '../../../roles/index.ts'
import { stackExposures, type Exposure } from '../../../roles/nftables/exposure.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'

const STRAY_PORT = 8765
const STRAY_UNIT = 'hastack-stray-listener'
/** How long a probe waits for an answer: a dropped SYN gets none, so the probe runs into this. */
const PROBE_SECONDS = 2

/** What a TCP connection from this machine met: a listener, a refusal (RST) or silence (dropped). */
function connectFromHere(address: string, port: number): Promise<'open' | 'refused' | 'dropped'> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (outcome: 'open' | 'refused' | 'dropped') => {
      socket.destroy()
      resolve(outcome)
    }
    socket.setTimeout(PROBE_SECONDS * 1000, () => done('dropped'))
    socket.once('connect', () => done('open'))
    socket.once('error', () => done('refused'))
    socket.connect(port, address)
  })
}

/** The TCP service ports (not SSH) of the other hosts that no exposure opens to `from`. */
function closedTo(exposures: Exposure[], from: string): Exposure[] {
  const key = (e: Exposure) => `${e.host}:${String(e.port)}`
  const open = new Set(exposures.filter((e) => e.sources.anywhere || e.sources.hosts.includes(from)).map(key))
  const tcp = exposures.filter((e) => e.protocol === 'tcp' && !e.service.includes('ssh') && e.host !== from)
  return tcp.filter((e) => !open.has(key(e)))
}

/**
 * Probe every port closed to `from`, all at once from that host: `timeout` exits 124 when the connection got
 * no answer (dropped), 1 when it was refused by the host (nothing listening). One line per probe.
 */
async function probeFrom(ctx: SiteContext, from: string, closed: Exposure[]): Promise<Map<string, string>> {
  const target = (e: Exposure) => `${ctx.lab.host(e.host).address}/${String(e.port)}`
  const probes = closed.map(
    (e) => `(timeout ${PROBE_SECONDS} bash -c 'exec 3<>/dev/tcp/${target(e)}' 2>/dev/null; echo "${target(e)} $?") &`,
  )
  const run = await ctx.lab.ssh(from, `${probes.join('\n')}\nwait`)
  return new Map(
    run.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  )
}

async function firewallHolds(t: Tap, ctx: SiteContext): Promise<void> {
  for (const host of ctx.hosts('all'))
    t.equal((await ctx.lab.ssh(host, 'sudo -n nft list table inet hastack >/dev/null')).code, 0, `${host}: loaded`)
  const inventory = await loadInventory(ctx.inventory, { roles: allRoles, writeSecrets: false })
  const exposures = stackExposures(inventory)
  const started = Date.now()
  let probed = 0
  for (const from of ctx.hosts('all')) {
    const closed = closedTo(exposures, from)
    const outcomes = await probeFrom(ctx, from, closed)
    for (const e of closed) {
      const outcome = outcomes.get(`${ctx.lab.host(e.host).address}/${String(e.port)}`)
      t.equal(outcome, '124', `${from} -> ${e.host}:${String(e.port)} (${e.service}): dropped`)
      probed++
    }
  }
  t.ok(probed > 0, 'some port of the stack is closed to some lab host')
  t.comment(`${probed} closed ports probed from every lab host in ${((Date.now() - started) / 1000).toFixed(1)} s`)

  const [monitoring] = ctx.hosts('monitoring')
  const other = ctx.hosts('all').find((h) => h !== monitoring)!
  const exporter = `${ctx.lab.host(other).address}/9100`
  const allowed = await ctx.lab.ssh(monitoring!, `timeout ${PROBE_SECONDS} bash -c 'exec 3<>/dev/tcp/${exporter}'`)
  t.equal(allowed.code, 0, `${monitoring} (monitoring) reaches ${other}'s node_exporter`)

  const [member] = ctx.hosts('etcd')
  const address = ctx.lab.host(member!).address
  t.equal(await connectFromHere(address, 2379), 'open', `the admin network reaches ${member}'s etcd client port`)
  t.equal(await connectFromHere(address, 2380), 'dropped', `but not its peer port`)
}

export const security: SiteCheck = {
  name: 'security: the firewall drops what a host does not need, the audit passes and names a stray listener',
  destructive: false,
  async run(t, ctx) {
    if (process.env.HASTACK_SITE_FIREWALL === 'off') t.comment('HASTACK_SITE_FIREWALL=off: no firewall to check')
    else await firewallHolds(t, ctx)

    const target = ctx.hosts('all').at(-1)!
    const clean = await ctx.playbook('playbooks/audit.ts', 'audit-clean', [], 180_000)
    t.equal(clean.exitCode, 0, clean.stdout)
    t.comment(`audit of the closed stack: ${clean.seconds.toFixed(1)} s`)

    const start =
      `sudo -n systemd-run --unit=${STRAY_UNIT} --property=RuntimeMaxSec=300 ` +
      `python3 -m http.server ${STRAY_PORT} --bind 0.0.0.0`
    t.equal((await ctx.lab.ssh(target, start)).code, 0, 'a stray listener started')
    t.teardown(() => ctx.lab.ssh(target, `sudo -n systemctl stop ${STRAY_UNIT}`).then(() => undefined))
    await ctx.lab.ssh(target, `for i in $(seq 1 20); do ss -Hltn | grep -q ':${STRAY_PORT} ' && break; sleep 0.5; done`)
    const stray = await ctx.playbook('playbooks/audit.ts', 'audit-stray', [], 180_000)
    t.equal(stray.exitCode, 2, 'the audit fails')
    t.match(stray.stdout, new RegExp(`FINDING ${target} port ${STRAY_PORT}: unexpected listener`), 'naming it')
  },
}
