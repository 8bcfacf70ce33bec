/**
 * Alertmanager's configuration from the inventory: receivers (webhook URLs, e-mail
 * addresses) checked before any connection, and a route that sends every alert to every
 * receiver (optionally only some severities). Pure: variables in, errors or config out.
 */

export type ReceiverType = 'webhook' | 'email'
export const SEVERITIES = ['critical', 'warning', 'info'] as const

export interface Receiver {
  name: string
  type: ReceiverType
  /** webhook: where Alertmanager POSTs its JSON. */
  url?: string
  /** email: the recipient. */
  to?: string
  /** Only alerts of these severities (default: all). */
  severities?: string[]
}

export interface SmtpSettings {
  smarthost: string
  from: string
}

/** How long Alertmanager waits before it notifies: a new group, a group's changes, a reminder. */
export interface NotifyTiming {
  groupWait: string
  groupInterval: string
  repeatInterval: string
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/
const URL_TEXT = /^https?:\/\/[^\s"'\\]+$/
const EMAIL = /^[^\s@"'\\,<>]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/
const SMARTHOST = /^[A-Za-z0-9.-]+:\d{1,5}$/
const KEYS: Record<ReceiverType, string[]> = {
  webhook: ['name', 'type', 'url', 'severities'],
  email: ['name', 'type', 'to', 'severities'],
}

/** Every problem of the receivers list and the SMTP settings e-mail receivers need. */
export function receiverErrors(receivers: unknown, smtp: SmtpSettings): string[] {
  if (!Array.isArray(receivers)) return ['alertmanager_receivers must be a list']
  const errors: string[] = []
  const seen = new Set<string>()
  receivers.forEach((r: Record<string, unknown>, i) => {
    const where = `alertmanager_receivers[${i}]`
    if (typeof r !== 'object' || r === null) return errors.push(`${where} must be a mapping`)
    const name = String(r.name ?? '')
    if (!NAME.test(name)) errors.push(`${where}: name "${name}" must be 1-64 letters, digits, _ or -`)
    if (seen.has(name)) errors.push(`${where}: the name ${name} is used twice`)
    seen.add(name)
    const type = r.type as ReceiverType
    if (!(type in KEYS)) return errors.push(`${where}: unknown receiver type "${String(r.type)}" (webhook or email)`)
    for (const key of Object.keys(r))
      if (!KEYS[type].includes(key)) errors.push(`${where}: unknown key ${key} for a ${type} receiver`)
    if (type === 'webhook' && !URL_TEXT.test(String(r.url ?? ''))) errors.push(`${where}: url must be an http(s) URL`)
    if (type === 'email') {
      if (!EMAIL.test(String(r.to ?? ''))) errors.push(`${where}: to must be an e-mail address`)
      if (!SMARTHOST.test(smtp.smarthost))
        errors.push(`${where}: e-mail needs alertmanager_smtp_smarthost as host:port`)
      if (!EMAIL.test(smtp.from)) errors.push(`${where}: e-mail needs alertmanager_smtp_from as an address`)
    }
    if (r.severities !== undefined) {
      const ok = Array.isArray(r.severities) && r.severities.length > 0
      if (!ok || !(r.severities as unknown[]).every((s) => (SEVERITIES as readonly unknown[]).includes(s)))
        errors.push(`${where}: severities must be a non-empty list of ${SEVERITIES.join(', ')}`)
    }
  })
  return errors
}

/** alertmanager.yml as an object: every receiver gets every alert (of its severities). */
export function alertmanagerConfig(
  receivers: Receiver[],
  smtp: SmtpSettings,
  timing: NotifyTiming,
): Record<string, unknown> {
  const usesEmail = receivers.some((r) => r.type === 'email')
  return {
    ...(usesEmail ? { global: { smtp_smarthost: smtp.smarthost, smtp_from: smtp.from, smtp_require_tls: false } } : {}),
    route: {
      receiver: 'hastack-none',
      group_by: ['alertname', 'job', 'scope', 'master_name'],
      group_wait: timing.groupWait,
      group_interval: timing.groupInterval,
      repeat_interval: timing.repeatInterval,
      routes: receivers.map((r) => ({
        receiver: r.name,
        continue: true,
        ...(r.severities ? { matchers: [`severity=~"${r.severities.join('|')}"`] } : {}),
      })),
    },
    receivers: [
      { name: 'hastack-none' },
      ...receivers.map((r) =>
        r.type === 'webhook'
          ? { name: r.name, webhook_configs: [{ url: r.url, send_resolved: true }] }
          : { name: r.name, email_configs: [{ to: r.to, send_resolved: true }] },
      ),
    ],
  }
}
