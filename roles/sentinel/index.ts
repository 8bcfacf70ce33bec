/**
 * sentinel: one Redis Sentinel per host of the `sentinel` group, watching the
 * Redis primary under `redis_master_name`, authenticated towards Redis
 * (`auth-pass`) and itself (`requirepass`, `sentinel-pass`). Sentinel rewrites
 * its own file, so hastack writes sentinel.conf only on the first deploy and
 * afterwards reconciles the settings it owns at run time with SENTINEL SET
 * (which Sentinel persists itself): re-runs never fight the rewrites.
 */
import type { HostRun, Inventory, Probe, Role, VarSchema, Vars } from '../../lib/types.ts'
import { defineTask, noChange, service, template, waitFor, waitUntil } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { cliEndpoint, isError, pairs, redisCli, redisRead, redisReadProbe } from '../redis/cli.ts'
import { redisTlsView } from '../redis/render.ts'
import { tlsReader } from '../certificates/index.ts'
import { servesCurrentCertificate } from '../certificates/served.ts'
import { tlsFiles } from '../tls.ts'
import { currentPrimary } from '../redis/primary.ts'
import {
  REDIS_CLIENT_VARS,
  TLS_VARS,
  failoverProfiles,
  groupMembers,
  settingsOf,
  sharedVars,
  tlsOn,
  type StackVars,
} from '../stack.ts'

const CONF = '/etc/redis/sentinel.conf'
const MARKER = '# hastack: sentinel bootstrap'

const shared = sharedVars(...REDIS_CLIENT_VARS, ...TLS_VARS, 'sentinel_quorum', 'failover_profile')
const profile = failoverProfiles('sentinel_down_after_milliseconds')

export interface SentinelVars extends Vars, Pick<StackVars, keyof typeof shared.schema> {
  sentinel_down_after_milliseconds: number
  sentinel_failover_timeout: number
  sentinel_parallel_syncs: number
}

const schema: Record<string, VarSchema> = {
  ...shared.schema,
  sentinel_down_after_milliseconds: {
    type: 'integer',
    minimum: 100,
    description: 'Time without a valid reply after which a Sentinel considers the primary down.',
  },
  sentinel_failover_timeout: {
    type: 'integer',
    minimum: 1000,
    description: 'Failover timeout (ms): retry delay and bound on reconfiguring the replicas.',
  },
  sentinel_parallel_syncs: {
    type: 'integer',
    minimum: 1,
    description: 'Replicas re-synchronising with a new primary at the same time.',
  },
}

/** The settings hastack owns, as SENTINEL MASTER reports them. */
export function sentinelSettings(v: Vars): Record<string, string> {
  return {
    quorum: String(v.sentinel_quorum),
    'down-after-milliseconds': String(v.sentinel_down_after_milliseconds),
    'failover-timeout': String(v.sentinel_failover_timeout),
    'parallel-syncs': String(v.sentinel_parallel_syncs),
  }
}

/** The Sentinel count and quorum, checked with every Sentinel host's settings. */
export function validateSentinel(inventory: Inventory): string[] {
  const hosts = groupMembers(inventory, 'sentinel')
  if (hosts.length === 0) return []
  const errors: string[] = []
  if (hosts.length < 3)
    errors.push(`the sentinel group has ${hosts.length} host(s): at least 3 are needed to survive the loss of one`)
  for (const host of hosts) {
    const q = settingsOf(inventory.hosts.get(host)!, sentinelRole.defaults).sentinel_quorum
    if (q > hosts.length) errors.push(`sentinel_quorum is ${q} but there are only ${hosts.length} Sentinels`)
    if (q <= hosts.length / 2)
      errors.push(
        `sentinel_quorum ${q} is not a majority of ${hosts.length} Sentinels: ` +
          'the endpoint could route to two primaries',
      )
  }
  return [...new Set(errors)]
}

type H = Parameters<Role['tasks']>[0]

