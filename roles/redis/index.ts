/**
 * redis: Debian's redis-server as one primary and its replicas. hastack owns
 * /etc/redis/hastack.conf (bind, auth, persistence, memory, write safety) and
 * applies its changes at run time; redis.conf, which includes it, is written
 * once on the first deploy and belongs to Redis and Sentinel from then on, so a
 * failover is never undone (hastack only keeps its `save` lines before the include,
 * where a restart reads them all). The first deploy makes `redis_initial_primary` (or
 * the first host of `redis`) the primary; a host deployed later follows the
 * primary the Sentinels name. The HAProxy endpoint's variables live here too
 * (templates/haproxy/redis.cfg.ejs).
 */
import type { HostRun, Inventory, Probe, Role } from '../../lib/types.ts'
import { pathState, pathStateProbe } from '../../lib/facts/files.ts'
import { defineTask, noChange, service, template, waitFor } from '../../lib/tasks/index.ts'
import { unifiedDiff } from '../../lib/output/diff.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { cliEndpoint, isError, pairs, redisCli, redisRead, redisReadProbe } from './cli.ts'
import { currentPrimary, initialPrimaryHost } from './primary.ts'
import { differing, memoryBytes, placeSaveRules, runtimeSettings, saveLines } from './settings.ts'
import { schema, defaults, type RedisVars } from './vars.ts'
import { groupMembers, settingsOf, tlsOn } from '../stack.ts'
import { redisConfView, redisTlsView } from './render.ts'
import { tlsReader } from '../certificates/index.ts'
import { servesCurrentCertificate } from '../certificates/served.ts'
import { tlsFiles } from '../tls.ts'

const CONF = '/etc/redis/redis.conf'
const INCLUDE = 'include /etc/redis/hastack.conf'

/** Cross-host checks of the Redis variables, on every host of the `redis` group (none without one). */
export function validateRedis(inventory: Inventory): string[] {
  const hosts = groupMembers(inventory, 'redis')
  const errors: string[] = []
  for (const host of hosts) {
    const v = settingsOf(inventory.hosts.get(host)!, defaults)
    const chosen = v.redis_initial_primary
    if (chosen !== '' && !hosts.includes(chosen))
      errors.push(`redis_initial_primary names ${chosen}, which is not in the redis group (${hosts.join(', ')})`)
    try {
      memoryBytes(v.redis_maxmemory)
    } catch (e) {
      errors.push(`host ${host}: ${(e as Error).message}`)
    }
    if (v.redis_min_replicas_to_write > hosts.length - 1)
      errors.push(
        `redis_min_replicas_to_write is ${v.redis_min_replicas_to_write} but the redis group has only ` +
          `${hosts.length - 1} replica(s): the primary would refuse every write`,
      )
  }
  // The endpoint's check timing must let an old primary's entries fall before a new primary's rise.
  for (const lb of hosts.length ? groupMembers(inventory, 'haproxy') : []) {
    const v = settingsOf(inventory.hosts.get(lb)!, defaults)
    const { redis_haproxy_check_interval_ms: inter, redis_haproxy_rise: rise, redis_haproxy_fall: fall } = v
    const timeout = v.redis_haproxy_check_timeout_ms
    if ((rise - 1) * inter <= fall * inter + timeout)
      errors.push(
        `redis_haproxy_rise (${rise}) is too small for fall ${fall}, interval ${inter} ms and check timeout ` +
          `${timeout} ms: (rise - 1) × interval must exceed fall × interval + timeout, ` +
          'or two backends could be up at once during a failover',
      )
    // HAProxy's endpoint and Redis cannot share a port on a host that runs both.
    if (hosts.includes(lb) && v.redis_haproxy_port === v.redis_port)
      errors.push(
        `${lb} runs both Redis and the HAProxy endpoint on port ${v.redis_port}: ` +
          'set redis_haproxy_port to another port for it',
      )
  }
  return [...new Set(errors)]
}

/** Ensure the running server has the inventory's settings (CONFIG SET + CONFIG REWRITE on a difference). */
function runtimeSettingsTask(h: Parameters<Role['tasks']>[0]) {
  const wanted = runtimeSettings(h.vars)
  const ep = cliEndpoint(h.vars, '127.0.0.1', Number(h.vars.redis_port), String(h.vars.redis_password))
  const read = [['CONFIG', 'GET', ...Object.keys(wanted)]]
  const probes = [redisReadProbe(ep, read)]
  return defineTask('Ensure the running Redis has the inventory settings', { probes }, async (ctx) => {
    const replies = await redisRead(ctx.conn, ep, read)
    if (!replies) return { change: false, skip: true, reason: 'redis-cli is not installed yet' }
    const reply = replies[0] ?? []
    if (isError(reply)) {
      if (h.check) return { change: false, skip: true, reason: `Redis does not answer yet: ${reply[0]}` }
      throw new Error(`CONFIG GET failed: ${reply[0]}`)
    }
    const diff = differing(wanted, pairs(reply))
    if (diff.length === 0) return noChange()
    return {
      change: true,
      reason: `running values differ: ${diff.join(', ')}`,
      apply: async () => {
        const set = ['CONFIG', 'SET', ...diff.flatMap((k) => [k, wanted[k]!])]
        const out = await redisCli(h, ep, [set, ['CONFIG', 'REWRITE']])
        const failed = (out ?? [['no redis-cli']]).find((r) => isError(r) || r[0] !== 'OK')
        if (failed) throw new Error(`applying ${diff.join(', ')} failed: ${failed.join(' ')}`)
      },
    }
  })
}

