/**
 * Backups on the converged lab: an on-demand full backup succeeds and its figures reach node_exporter's
 * textfile; WAL archiving works (`pgbackrest check`); the restore drill passes; with a file of the
 * newest backup moved out of the repository the drill fails loudly (non-zero, the reason printed),
 * and the file is moved back afterwards, leaving the repository as it was (`pgbackrest verify`); the restore
 * drill's timer is scheduled and the service it starts passes.
 */
import type { SiteCheck } from './context.ts'

const STANZA = 'hastack'
const REPO = '/var/lib/pgbackrest'

/** Where the restore drill records its outcome (node_exporter's textfile collector). */
const DRILL_METRICS = '/var/lib/prometheus/node-exporter/hastack_restore_drill.prom'

export const backup: SiteCheck = {
  name: 'backups: a backup succeeds, WAL is archived, the restore drill passes and fails on a damaged repository',
  destructive: false,
  async run(t, ctx) {
    const [repo] = ctx.hosts('backup_repo')
    const onRepo = async (command: string, timeoutMs = 120_000) => ctx.lab.ssh(repo!, command, { timeoutMs })
    const asPostgres = (args: string) => onRepo(`sudo -n -u postgres pgbackrest --stanza=${STANZA} ${args}`)

    const backup = await ctx.playbook('playbooks/backup.ts', 'backup-full', ['--type', 'full'])
    if (backup.exitCode !== 0) t.comment(backup.tail)
    t.equal(backup.exitCode, 0, 'an on-demand full backup succeeds')
    const summary = backup.stdout.match(/backup \S+ \(full, from the (\w+)\): .*/)
    t.ok(summary, 'it prints the label, size and duration')
    t.comment(`${summary?.[0]} (playbook ${backup.seconds.toFixed(0)} s)`)
    t.equal(summary?.[1], 'standby', 'taken from a healthy standby')

    const metrics = await onRepo(`curl -s http://${ctx.lab.host(repo!).address}:9100/metrics | grep ^hastack_backup`)
    t.match(metrics.stdout, /hastack_backup_last_success_timestamp_seconds\{kind="postgres"\} \d/)
    t.match(metrics.stdout, /hastack_backup_last_size_bytes\{kind="postgres"\} \d/, 'node_exporter serves the figures')

    const check = await asPostgres('check')
    t.equal(check.code, 0, `pgbackrest check: WAL reaches the repository ${check.stderr.trim()}`)

    const drill = await ctx.playbook('playbooks/restore-drill.ts', 'drill')
    if (drill.exitCode !== 0) t.comment(drill.tail)
    t.equal(drill.exitCode, 0, 'the restore drill passes on the live lab')
    const passed = drill.stdout.match(/restore drill passed: .*/)
    t.ok(passed, 'it reports the restore seconds and the recovered point')
    t.comment(`${passed?.[0]} (playbook ${drill.seconds.toFixed(0)} s)`)

    // Damage the repository: one data file of the newest backup moved aside, moved back afterwards.
    const info = JSON.parse((await asPostgres('info --output=json')).stdout)
    const label = info[0].backup.at(-1).label as string
    const found = await onRepo(
      `sudo -n find ${REPO}/backup/${STANZA}/${label}/pg_data/global -type f -name 'pg_control*'`,
    )
    const victim = found.stdout.trim().split('\n')[0]!
    t.ok(victim, `a file of backup ${label} to remove: ${victim}`)
    const aside = `${REPO}/../hastack-drill-aside`
    t.equal((await onRepo(`sudo -n mkdir -p ${aside} && sudo -n mv ${victim} ${aside}/`)).code, 0)
    try {
      const damaged = await ctx.playbook('playbooks/restore-drill.ts', 'drill-damaged')
      t.not(damaged.exitCode, 0, 'the drill fails on a repository with a file removed')
      const reason = damaged.tail.match(/restore drill FAILED: .*/)
      t.ok(reason, 'and prints the reason')
      t.comment(reason?.[0] ?? damaged.tail)
      const recorded = await onRepo(`cat ${DRILL_METRICS}`)
      t.match(recorded.stdout, /hastack_restore_drill_last_result\{kind="postgres"\} 0\n/, 'the failure is a metric')
    } finally {
      const base = victim.split('/').pop()!
      t.equal((await onRepo(`sudo -n mv ${aside}/${base} ${victim} && sudo -n rmdir ${aside}`)).code, 0, 'moved back')
    }
    const verify = await asPostgres('verify')
    t.equal(verify.code, 0, 'the repository verifies again')
    t.notMatch(verify.stdout + verify.stderr, /ERROR|invalid|missing/)
    // The drill passes again, so the RestoreDrillFailed alert does not outlive this check.
    const again = await ctx.playbook('playbooks/restore-drill.ts', 'drill-again')
    t.equal(again.exitCode, 0, 'the drill passes again on the repaired repository')
    const cleared = await onRepo(`cat ${DRILL_METRICS}`)
    t.match(cleared.stdout, /hastack_restore_drill_last_result\{kind="postgres"\} 1\n/, 'and records it')

    // The scheduled drill: its timer is waiting, and the service it starts passes (no canary: newest backup + WAL).
    const timer = await onRepo(
      'systemctl is-enabled hastack-pgbackrest-drill.timer; systemctl is-active hastack-pgbackrest-drill.timer',
    )
    t.same(timer.stdout.trim().split('\n'), ['enabled', 'active'], 'the restore drill timer is scheduled')
    const started = Date.now()
    const scheduled = await onRepo('sudo -n systemctl start hastack-pgbackrest-drill.service', 600_000)
    t.equal(scheduled.code, 0, `the drill the timer starts passes (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  },
}
