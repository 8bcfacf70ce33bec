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
import { alertmanagerConfig, receiverErrors, type Receiver, type SmtpSettings } from './receivers.ts'
import { groupMembers } from '../stack.ts'

export interface AlertmanagerVars extends Vars {
  alertmanager_port: number
  alertmanager_receivers: Receiver[]
  alertmanager_smtp_smarthost: string
  alertmanager_smtp_from: string
}

function smtpOf(v: Vars): SmtpSettings {
  return { smarthost: String(v.alertmanager_smtp_smarthost ?? ''), from: String(v.alertmanager_smtp_from ?? '') }
}

/** The receivers of every monitoring host, checked before any connection. */
export function validateAlertmanager(inventory: Inventory): string[] {
  const hosts = groupMembers(inventory, 'monitoring')
  return hosts.flatMap((name) => {
    const v = inventory.hosts.get(name)!.vars
    return receiverErrors(v.alertmanager_receivers ?? [], smtpOf(v)).map((e) => `host ${name}: ${e}`)
  })
}

/** alertmanager.yml as written on the host. */
export function alertmanagerYaml(vars: Vars): string {
  const header = '# Managed by hastack: local changes are overwritten on the next run.\n'
  return (
    header + stringify(alertmanagerConfig(vars.alertmanager_receivers as Receiver[], smtpOf(vars)), { lineWidth: 0 })
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
  },
  validate: validateAlertmanager,
  handlers: {
    'Reload Alertmanager': (h) =>
      h.do(service({ service: 'prometheus-alertmanager', state: 'reloaded', name: 'Reload Alertmanager' })),
    'Restart Alertmanager': (h) =>
      h.do(service({ service: 'prometheus-alertmanager', state: 'restarted', name: 'Restart Alertmanager' })),
  },
  async tasks(h) {
    const v = h.vars
    await installWithoutStarting(h, ['prometheus-alertmanager'], 'Alertmanager')
    await h.do(
      template({
        src: 'alertmanager/default.ejs',
        dest: '/etc/default/prometheus-alertmanager',
        notify: 'Restart Alertmanager',
        name: 'Ensure the Alertmanager arguments are current',
      }),
    )
    await h.do(
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
    )
    await h.do(
      service({
        service: 'prometheus-alertmanager',
        enabled: true,
        state: 'started',
        name: 'Ensure Alertmanager is enabled and started',
      }),
    )
    await h.flushHandlers()
    await h.do(
      waitFor({
        url: `http://${v.address}:${v.alertmanager_port}/-/ready`,
        timeoutMs: 60_000,
        intervalMs: 1000,
        name: 'Wait for Alertmanager to be ready',
      }),
    )
  },
}
