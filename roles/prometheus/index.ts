/**
 * prometheus: Debian's Prometheus server on the monitoring group (port 9090 on the
 * cluster address). Its scrape jobs come from the inventory (roles/prometheus/scrape.ts),
 * its alert rules from monitoring/rules, its retention from prometheus_retention. A new
 * prometheus.yml must pass `promtool check config` before it replaces the old one, and a
 * changed configuration or rule file is applied by a reload (SIGHUP), not a restart.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { stringify } from 'yaml'
import type { Inventory, Role, Vars } from '../../lib/types.ts'
import { absent, directory, file, service, template, user, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { durationErrors } from '../monitoring/duration.ts'
import { RULES_DIR, ruleFiles } from './rule-files.ts'
import { HAPROXY_PASSWORD_FILE, prometheusConfig, RULES_REMOTE_DIR } from './scrape.ts'
import { groupMembers, tlsOn } from '../stack.ts'
import { tlsGroup } from '../certificates/index.ts'

export interface PrometheusVars extends Vars {
  prometheus_port: number
  prometheus_retention: string
  prometheus_scrape_interval: string
}

const HOUR = 3600_000

/** Cross-host checks: retention and scrape interval of every monitoring host. */
export function validatePrometheus(inventory: Inventory): string[] {
  const hosts = groupMembers(inventory, 'monitoring')
  return hosts.flatMap((name) => {
    const v = inventory.hosts.get(name)!.vars
    return [
      ...durationErrors('prometheus_retention', v.prometheus_retention, 2 * HOUR, 10 * 365 * 24 * HOUR, '2h and 10y'),
      ...durationErrors('prometheus_scrape_interval', v.prometheus_scrape_interval, 1000, 5 * 60_000, '1s and 5m'),
    ].map((e) => `host ${name}: ${e}`)
  })
}

/** prometheus.yml as written on the host. */
export function prometheusYaml(inventory: Inventory, vars: Vars): string {
  const header = '# Managed by hastack: local changes are overwritten on the next run.\n'
  return header + stringify(prometheusConfig(inventory, vars), { lineWidth: 0 })
}

export const prometheusRole: Role<PrometheusVars> = {
  name: 'prometheus',
  description: "Prometheus on the monitoring group: scrape jobs from the inventory, hastack's tested alert rules.",
  defaults: {
    prometheus_port: 9090,
    prometheus_retention: '15d',
    prometheus_scrape_interval: '15s',
  },
  schema: {
    prometheus_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Prometheus port on the cluster address.',
    },
    prometheus_retention: {
      type: 'string',
      pattern: '^[0-9a-z]+$',
      description: 'How long samples are kept (`--storage.tsdb.retention.time`), 2h to 10y.',
    },
    prometheus_scrape_interval: {
      type: 'string',
      pattern: '^[0-9a-z]+$',
      description: 'Scrape and rule evaluation interval, 1s to 5m.',
    },
  },
  validate: validatePrometheus,
  handlers: {
    'Reload Prometheus': (h) => h.do(service({ service: 'prometheus', state: 'reloaded', name: 'Reload Prometheus' })),
    // A restart reads the new configuration too: when both are notified, the reload is left out.
    'Restart Prometheus': {
      supersedes: ['Reload Prometheus'],
      run: (h) => h.do(service({ service: 'prometheus', state: 'restarted', name: 'Restart Prometheus' })),
    },
  },
  async tasks(h) {
    const v = h.vars
    // With the packages' states: the rule files deployed now (a file hastack no longer ships is removed below).
    const [listing] = await installWithoutStarting(h, ['prometheus'], 'Prometheus', [
      { kind: 'listing', dir: RULES_REMOTE_DIR },
    ])
    const deployed = listing!.stdout.split('\n').filter((f) => f.endsWith('.yml'))
    // Its client certificate for etcd's metrics (scrape.ts): read through the group, from its next start.
    if (tlsOn(v, 'etcd'))
      await h.do(
        user({
          user: 'prometheus',
          groups: [tlsGroup('prometheus')],
          notify: 'Restart Prometheus',
          name: 'Ensure Prometheus may read its TLS key',
        }),
      )
    const wanted = ruleFiles().map((rules) => basename(rules))
    const hasHaproxy = h.inventory.groups.has('haproxy') && h.inventory.groupHosts('haproxy').length > 0
    // One run of tasks, in the order they were always run: their probes answered in one round trip.
    await h.doAll(
      [
        directory({ path: RULES_REMOTE_DIR, mode: '0755', name: 'Ensure the hastack rules directory exists' }),
        ...wanted.map((name) =>
          file({
            path: `${RULES_REMOTE_DIR}/${name}`,
            content: readFileSync(`${RULES_DIR}${name}`, 'utf8'),
            notify: 'Reload Prometheus',
            name: `Ensure the alert rules ${name} are current`,
          }),
        ),
        ...deployed
          .filter((f) => !wanted.includes(f))
          .map((name) =>
            absent({
              path: `${RULES_REMOTE_DIR}/${name}`,
              notify: 'Reload Prometheus',
              name: `Remove the old rule file ${name}`,
            }),
          ),
        ...(hasHaproxy
          ? [
              file({
                path: HAPROXY_PASSWORD_FILE,
                content: String(v.haproxy_stats_password),
                owner: 'root',
                group: 'prometheus',
                mode: '0640',
                name: 'Ensure Prometheus has the HAProxy metrics password',
              }),
            ]
          : []),
        template({
          src: 'prometheus/default.ejs',
          dest: '/etc/default/prometheus',
          notify: 'Restart Prometheus',
          name: 'Ensure the Prometheus arguments are current',
        }),
        file({
          path: '/etc/prometheus/prometheus.yml',
          content: prometheusYaml(h.inventory, v),
          validate: 'promtool check config %s',
          notify: 'Reload Prometheus',
          name: 'Ensure the Prometheus configuration is current',
        }),
        service({
          service: 'prometheus',
          enabled: true,
          state: 'started',
          name: 'Ensure Prometheus is enabled and started',
        }),
      ],
      // After the handlers: the wait's first try is gathered with the tasks' probes unless a handler ran.
      {
        afterHandlers: [
          waitFor({
            url: `http://${v.address}:${v.prometheus_port}/-/ready`,
            timeoutMs: 120_000,
            intervalMs: 1000,
            name: 'Wait for Prometheus to be ready',
          }),
        ],
      },
    )
  },
}
