/**
 * The firewall, the host certificates and the audit on the converged lab: the `certificates` and
 * `nftables` roles converged with `firewall_enabled` and `tls_enabled` given as extra variables (twice:
 * the second run changes nothing); a host outside a port's allowed set cannot connect to it while the
 * monitoring host can; the audit passes; a stray listener started on purpose makes it fail naming host
 * and port. The firewall is switched off again at the end, unless HASTACK_SITE_FIREWALL=on asks to keep
 * it for the checks that follow (the lab check of the whole suite with the firewall on).
 */
import type { SiteCheck } from './context.ts'

const SWITCHES = ['-e', 'firewall_enabled=true', '-e', 'tls_enabled=true']
const ROLES = ['-t', 'certificates,nftables']
const STRAY_PORT = 8765
const STRAY_UNIT = 'hastack-stray-listener'

export const security: SiteCheck = {
  name: 'security: firewall and certificates on, the audit passes and names a stray listener',
  destructive: false,
  async run(t, ctx) {
    const [monitoring] = ctx.hosts('monitoring')
    const outsider = ctx.hosts('all').find((h) => !ctx.hosts('monitoring').includes(h))!
    const target = ctx.hosts('all').find((h) => h !== monitoring && h !== outsider)!
    const first = await ctx.playbook('playbooks/site.ts', 'security-on', [...SWITCHES, ...ROLES], 600_000)
    t.equal(first.exitCode, 0, first.tail)
    t.comment(`certificates and firewall on: ${first.seconds.toFixed(0)} s (shared machine)`)
    if (process.env.HASTACK_SITE_FIREWALL !== 'on')
      t.teardown(async () => {
        const off = await ctx.playbook('playbooks/site.ts', 'security-off', ROLES, 600_000)
        if (off.exitCode !== 0) t.comment(`switching the firewall off failed:\n${off.tail}`)
      })
    const second = await ctx.playbook('playbooks/site.ts', 'security-again', [...SWITCHES, ...ROLES], 600_000)
    t.equal(second.exitCode, 0)
    t.same(second.changed, [], 'a second run changes nothing')

    const address = ctx.lab.host(target).address
    const connect = (from: string) => ctx.lab.ssh(from, `timeout 3 bash -c 'exec 3<>/dev/tcp/${address}/9100'`)
    t.equal((await connect(monitoring!)).code, 0, `${monitoring} (monitoring) reaches ${target}'s node_exporter`)
    t.not((await connect(outsider)).code, 0, `${outsider} (not monitoring) cannot reach ${target}'s node_exporter`)

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
