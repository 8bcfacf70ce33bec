/**
 * Certificate renewal rolls (issue 14): a run with `tls_renew_margin_days` as long as `tls_cert_days` re-issues
 * every host certificate (each is then within the margin), and every service presents its host's new
 * certificate when the run ends, compared by serial with `openssl s_client` from a lab host: etcd (which
 * reads it on each handshake), PostgreSQL and Patroni's REST API (a Patroni reload), Redis (CONFIG SET),
 * Sentinel (restarted one at a time) and HAProxy's stats page (a hitless reload). Then the cluster is
 * healthy, a vote through HAProxy is still accepted, and a run with the normal margin changes nothing.
 * Skipped when the inventory's `tls_enabled` is off.
 */
import { tlsOn } from '../../../roles/stack.ts'
import type { SiteCheck, SiteContext } from './context.ts'

/** A renewal margin as long as the certificates' validity (365 days): every certificate is due. */
const FORCE = ['-e', 'tls_renew_margin_days=365']

interface Presented {
  label: string
  host: string
  port: number
  starttls?: string
}

/** Every TLS service of lab-small's hosts, as a client reaches it. */
function endpoints(ctx: SiteContext): Presented[] {
  const each = (group: string, port: number, service: string, starttls?: string) =>
    ctx.hosts(group).map((host) => ({ label: `${service} on ${host}`, host, port, starttls }))
  return [
    ...each('etcd', 2379, 'etcd'),
    ...each('postgres', 5432, 'PostgreSQL', 'postgres'),
    ...each('postgres', 8008, "Patroni's REST API"),
    ...each('redis', 6379, 'Redis'),
    ...each('sentinel', 26379, 'Sentinel'),
    ...each('haproxy', 7000, "HAProxy's stats page"),
  ]
}

/** The serial each endpoint presents, read from `from` (one SSH call; empty: no TLS answer). */
async function presentedSerials(ctx: SiteContext, from: string, list: Presented[]): Promise<string[]> {
  const lines = list.map((e) => {
    const starttls = e.starttls ? ` -starttls ${e.starttls}` : ''
    const connect = `${ctx.lab.host(e.host).address}:${String(e.port)}`
    return `echo "$(timeout 5 openssl s_client -connect ${connect}${starttls} </dev/null 2>/dev/null | openssl x509 -noout -serial)"`
  })
  const run = await ctx.lab.ssh(from, lines.join('\n'), { timeoutMs: 120_000 })
  return run.stdout
    .split('\n')
    .slice(0, list.length)
    .map((l) => l.trim().replace(/^serial=/, ''))
}

/** The serial of each host's certificate on disk. */
async function onDisk(ctx: SiteContext, host: string): Promise<string> {
  const r = await ctx.lab.ssh(host, 'openssl x509 -noout -serial -in /etc/hastack/tls/host.crt')
  return r.stdout.trim().replace(/^serial=/, '')
}

async function voteAccepted(ctx: SiteContext): Promise<number> {
  const address = ctx.clientAddress()
  const r = await fetch(`http://${address}:80/vote`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ voter: `renewal-${Date.now()}`, choice: 'a' }),
    signal: AbortSignal.timeout(10_000),
  })
  return r.status
}

export const renewal: SiteCheck = {
  name: 'renewal: renewed certificates are presented by every service, the cluster healthy, a re-run idle',
  destructive: false,
  async run(t, ctx) {
    if (!tlsOn(ctx.stackVars(), 'etcd')) {
      await t.test('renewal', { skip: 'tls_enabled is off in the inventory (HASTACK_SITE_TLS=off)' }, async () => {})
      return
    }
    const [from] = ctx.hosts('monitoring')
    const list = endpoints(ctx)
    const before = await presentedSerials(ctx, from!, list)
    t.notOk(before.includes(''), `every service presents a certificate (${list.length})`)

    const renew = await ctx.playbook('playbooks/site.ts', 'renewal', FORCE, 900_000)
    t.equal(renew.exitCode, 0, renew.tail)
    t.comment(`renewal run: ${renew.seconds.toFixed(0)} s (shared machine), totals ${JSON.stringify(renew.totals)}`)

    const after = await presentedSerials(ctx, from!, list)
    const disk = new Map<string, string>()
    for (const host of ctx.hosts('all')) disk.set(host, await onDisk(ctx, host))
    for (const [i, e] of list.entries()) {
      t.not(after[i], before[i], `${e.label}: a new certificate`)
      t.equal(after[i], disk.get(e.host), `${e.label}: the renewed one on disk`)
    }

    const members = (await ctx.patroniCluster()) ?? []
    t.equal(members.filter((m) => m.role === 'leader').length, 1, 'PostgreSQL: one leader')
    t.ok(
      members.filter((m) => m.role !== 'leader').every((m) => m.state === 'streaming' || m.state === 'running'),
      `every replica streams or runs (${members.map((m) => `${m.name} ${m.state}`).join(', ')})`,
    )
    const [member] = ctx.hosts('etcd')
    const etcd = await ctx.lab.ssh(member!, 'sudo -n hastack-etcdctl endpoint health --cluster')
    t.equal(etcd.code, 0, `etcd: every member healthy\n${etcd.stdout}${etcd.stderr}`)
    t.equal(await voteAccepted(ctx), 201, 'a vote through HAProxy is accepted')

    const again = await ctx.playbook('playbooks/site.ts', 'renewal-again', [], 900_000)
    t.equal(again.exitCode, 0, again.tail)
    t.same(again.changed, [], 'a run with the normal margin changes nothing')
  },
}
