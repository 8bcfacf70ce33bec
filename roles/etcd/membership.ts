/**
 * Joining a running etcd cluster: the members the cluster has registered (`etcdctl member list`),
 * what keeps a new member from joining (the cluster must hold exactly the inventory's other
 * members, or the new member's initial-cluster would not match and etcd would refuse it), and the
 * task that registers this member with `etcdctl member add` (through the members that run, as
 * etcd's root user) before its first start.
 */
import type { HostRun } from '../../lib/types.ts'
import { defineTask, noChange, waitUntil } from '../../lib/tasks/index.ts'
import { quoteArgs } from '../../lib/connection/quote.ts'
import { ETCDCTL } from './index.ts'

/** One line of `etcdctl member list`: an unstarted member has no name yet. */
export interface RegisteredMember {
  id: string
  started: boolean
  name: string
  peerUrls: string[]
}

/** `etcdctl member list` (simple format: `id, status, name, peer URLs, client URLs, is learner`). */
export function parseMemberList(stdout: string): RegisteredMember[] {
  return stdout
    .split('\n')
    .map((line) => line.split(',').map((field) => field.trim()))
    .filter((f) => f.length >= 4 && /^[0-9a-f]+$/.test(f[0]!) && (f[1] === 'started' || f[1] === 'unstarted'))
    .map((f) => ({ id: f[0]!, started: f[1] === 'started', name: f[2]!, peerUrls: f[3]!.split(/\s+/).filter(Boolean) }))
}

/**
 * Why this member cannot join the cluster as registered, or undefined when it can: every other
 * member of the inventory must be registered, and nothing else (one member joins per run).
 */
export function joinProblem(registered: RegisteredMember[], otherPeers: string[], ownPeer: string): string | undefined {
  const urls = new Set(registered.flatMap((m) => m.peerUrls))
  const missing = otherPeers.filter((peer) => !urls.has(peer))
  if (missing.length)
    return (
      `the inventory's etcd members ${missing.join(', ')} are not members of the running cluster: ` +
      'add one etcd member per run (converge, then add the next)'
    )
  const unknown = registered.filter((m) => !m.peerUrls.some((p) => p === ownPeer || otherPeers.includes(p)))
  if (unknown.length)
    return (
      `the running cluster has members the inventory lacks (${unknown.map((m) => m.name || m.id).join(', ')}): ` +
      'remove them first (playbooks/remove-node.ts) or put them back in the inventory'
    )
  return undefined
}

/**
 * Register this member with the running cluster (`member add`) unless it is registered already.
 * `others` are the client URLs of the inventory's other members; `otherPeers` their peer URLs.
 */
export function memberAddTask(h: HostRun, ownPeer: string, others: string[], otherPeers: string[]) {
  const etcdctl = (...args: string[]) =>
    quoteArgs([ETCDCTL, `--endpoints=${others.join(',')}`, '--dial-timeout=2s', '--command-timeout=5s', ...args])
  return defineTask('Ensure this member is registered with the running etcd cluster', {}, async (ctx) => {
    if ((await ctx.conn.run(['test', '-e', ETCDCTL])).code !== 0) {
      if (ctx.check)
        return { change: false, skip: true, reason: 'etcdctl is not installed yet: member add comes first' }
      throw new Error(`${ETCDCTL} is not installed`)
    }
    // Bounded: the running members may still be electing a leader.
    const listed = await waitUntil(
      'the etcd member list',
      async () => {
        const r = await ctx.conn.run(etcdctl('member', 'list'), { timeoutMs: 15_000 })
        if (r.code !== 0) throw new Error((r.stderr || r.stdout).trim().split('\n').pop())
        return parseMemberList(r.stdout)
      },
      { timeoutMs: 30_000, intervalMs: 2000 },
    )
    if (listed.some((m) => m.peerUrls.includes(ownPeer))) return noChange(`${ownPeer} is registered`)
    const problem = joinProblem(listed, otherPeers, ownPeer)
    if (problem) throw new Error(problem)
    return {
      change: true,
      reason: `the cluster of ${listed.length} does not list ${ownPeer}`,
      apply: async () => {
        const r = await ctx.conn.run(etcdctl('member', 'add', h.name, `--peer-urls=${ownPeer}`), { timeoutMs: 30_000 })
        if (r.code !== 0) throw new Error(`etcdctl member add failed: ${(r.stderr || r.stdout).trim()}`)
        return { stdout: r.stdout.split('\n')[0] }
      },
    }
  })
}
