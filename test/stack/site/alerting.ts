/**
 * An alert reaches a receiver, and so does its resolution: a webhook receiver on the lab bridge's
 * gateway address becomes an Alertmanager receiver through the inventory (`-e`, the alertmanager
 * role alone, notifications after 5 s and changes every 10 s), a Redis replica host gets a power
 * cut (or, when no replica's host may lose its power without raising other alerts, its Redis is
 * stopped), and RedisReplicaDown, naming that host, must fire within its `for:` plus one evaluation
 * interval and be POSTed to the webhook; after `lab start` Redis replicates again and the resolved
 * notification arrives. The receiver is removed again and the stack left with every target up.
 */
import { Redis } from 'ioredis'
import { prometheusGet, type Alert } from '../prometheus.ts'
import { until } from '../until.ts'
import { webhookReceiver, type WebhookAlert, type WebhookReceiver } from '../webhook.ts'
import { TOLERATED_ALERTS } from './prometheus-targets.ts'
import { holders } from './vip.ts'
import type { SiteCheck, SiteContext, Tap } from './context.ts'

const ALERT = 'RedisReplicaDown'

interface RulesData {
  groups: { name: string; interval: number; rules: { name: string; type: string; duration?: number }[] }[]
}
interface Vector {
  result: { metric: Record<string, string> }[]
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** Converge the alertmanager role alone on the monitoring host, with these extra variables. */
async function configureAlertmanager(ctx: SiteContext, label: string, vars?: Record<string, unknown>) {
  const [monitor] = ctx.hosts('monitoring')
  const extra = ['-l', monitor!, '--tags', 'alertmanager', ...(vars ? ['-e', JSON.stringify(vars)] : [])]
  return ctx.playbook('playbooks/monitoring.ts', label, extra, 300_000)
}

/** The hosts a Prometheus query's series name (their `host` label). */
async function hostsOf(prometheus: string, expr: string): Promise<string[]> {
  const { result } = await prometheusGet<Vector>(prometheus, `query?${new URLSearchParams({ query: expr })}`)
  return result.map((r) => r.metric.host!)
}

/**
 * The Redis replicas whose host may lose its power without raising other alerts: neither the
 * monitoring host, the load balancer clients reach (the VIP holder, or every haproxy host without a
 * VIP) nor the Patroni primary, whose loss would raise failover alerts of its own. An etcd leader may
 * go: a new one is elected in well under EtcdNoLeader's minute.
 */
async function powerCuttable(ctx: SiteContext, prometheus: string): Promise<string[]> {
  const replicas = await hostsOf(prometheus, 'redis_instance_info{job="redis", role="slave"}')
  const vip = ctx.lab.need().vip
  const spared = new Set([
    ...ctx.hosts('monitoring'),
    ...(vip ? await holders(ctx, vip) : ctx.hosts('haproxy')),
    ...(await hostsOf(prometheus, 'patroni_primary == 1')),
  ])
  return replicas.sort().filter((h) => !spared.has(h))
}

/**
 * Hand the VIP to the monitoring host when another haproxy host holds it (keepalived stopped on the
 * holder, then started again: it comes back as BACKUP and leaves the VIP where it is). A VIP move
 * raises no alert, while a Patroni switchover or a Sentinel failover would raise one for 10 minutes.
 */
async function vipToMonitoringHost(t: Tap, ctx: SiteContext): Promise<void> {
  const vip = ctx.lab.need().vip
  const [monitor] = ctx.hosts('monitoring')
  if (!vip || !ctx.hosts('haproxy').includes(monitor!)) return
  const [holder] = await holders(ctx, vip)
  if (!holder || holder === monitor) return
  await ctx.lab.ssh(holder, 'sudo systemctl stop keepalived', { timeoutMs: 30_000 })
  try {
    await until(`${monitor} holds the VIP ${vip}`, 30_000, async () => (await holders(ctx, vip)).join() === monitor)
  } finally {
    await ctx.lab.ssh(holder, 'sudo systemctl start keepalived', { timeoutMs: 30_000 })
  }
  t.comment(`the VIP moved from ${holder} to ${monitor}, so that ${holder}'s Redis replica may lose its power`)
}

/**
 * How the check takes a Redis replica down: its host's power when one may lose it (after moving the
 * VIP to the monitoring host if that frees one), else Redis alone on a replica (the monitoring host
 * last), when the Patroni primary, the VIP and the monitoring host leave no replica's host spare.
 */
async function pickFault(
  t: Tap,
  ctx: SiteContext,
  prometheus: string,
): Promise<{ victim: string; power: boolean } | undefined> {
  let [victim] = await powerCuttable(ctx, prometheus)
  if (!victim) {
    await vipToMonitoringHost(t, ctx)
    ;[victim] = await powerCuttable(ctx, prometheus)
  }
  if (victim) return { victim, power: true }
  const monitoring = new Set(ctx.hosts('monitoring'))
  const replicas = await hostsOf(prometheus, 'redis_instance_info{job="redis", role="slave"}')
  const [unit] = replicas.sort((a, b) => Number(monitoring.has(a)) - Number(monitoring.has(b)) || a.localeCompare(b))
  return unit ? { victim: unit, power: false } : undefined
}

/** The first alert named ALERT about `host` with this status in any notification so far. */
function notified(hook: WebhookReceiver, host: string, status: WebhookAlert['status']) {
  for (const n of hook.notifications)
    for (const a of n.alerts)
      if (a.labels.alertname === ALERT && a.labels.host === host && a.status === status)
        return { ...a, at: n.receivedAt }
  return undefined
}

async function replicating(ctx: SiteContext, address: string, password: string): Promise<boolean> {
  const redis = new Redis({
    host: address,
    password,
    ...ctx.redisTls(),
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return /master_link_status:up/.test(await redis.info('replication'))
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

/** Wait (bounded) until every target is up and no alert is pending or firing but the tolerated ones. */
async function healthy(t: Tap, prometheus: string) {
  const raised = async () => {
    const { alerts } = await prometheusGet<{ alerts: Alert[] }>(prometheus, 'alerts')
    const down = await prometheusGet<Vector>(prometheus, `query?${new URLSearchParams({ query: 'up == 0' })}`)
    return [
      ...alerts
        .filter((a) => !TOLERATED_ALERTS.has(a.labels.alertname!))
        .map((a) => `${a.labels.alertname} ${a.state}`),
      ...down.result.map((r) => `${r.metric.job}@${r.metric.host} down`),
    ]
  }
  await until('every target up, no alert raised', 300_000, async () => (await raised()).length === 0, 2000).catch(
    () => {},
  )
  t.same(await raised(), [], 'the stack is left healthy: every target up, no alert raised')
}

export const alerting: SiteCheck = {
  name: 'alerting: a Redis replica power cut reaches an Alertmanager webhook, and so does its resolution',
  destructive: true,
  async run(t, ctx) {
    const [monitor] = ctx.hosts('monitoring')
    const prometheus = `http://${ctx.lab.host(monitor!).address}:9090`
    const hook = await webhookReceiver(ctx.lab.need().gateway)
    t.teardown(() => hook.close())
    const receiver = { name: 'site-test', type: 'webhook', url: hook.url }
    const timing = { alertmanager_group_wait: '5s', alertmanager_group_interval: '10s' }
    const configured = await configureAlertmanager(ctx, 'alerting-receiver', {
      alertmanager_receivers: [receiver],
      ...timing,
    })
    t.equal(configured.exitCode, 0, `the webhook ${hook.url} is a receiver (${configured.tail.slice(-300)})`)
    if (configured.exitCode !== 0) return
    try {
      await powerCut(t, ctx, prometheus, hook)
    } finally {
      const restored = await configureAlertmanager(ctx, 'alerting-restore')
      t.equal(restored.exitCode, 0, "the inventory's own receivers are back")
    }
  },
}

/** Power-cut a Redis replica, then boot it again; the webhook must hear of both. */
async function powerCut(t: Tap, ctx: SiteContext, prometheus: string, hook: WebhookReceiver) {
  const { groups } = await prometheusGet<RulesData>(prometheus, 'rules')
  const group = groups.find((g) => g.rules.some((r) => r.name === ALERT))!
  const forMs = (group.rules.find((r) => r.name === ALERT)!.duration ?? 0) * 1000
  const intervalMs = group.interval * 1000
  const fault = await pickFault(t, ctx, prometheus)
  if (!fault) return void t.fail('no Redis replica to take down')
  const { victim, power } = fault
  t.comment(`${victim}: ${power ? 'a power cut' : "its Redis stopped (no replica's host may lose its power)"}`)
  const address = ctx.lab.host(victim).address
  const password = ctx.secrets().redis_password!

  const killedAt = Date.now()
  if (power) await ctx.lab.kill(victim)
  else await ctx.lab.ssh(victim, 'sudo systemctl stop redis-server', { timeoutMs: 30_000 })
  let activeAt: number | undefined
  const fired = await until(
    `${ALERT} for ${victim} reaches the webhook`,
    300_000,
    async () => {
      const { alerts } = await prometheusGet<{ alerts: Alert[] }>(prometheus, 'alerts')
      const mine = alerts.find((a) => a.labels.alertname === ALERT && a.labels.host === victim)
      if (mine && activeAt === undefined) activeAt = Date.parse(mine.activeAt)
      return notified(hook, victim, 'firing')
    },
    1000,
  ).catch(() => undefined)
  t.ok(fired, `the webhook received ${ALERT} firing with host ${victim}`)
  if (fired && activeAt !== undefined) {
    const pendingMs = Date.parse(fired.startsAt) - activeAt
    t.ok(
      pendingMs >= forMs && pendingMs <= forMs + intervalMs,
      `fired ${seconds(pendingMs)} after it was pending (for: ${seconds(forMs)} + one evaluation, ${seconds(intervalMs)})`,
    )
    t.equal(fired.labels.alertname, ALERT)
    t.equal(fired.labels.host, victim)
    t.comment(
      `time to fire: ${seconds(fired.at - killedAt)} from the power cut to the webhook ` +
        `(pending after ${seconds(activeAt - killedAt)}, firing ${seconds(pendingMs)} later, ` +
        `POSTed ${seconds(fired.at - Date.parse(fired.startsAt))} after that)`,
    )
  }

  const startedAt = Date.now()
  if (power) await ctx.lab.start(victim)
  else await ctx.lab.ssh(victim, 'sudo systemctl start redis-server', { timeoutMs: 30_000 })
  const replicaAt = await until(
    `${victim} replicates again`,
    180_000,
    async () => (await replicating(ctx, address, password)) && Date.now(),
  )
  t.comment(`${victim}'s Redis replicates ${seconds(replicaAt - startedAt)} after ${power ? 'lab start' : 'its start'}`)
  const resolved = await until(`${ALERT} for ${victim} resolved at the webhook`, 180_000, async () =>
    notified(hook, victim, 'resolved'),
  ).catch(() => undefined)
  t.ok(resolved, `the webhook received ${ALERT} resolved for ${victim}`)
  if (resolved)
    t.comment(
      `time to resolve: ${seconds(resolved.at - startedAt)} from the start to the webhook ` +
        `(${seconds(resolved.at - replicaAt)} after Redis replicates again)`,
    )
  await healthy(t, prometheus)
}
