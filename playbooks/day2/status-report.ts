/**
 * The status of the stack for people and for programs: `statusReport` turns a reading and its
 * problems into one JSON document (what `status.ts --json` prints), `statusText` into one screen of
 * text, coloured when asked (a terminal) and plain otherwise (piped, NO_COLOR).
 */
import type { Component } from './health.ts'
import { hostOf, postgresView, redisView } from './health.ts'
import type { StackState } from './stack-state.ts'

export interface StatusReport {
  healthy: boolean
  readAt: string
  problems: Record<Component, string[]>
  unreachable: Record<string, string>
  postgres: ReturnType<typeof postgresView>
  etcd: { host: string; healthy: boolean; leader: boolean }[]
  redis: { primary?: string; replicas: { host: string; linkUp: boolean; offset?: number }[] }
  sentinels: { host: string; primary?: string }[]
  haproxy: { host: string; backends?: Record<string, { up: string[]; down: string[] }> }[]
  vip?: { address: string; holders: string[] }
  backup?: { host: string; timestamp: number; ageSeconds: number }
  alerts?: string[]
}

export function statusReport(state: StackState, problems: Record<Component, string[]>): StatusReport {
  const redis = redisView(state)
  return {
    healthy: Object.values(problems).every((p) => p.length === 0) && !Object.keys(state.unreachable).length,
    readAt: state.readAt,
    problems,
    unreachable: state.unreachable,
    postgres: postgresView(state),
    etcd: state.etcd.map((r) => ({
      host: r.host,
      healthy: r.healthy,
      leader: !!r.memberId && r.memberId === r.leaderId,
    })),
    redis: {
      primary: redis.primary,
      replicas: state.redis
        .filter((r) => r.role === 'slave')
        .map((r) => ({ host: r.host, linkUp: Boolean(r.linkUp), offset: r.offset })),
    },
    sentinels: state.sentinels.map((r) => ({ host: r.host, primary: hostOf(state, r.primary) })),
    haproxy: state.haproxy.map((r) => ({ host: r.host, backends: r.backends })),
    vip: state.vip,
    backup: state.backup && {
      ...state.backup,
      ageSeconds: Math.round(Date.parse(state.readAt) / 1000 - state.backup.timestamp),
    },
    alerts: state.alerts,
  }
}

const PAINT = { red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', bold: '\x1b[1m', reset: '\x1b[0m' }

/** A duration in seconds as `3 h 12 min`, `4 min 05 s` or `12 s`. */
export function age(seconds: number): string {
  if (seconds >= 86_400) return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
  if (seconds >= 60) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`
  return `${seconds} s`
}

export function statusText(report: StatusReport, colour: boolean): string {
  const paint = (code: keyof typeof PAINT, text: string) => (colour ? `${PAINT[code]}${text}${PAINT.reset}` : text)
  const mark = (ok: boolean) => (ok ? paint('green', 'ok  ') : paint('red', 'FAIL'))
  const out: string[] = []
  const section = (title: string, problems: string[]) => {
    out.push(`${mark(problems.length === 0)} ${paint('bold', title)}`)
    for (const p of problems) out.push(`       ${paint('red', p)}`)
  }
  const pg = report.postgres
  section(`PostgreSQL/Patroni: leader ${pg.leader ?? 'none'}`, report.problems.postgres)
  for (const m of pg.members) {
    const lag =
      m.role === 'leader'
        ? ''
        : `lag ${m.lagBytes === undefined ? 'unknown' : `${m.lagBytes} B`}, ${m.streaming ? 'streaming' : 'NOT streaming'}`
    out.push(`       ${m.name.padEnd(12)} ${m.role.padEnd(8)} ${m.state.padEnd(9)} tl ${m.timeline ?? '?'}  ${lag}`)
  }
  section('etcd', report.problems.etcd)
  for (const e of report.etcd)
    out.push(`       ${e.host.padEnd(12)} ${e.healthy ? 'healthy' : 'UNHEALTHY'}${e.leader ? '  leader' : ''}`)
  section(`Redis: primary ${report.redis.primary ?? 'none'}`, report.problems.redis)
  for (const r of report.redis.replicas)
    out.push(`       ${r.host.padEnd(12)} replica  link ${r.linkUp ? 'up' : 'DOWN'}  offset ${r.offset ?? '?'}`)
  section('Sentinels', report.problems.sentinel)
  for (const s of report.sentinels) out.push(`       ${s.host.padEnd(12)} names ${s.primary ?? 'nothing'}`)
  if (report.problems.app.length) section('App servers at HAProxy', report.problems.app)
  section('HAProxy', report.problems.haproxy)
  for (const h of report.haproxy) {
    const routed = Object.entries(h.backends ?? {})
      .filter(([name, b]) => b.up.length > 0 || name.startsWith('postgres'))
      .map(([name, b]) => `${name} ${b.up.length}/${b.up.length + b.down.length} up`)
    out.push(`       ${h.host.padEnd(12)} ${routed.join(', ')}`)
  }
  if (report.vip) out.push(`     VIP ${report.vip.address}: held by ${report.vip.holders.join(', ') || 'nobody'}`)
  if (report.backup) out.push(`     last backup: ${age(report.backup.ageSeconds)} ago (on ${report.backup.host})`)
  if (report.alerts) {
    const firing = report.alerts.length ? paint('yellow', report.alerts.join(', ')) : 'none'
    out.push(`     alerts firing: ${firing}`)
  }
  for (const [host, why] of Object.entries(report.unreachable)) out.push(paint('red', `UNREACHABLE ${host}: ${why}`))
  out.push(report.healthy ? paint('green', 'HEALTHY') : paint('red', 'UNHEALTHY'))
  return out.join('\n')
}
