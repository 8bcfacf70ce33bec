/**
 * pgBackRest over TLS (`pgbackrest_tls`, issue 13), seen from a member that is not the repository host (skipped
 * when the inventory's TLS or the switch is off): the repository host's TLS server listens on its address only;
 * the member's archive-get goes through it and is answered; the member's certificate is refused for another
 * stanza, and a certificate without the member's CommonName (its host certificate) is refused. Ten lookups of a
 * history file no timeline has, over TLS and over the SSH link the members still have, are timed and printed:
 * each lookup of a promotion costs this inside the switchover's write pause. Cheap: nothing is converged.
 */
import { tlsOn } from '../../../roles/stack.ts'
import { tlsFiles } from '../../../roles/tls.ts'
import type { SiteCheck } from './context.ts'

const LOOKUPS = 10
/** Timeline 0 has no history file anywhere: the repository answers "not found" (exit 1). */
const NO_SUCH_HISTORY = '00000000.history'

export const pgbackrestTls: SiteCheck = {
  name: 'pgbackrest-tls: members reach the repository over its TLS server, for their stanza only',
  destructive: false,
  async run(t, ctx) {
    const vars = ctx.stackVars()
    if (!tlsOn(vars, 'pgbackrest')) {
      const reason = 'tls_enabled or pgbackrest_tls is off in the inventory'
      await t.test('pgBackRest TLS checks', { skip: reason }, async () => {})
      return
    }
    const [repository] = ctx.hosts(String(vars.pgbackrest_group))
    const member = ctx.hosts(String(vars.patroni_group)).find((h) => h !== repository)!
    const stanza = String(vars.pgbackrest_stanza)
    const port = Number(vars.pgbackrest_tls_port)
    const address = ctx.lab.host(repository!).address

    const listening = await ctx.lab.ssh(repository!, `sudo -n ss -Hltn 'sport = :${port}'`)
    t.same(
      listening.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[3]),
      [`${address}:${port}`],
      `${repository}: the server listens on its address only`,
    )

    const asPostgres = (args: string) =>
      ctx.lab.ssh(member, `cd /tmp && sudo -n runuser -u postgres -- pgbackrest ${args} 2>&1`, { timeoutMs: 60_000 })
    const lookup = (extra = '') => asPostgres(`--stanza=${stanza} ${extra} archive-get ${NO_SUCH_HISTORY} /dev/null`)
    const answered = await lookup()
    t.equal(answered.code, 1, `${member}: the repository answers over TLS ("not found"): ${answered.stdout.trim()}`)
    // The member's configuration has no section for another stanza: its data directory on the command line.
    const otherStanza = `--stanza=no-such-stanza --pg1-path=${String(vars.postgresql_data_dir)}`
    const other = await asPostgres(`${otherStanza} archive-get ${NO_SUCH_HISTORY} /dev/null`)
    t.match(other.stdout, /access denied/, `${member}'s certificate is refused for another stanza`)
    const withoutName = await lookup(`--repo1-host-cert-file=${tlsFiles(vars, 'postgres').cert}`)
    t.not(withoutName.code, 1, `a certificate without ${member}'s CommonName is refused: ${withoutName.stdout.trim()}`)

    // The same lookups over SSH: a configuration file with the way to the repository the members used before.
    const ssh = '/tmp/hastack-pgbackrest-ssh.conf'
    await ctx.lab.ssh(
      member,
      `sudo -n sed -e '/^repo1-host/d' -e 's/^\\[global\\]$/[global]\\nrepo1-host=${address}\\nrepo1-host-user=postgres/' ` +
        `/etc/pgbackrest/pgbackrest.conf | sudo -n tee ${ssh} >/dev/null && sudo -n chmod 0644 ${ssh}`,
    )
    t.teardown(() => ctx.lab.ssh(member, `sudo -n rm -f ${ssh}`).then(() => undefined))
    const timed = async (extra: string) => {
      const loop =
        `for i in $(seq ${LOOKUPS}); do s=$(date +%s%N); pgbackrest --stanza=${stanza} ${extra} archive-get ` +
        `${NO_SUCH_HISTORY} /dev/null >/dev/null 2>&1; echo $? $(( ($(date +%s%N) - s) / 1000000 )); done`
      const r = await ctx.lab.ssh(member, `cd /tmp && sudo -n runuser -u postgres -- sh -c '${loop}'`, {
        timeoutMs: 120_000,
      })
      const lines = r.stdout.trim().split('\n')
      t.ok(
        lines.every((l) => l.startsWith('1 ')),
        `every lookup answered "not found" (${extra || 'TLS'})`,
      )
      return lines.map((l) => Number(l.split(' ')[1]) / 1000).sort((a, b) => a - b)
    }
    const overTls = await timed('')
    const overSsh = await timed(`--config=${ssh}`)
    const median = (s: number[]) => s[Math.floor(s.length / 2)]!.toFixed(3)
    t.comment(
      `archive-get from ${member} (${LOOKUPS} each, s, shared machine): TLS median ${median(overTls)}, ` +
        `${overTls[0]!.toFixed(3)}-${overTls.at(-1)!.toFixed(3)}; SSH (shared connection) median ${median(overSsh)}, ` +
        `${overSsh[0]!.toFixed(3)}-${overSsh.at(-1)!.toFixed(3)}`,
    )
  },
}
