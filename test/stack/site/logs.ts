/**
 * Central logs on the converged lab: a line written to node2's journal reaches the logging host's
 * store within a bounded time and `playbooks/logs.ts --host node2 --grep <it>` prints it (and only
 * for node2); a restarted journal-upload resumes from its state file instead of sending the
 * journal again; the vacuum timer's service brings the archived files down to the store's bound.
 */
import { randomUUID } from 'node:crypto'
import { quote } from '../../../lib/connection/quote.ts'
import { until } from '../until.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'

const UPLOAD_LATENCY_MS = 90_000
const STORE = '/var/log/journal/remote'

/** The logger lines of this host holding the marker, as logs.ts printed them (not the sudo line of the command). */
async function found(ctx: SiteContext, host: string, marker: string, label: string): Promise<string[]> {
  const run = await ctx.playbook('playbooks/logs.ts', label, ['--host', host, '--grep', marker, '--lines', '20'])
  if (run.exitCode !== 0) throw new Error(`logs.ts exited ${run.exitCode}: ${run.tail}`)
  const line = new RegExp(` ${host} hastack-test(\\[\\d+\\])?: ${marker}$`)
  return run.stdout.split('\n').filter((l) => line.test(l))
}

/** Write a marker with logger on the host and wait until logs.ts finds it; returns the lines. */
async function shipped(t: Tap, ctx: SiteContext, host: string, marker: string): Promise<string[]> {
  // As root: into the system journal (a user's own journal file is not the point here).
  const wrote = await ctx.lab.ssh(host, `sudo -n logger -t hastack-test ${quote(marker)}`)
  t.equal(wrote.code, 0, `logger on ${host}`)
  const started = Date.now()
  const lines = await until(
    `${marker} in the central store`,
    UPLOAD_LATENCY_MS,
    async () => {
      const lines = await found(ctx, host, marker, 'logs')
      return lines.length > 0 ? lines : undefined
    },
    2000,
  )
  t.comment(`${host} → store: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return lines
}

export const centralLogs: SiteCheck = {
  name: 'logs: a journal line written on node2 is found by playbooks/logs.ts, once, and the store is bounded',
  destructive: false,
  async run(t, ctx) {
    const [store] = ctx.hosts('logging')
    // node2 writes; node3 is a host that wrote nothing (the store's own journal holds the sudo lines
    // of logs.ts's queries, marker included, so it is not the host to compare with).
    const [source, other] = ctx.hosts('etcd').filter((h) => h !== store) as [string, string]
    const marker = `hastack-logs-${randomUUID()}`
    const lines = await shipped(t, ctx, source, marker)
    t.equal(lines.length, 1, 'the line is in the store once, with its host and tag')
    t.same(await found(ctx, other, marker, 'logs-other'), [], '--host keeps to that host')

    // The uploader keeps its place: a restart sends the new line, not the old one again.
    const state = await ctx.lab.ssh(source, 'sudo -n test -s /var/lib/private/systemd/journal-upload/state')
    t.equal(state.code, 0, 'journal-upload keeps a state file')
    const restarted = await ctx.lab.ssh(source, 'sudo -n systemctl restart systemd-journal-upload')
    t.equal(restarted.code, 0, 'journal-upload restarted')
    const after = `hastack-logs-${randomUUID()}`
    await shipped(t, ctx, source, after)
    t.equal((await found(ctx, source, marker, 'logs')).length, 1, 'the first line was not sent again')

    // The bound: archived copies over it are vacuumed, oldest first, by the timer's service.
    const bound = 64 * 1024 * 1024
    const plant = [
      `f=$(ls ${STORE}/*.journal | grep -v @ | head -n1)`,
      'for i in $(seq 1 12); do',
      // Archived names: <prefix>@<seqnum id>-<first seqnum>-<first realtime>.journal; i=1 is the oldest.
      `  n=$(printf %016x $i); cp --sparse=never "$f" "${STORE}/remote-hastack-test@${'0'.repeat(32)}-$n-$n.journal"`,
      'done',
    ].join('\n')
    t.equal((await ctx.lab.ssh(store!, `sudo -n sh -c ${quote(plant)}`)).code, 0, 'archived copies planted')
    const size = `du -c --block-size=1 ${STORE}/*@*.journal | tail -n1 | cut -f1`
    const before = Number((await ctx.lab.ssh(store!, `sudo -n sh -c ${quote(size)}`)).stdout.trim())
    t.ok(before > bound, `the planted archives (${before} bytes) exceed the lab's bound (${bound})`)
    const vacuum = await ctx.lab.ssh(store!, 'sudo -n systemctl start hastack-journal-vacuum.service')
    t.equal(vacuum.code, 0, 'the vacuum ran')
    const left = Number((await ctx.lab.ssh(store!, `sudo -n sh -c ${quote(size)}`)).stdout.trim())
    t.ok(left <= bound, `archives after the vacuum: ${left} bytes, within ${bound}`)
    const newest = await ctx.lab.ssh(store!, `sudo -n ls ${STORE} | grep -c 'remote-hastack-test@.*-000000000000000c-'`)
    t.equal(newest.stdout.trim(), '1', 'the newest archive is kept')
    await ctx.lab.ssh(store!, `sudo -n sh -c ${quote(`rm -f ${STORE}/remote-hastack-test@*.journal`)}`)
  },
}