/**
 * A renewed certificate reaches Redis without a restart: setting `tls-cert-file` and `tls-key-file` (to the
 * same paths) with CONFIG SET makes Redis load its TLS files again. Nothing to rewrite: the paths are unchanged.
 */
function renewedCertificateTask(h: HostRun) {
  const v = h.vars
  const ep = cliEndpoint(v, '127.0.0.1', Number(v.redis_port), String(v.redis_password))
  const files = tlsFiles(v, 'redis')
  const endpoint = { service: 'Redis', address: String(v.address), port: Number(v.redis_port), certFile: files.cert }
  return servesCurrentCertificate(endpoint, 'CONFIG SET tls-cert-file (Redis loads its TLS files again)', async () => {
    const out = await redisCli(h, ep, [['CONFIG', 'SET', 'tls-cert-file', files.cert, 'tls-key-file', files.key]])
    const failed = (out ?? [['no redis-cli']]).find((r) => isError(r) || r[0] !== 'OK')
    if (failed) throw new Error(`Redis did not load its TLS files again: ${failed.join(' ')}`)
  })
}

/**
 * Keep redis.conf's `save` lines where a restart reads them all (see placeSaveRules).
 * Redis owns the rest of the file and its mode and owner: only the content changes.
 */
export function saveRulesInFileTask(h: Pick<HostRun, 'vars'>) {
  const probes: Probe[] = [pathStateProbe(CONF), { kind: 'read', path: CONF }]
  return defineTask('Ensure redis.conf keeps every RDB snapshot rule across restarts', { probes }, async (ctx) => {
    if ((await pathState(ctx.conn, CONF)).type === 'absent')
      return { change: false, skip: true, reason: `${CONF} is not there yet` }
    const current = (await ctx.conn.get(CONF)).toString()
    const content = placeSaveRules(current, saveLines(String(h.vars.redis_save)), INCLUDE)
    if (content === current) return noChange()
    return {
      change: true,
      reason: 'save rules stand where a restart would drop them (after the include)',
      diff: ctx.diff ? unifiedDiff(CONF, current, content) : undefined,
      apply: () => ctx.conn.put(CONF, content),
    }
  })
}

export const redisRole: Role<RedisVars> = {
  name: 'redis',
  description:
    'Redis primary and replicas: bound to the cluster address, authenticated, AOF + RDB, bounded writes when cut off.',
  defaults,
  schema,
  validate: validateRedis,
  handlers: {
    'Restart Redis': (h) => h.do(service({ service: 'redis-server', state: 'restarted', name: 'Restart Redis' })),
  },
  async tasks(h) {
    const v = h.vars
    // redis.conf is the package's until the first deploy adds the include (the template below is another file).
    const [included] = await installWithoutStarting(h, ['redis-server', 'redis-tools'], 'Redis', [
      { kind: 'line', line: INCLUDE, path: CONF },
    ])
    if (tlsOn(v, 'redis')) await h.do(tlsReader('redis', 'redis'))
    await h.do(
      template({
        src: 'redis/hastack.conf.ejs',
        dest: '/etc/redis/hastack.conf',
        owner: 'redis',
        group: 'redis',
        mode: '0640',
        vars: redisTlsView(v),
        name: 'Ensure the hastack Redis settings file is current',
      }),
    )
    const bootstrapped = included!.code === 0
    if (!bootstrapped) {
      const primary = await currentPrimary(h)
      const self = primary.address === v.address
      h.log(
        `first deploy: ${self ? 'primary' : `replica of ${primary.address}`} (primary from ${primary.source}; initial primary ${initialPrimaryHost(h)})`,
      )
      await h.do(
        template({
          src: 'redis/redis.conf.ejs',
          dest: CONF,
          owner: 'redis',
          group: 'redis',
          mode: '0640',
          vars: redisConfView(h, self ? '' : primary.address),
          notify: 'Restart Redis',
          name: 'Ensure redis.conf includes the hastack settings (first deploy only)',
        }),
      )
    }
    await h.flushHandlers()
    await h.doAll([
      service({
        service: 'redis-server',
        enabled: true,
        state: 'started',
        name: 'Ensure Redis is enabled and running',
      }),
      waitFor({
        port: v.redis_port,
        address: String(v.address),
        timeoutMs: 60_000,
        name: 'Wait for Redis to accept connections',
      }),
      runtimeSettingsTask(h),
      saveRulesInFileTask(h),
      ...(tlsOn(v, 'redis') ? [renewedCertificateTask(h)] : []),
    ])
  },
}
