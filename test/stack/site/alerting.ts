/**
 * An alert reaches a receiver, and so does its resolution: a webhook receiver on the lab bridge's
 * gateway address becomes an Alertmanager receiver through the inventory (`-e`, the alertmanager
 * role alone, notifications after 5 s and changes every 10 s), a Redis replica host gets a power
 * cut, and RedisReplicaDown, naming that host, must fire within its `for:` plus one evaluation
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

/** A Redis replica that is neither the monitoring host, the VIP holder nor the Patroni primary. */
async function pickReplica(ctx: SiteContext, prometheus: string): Promise<string | undefined> {
  const hostsOf = async (expr: string) =>
    (await prometheusGet<Vector>(prometheus, `query?${new URLSearchParams({ query: expr })}`)).result.map(
      (r) => r.metric.host!,
    )
  const replicas = await hostsOf('redis_instance_info{job="redis", role="slave"}')
  // Spared: the monitoring host, the load balancer clients reach (the VIP holder, or every haproxy
  // host without a VIP) and the Patroni primary, whose loss would raise failover alerts of its own.
  // An etcd leader may go: a new one is elected in well under EtcdNoLeader's minute.
  const vip = ctx.lab.need().vip
  const spared = new Set([
    ...ctx.hosts('monitoring'),
    ...(vip ? await holders(ctx, vip) : ctx.hosts('haproxy')),
    ...(await hostsOf('patroni_primary == 1')),
  ])
  return replicas.sort().find((h) => !spared.has(h))
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
  const victim = await pickReplica(ctx, prometheus)
  if (!victim)
    return void t.fail(
      'no Redis replica outside the monitoring host, the VIP holder and the Patroni primary to power-cut',
    )
  const address = ctx.lab.host(victim).address
  const password = ctx.secrets().redis_password!

  const killedAt = Date.now()
  await ctx.lab.kill(victim)
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
  await ctx.lab.start(victim)
  const replicaAt = await until(
    `${victim} replicates again`,
    180_000,
    async () => (await replicating(ctx, address, password)) && Date.now(),
  )
  t.comment(`${victim}'s Redis replicates ${seconds(replicaAt - startedAt)} after lab start`)
  const resolved = await until(`${ALERT} for ${victim} resolved at the webhook`, 180_000, async () =>
    notified(hook, victim, 'resolved'),
  ).catch(() => undefined)
  t.ok(resolved, `the webhook received ${ALERT} resolved for ${victim}`)
  if (resolved)
    t.comment(
      `time to resolve: ${seconds(resolved.at - startedAt)} from lab start to the webhook ` +
        `(${seconds(resolved.at - replicaAt)} after Redis replicates again)`,
    )
  await healthy(t, prometheus)
}