/** Ensure this Sentinel monitors the primary with the inventory's settings (SENTINEL MONITOR / SET). */
function monitorTask(h: H) {
  const v = h.vars
  const name = String(v.redis_master_name)
  const ep = cliEndpoint(v, '127.0.0.1', Number(v.sentinel_port), String(v.sentinel_password))
  const wanted = sentinelSettings(v)
  const authLine = `sentinel auth-pass ${name} ${v.redis_password}`
  // auth-pass is not reported by SENTINEL MASTER: the check reads the file Sentinel keeps current (a probe: it
  // is read with the other tasks' in one round trip; the file's text stays in memory, never printed).
  const read = [['SENTINEL', 'MASTER', name]]
  const probes: Probe[] = [{ kind: 'read', path: CONF }, redisReadProbe(ep, read)]
  return defineTask(`Ensure this Sentinel monitors ${name} with the inventory settings`, { probes }, async (ctx) => {
    const replies = await redisRead(ctx.conn, ep, read)
    if (!replies) return { change: false, skip: true, reason: 'redis-cli is not installed yet' }
    const reply = replies[0] ?? []
    const unknown = isError(reply) && /No such master/i.test(reply.join(' '))
    if (isError(reply) && !unknown) {
      if (h.check) return { change: false, skip: true, reason: `Sentinel does not answer yet: ${reply[0]}` }
      throw new Error(`SENTINEL MASTER failed: ${reply[0]}`)
    }
    const running = unknown ? {} : pairs(reply)
    const diff = Object.keys(wanted).filter((k) => running[k] !== wanted[k])
    const kept = await ctx.conn.get(CONF).then(
      (text) => text.toString(),
      () => '',
    )
    const authOk = kept.split('\n').includes(authLine)
    if (!unknown && diff.length === 0 && authOk) return noChange()
    const reason = unknown
      ? `not monitoring ${name}`
      : [...diff, ...(authOk ? [] : ['auth-pass'])].join(', ') + ' differ'
    return {
      change: true,
      reason,
      apply: async () => {
        const cmds: (string | number)[][] = []
        if (unknown) {
          const primary = await currentPrimary(h)
          cmds.push(['SENTINEL', 'MONITOR', name, primary.address, Number(v.redis_port), wanted.quorum!])
        }
        const keys = unknown ? Object.keys(wanted).filter((k) => k !== 'quorum') : diff
        const set = keys.flatMap((k) => [k, wanted[k]!])
        if (unknown || !authOk) set.push('auth-pass', String(v.redis_password))
        if (set.length) cmds.push(['SENTINEL', 'SET', name, ...set])
        const out = (await redisCli(h, ep, cmds)) ?? [['no redis-cli']]
        const failed = out.find((r) => isError(r) || r[0] !== 'OK')
        if (failed) throw new Error(`Sentinel refused the change: ${failed.join(' ')}`)
      },
    }
  })
}

/** Longest a restarted Sentinel may take to be back with its quorum before the roll stops. */
const BACK_WITH_QUORUM_MS = 60_000

/**
 * Sentinel cannot load its TLS files again while it runs (no CONFIG SET in Sentinel mode, redis/redis#12028):
 * a renewed certificate needs a restart. One Sentinel at a time, the next only once this one is back with
 * its quorum (SENTINEL CKQUORUM: enough Sentinels reachable to authorize a failover), so the Sentinels never
 * lose the ability to fail Redis over; the Redis primary and its clients are not touched.
 */
function renewedCertificateTask(h: HostRun) {
  const v = h.vars
  const ep = cliEndpoint(v, '127.0.0.1', Number(v.sentinel_port), String(v.sentinel_password))
  const address = String(v.address)
  const endpoint = { service: 'Sentinel', address, port: Number(v.sentinel_port), certFile: tlsFiles(v).cert }
  const how = 'a restart of Sentinel, one at a time, each back with its quorum before the next'
  return servesCurrentCertificate(endpoint, how, () =>
    h.oneAtATime('sentinel:restart', async () => {
      await h.conn.run('systemctl restart redis-sentinel', { check: true })
      await waitUntil(
        `Sentinel on ${h.name} back with its quorum`,
        async () => {
          const reply = (await redisCli(h, ep, [['SENTINEL', 'CKQUORUM', String(v.redis_master_name)]]))?.[0]
          return reply !== undefined && /^OK\b/.test(reply.join(' '))
        },
        { timeoutMs: BACK_WITH_QUORUM_MS, intervalMs: 1000 },
      )
    }),
  )
}

export const sentinelRole: Role<SentinelVars> = {
  name: 'sentinel',
  description:
    'Three or more Redis Sentinels: quorum, failure detection and failover of the Redis primary, authenticated.',
  defaults: {
    ...shared.defaults,
    ...profile.defaults,
    sentinel_failover_timeout: 60000,
    sentinel_parallel_syncs: 1,
  },
  schema,
  profiles: profile.profiles,
  validate: validateSentinel,
  handlers: {
    'Restart Sentinel': (h) =>
      h.do(service({ service: 'redis-sentinel', state: 'restarted', name: 'Restart Sentinel' })),
  },
  async tasks(h) {
    const v = h.vars
    const [marked] = await installWithoutStarting(h, ['redis-sentinel'], 'Redis Sentinel', [
      { kind: 'line', line: MARKER, path: CONF },
    ])
    if (tlsOn(v, 'redis')) await h.do(tlsReader('redis', 'redis'))
    const bootstrapped = marked!.code === 0
    if (!bootstrapped) {
      const primary = await currentPrimary(h)
      h.log(`first deploy: monitoring ${primary.address} (from ${primary.source})`)
      await h.do(
        template({
          src: 'sentinel/sentinel.conf.ejs',
          dest: CONF,
          owner: 'redis',
          group: 'redis',
          mode: '0640',
          vars: { sentinel_primary: primary.address, ...redisTlsView(v) },
          notify: 'Restart Sentinel',
          name: 'Ensure sentinel.conf is written (first deploy only)',
        }),
      )
    }
    await h.flushHandlers()
    await h.doAll([
      service({
        service: 'redis-sentinel',
        enabled: true,
        state: 'started',
        name: 'Ensure Sentinel is enabled and running',
      }),
      waitFor({
        port: v.sentinel_port,
        address: String(v.address),
        timeoutMs: 60_000,
        name: 'Wait for Sentinel to accept connections',
      }),
      monitorTask(h),
      ...(tlsOn(v, 'redis') ? [renewedCertificateTask(h)] : []),
    ])
  },
}
