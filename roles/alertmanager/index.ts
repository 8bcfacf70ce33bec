/**
 * alertmanager: Debian's prometheus-alertmanager on the monitoring group (port 9093 on
 * the cluster address, no gossip port), with the receivers the inventory lists (webhook
 * URLs, e-mail addresses). A new alertmanager.yml must pass `amtool check-config` before
 * it replaces the old; a change is applied by a reload.
 */
import { stringify } from 'yaml'
import type { Inventory, Role, Vars } from '../../lib/types.ts'
import { file, service, template, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { durationErrors } from '../monitoring/duration.ts'
import { alertmanagerConfig, receiverErrors, type NotifyTiming, type Receiver, type SmtpSettings } from './receivers.ts'
import { groupMembers } from '../stack.ts'

export interface AlertmanagerVars extends Vars {
  alertmanager_port: number
  alertmanager_receivers: Receiver[]
  alertmanager_smtp_smarthost: string
  alertmanager_smtp_from: string
  alertmanager_group_wait: string
  alertmanager_group_interval: string
  alertmanager_repeat_interval: string
}

const SECOND = 1000
const HOUR = 3600_000

function smtpOf(v: Vars): SmtpSettings {
  return { smarthost: String(v.alertmanager_smtp_smarthost ?? ''), from: String(v.alertmanager_smtp_from ?? '') }
}

function timingOf(v: Vars): NotifyTiming {
  return {
    groupWait: String(v.alertmanager_group_wait),
    groupInterval: String(v.alertmanager_group_interval),
    repeatInterval: String(v.alertmanager_repeat_interval),
  }
}

/** The receivers and notification timing of every monitoring host, checked before any connection. */
export function validateAlertmanager(inventory: Inventory): string[] {
  const hosts = groupMembers(inventory, 'monitoring')
  return hosts.flatMap((name) => {
    const v = inventory.hosts.get(name)!.vars
    return [
      ...receiverErrors(v.alertmanager_receivers ?? [], smtpOf(v)),
      ...durationErrors('alertmanager_group_wait', v.alertmanager_group_wait, SECOND, HOUR, '1s and 1h'),
      ...durationErrors('alertmanager_group_interval', v.alertmanager_group_interval, SECOND, 24 * HOUR, '1s and 1d'),
      ...durationErrors(
        'alertmanager_repeat_interval',
        v.alertmanager_repeat_interval,
        60 * SECOND,
        30 * 24 * HOUR,
        '1m and 30d',
      ),
    ].map((e) => `host ${name}: ${e}`)
  })
}

/** alertmanager.yml as written on the host. */
export function alertmanagerYaml(vars: Vars): string {
  const header = '# Managed by hastack: local changes are overwritten on the next run.\n'
  return (
    header +
    stringify(alertmanagerConfig(vars.alertmanager_receivers as Receiver[], smtpOf(vars), timingOf(vars)), {
      lineWidth: 0,
    })
  )
}

export const alertmanagerRole: Role<AlertmanagerVars> = {
  name: 'alertmanager',
  description: "Alertmanager on the monitoring group, sending every alert to the inventory's receivers.",
  defaults: {
    alertmanager_port: 9093,
    alertmanager_receivers: [],
    alertmanager_smtp_smarthost: '',
    alertmanager_smtp_from: '',
    alertmanager_group_wait: '30s',
    alertmanager_group_interval: '5m',
    alertmanager_repeat_interval: '4h',
  },
  schema: {
    alertmanager_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Alertmanager port on the cluster address.',
    },
    alertmanager_receivers: {
      type: 'array',
      items: { type: 'object' },
      description: 'Where alerts go: `{name, type: webhook, url}` or `{name, type: email, to}`, optional `severities`.',
    },
    alertmanager_smtp_smarthost: {
      type: 'string',
      pattern: '^$|^[A-Za-z0-9.-]+:[0-9]{1,5}$',
      description: 'Mail relay (`host:port`) for e-mail receivers.',
    },
    alertmanager_smtp_from: {
      type: 'string',
      pattern: '^$|^[^\\s@<>"\'`]+@[A-Za-z0-9.-]+$',
      description: 'Sender address of alert e-mails.',
    },
    alertmanager_group_wait: {
      type: 'string',
      pattern: '^[0-9a-z]+$',
      description: 'How long a new group of alerts waits for more before its first notification (1s to 1h).',
    },
    alertmanager_group_interval: {
      type: 'string',
      pattern: '^[0-9a-z]+$',
      description: 'How long a group waits before it notifies its changes, resolved alerts included (1s to 1d).',
    },
    alertmanager_repeat_interval: {
      type: 'string',
      pattern: '^[0-9a-z]+$',
      description: 'How long before an unchanged firing group is notified again (1m to 30d).',
    },
  },
  validate: validateAlertmanager,
  handlers: {
    'Reload Alertmanager': (h) =>
      h.do(service({ service: 'prometheus-alertmanager', state: 'reloaded', name: 'Reload Alertmanager' })),
    // A restart reads the new configuration too: when both are notified, the reload is left out.
    'Restart Alertmanager': {
      supersedes: ['Reload Alertmanager'],
      run: (h) =>
        h.do(service({ service: 'prometheus-alertmanager', state: 'restarted', name: 'Restart Alertmanager' })),
    },
  },
  async tasks(h) {
    const v = h.vars
    await installWithoutStarting(h, ['prometheus-alertmanager'], 'Alertmanager')
    await h.doAll(
      [
        template({
          src: 'alertmanager/default.ejs',
          dest: '/etc/default/prometheus-alertmanager',
          notify: 'Restart Alertmanager',
          name: 'Ensure the Alertmanager arguments are current',
        }),
        file({
          path: '/etc/prometheus/alertmanager.yml',
          content: alertmanagerYaml(v),
          validate: 'amtool check-config %s',
          owner: 'root',
          group: 'prometheus',
          mode: '0640',
          notify: 'Reload Alertmanager',
          name: 'Ensure the Alertmanager configuration is current',
        }),
        service({
          service: 'prometheus-alertmanager',
          enabled: true,
          state: 'started',
          name: 'Ensure Alertmanager is enabled and started',
        }),
      ],
      // After the handlers: the wait's first try is gathered with the tasks' probes unless a handler ran.
      {
        afterHandlers: [
          waitFor({
            url: `http://${v.address}:${v.alertmanager_port}/-/ready`,
            timeoutMs: 60_000,
            intervalMs: 1000,
            name: 'Wait for Alertmanager to be ready',
          }),
        ],
      },
    )
  },
}
