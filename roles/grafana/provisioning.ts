/**
 * The files Grafana reads, built from a host's variables: grafana.ini (the cluster address only,
 * the generated admin password, no anonymous access, no sign-up, no phoning home), the Prometheus
 * datasource with the uid every dashboard queries, and the provider that loads hastack's
 * dashboards/*.json from one directory.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { stringify } from 'yaml'
import type { Vars } from '../../lib/types.ts'
import { DATASOURCE } from '../../monitoring/dashboards/builder.ts'
import { DASHBOARDS_DIR } from '../../monitoring/dashboards/index.ts'

export const GRAFANA_DIR = '/etc/grafana'
export const DATASOURCE_FILE = `${GRAFANA_DIR}/provisioning/datasources/hastack.yaml`
export const PROVIDER_FILE = `${GRAFANA_DIR}/provisioning/dashboards/hastack.yaml`
/** Where the dashboards' JSON files are copied on the host (read by the provider). */
export const DASHBOARDS_REMOTE_DIR = '/var/lib/grafana/dashboards/hastack'

const HEADER = '# Managed by hastack: local changes are overwritten on the next run.\n'

/** grafana.ini as written on the host. The password is wrapped in `"""` so `#` and `;` stay part of it. */
export function grafanaIni(vars: Vars): string {
  const sections: [string, [string, string | number | boolean][]][] = [
    [
      'server',
      [
        ['http_addr', String(vars.address)],
        ['http_port', Number(vars.grafana_port)],
      ],
    ],
    [
      'security',
      [
        ['admin_user', 'admin'],
        ['admin_password', `"""${String(vars.grafana_admin_password)}"""`],
        ['disable_gravatar', true],
      ],
    ],
    ['auth.anonymous', [['enabled', false]]],
    [
      'users',
      [
        ['allow_sign_up', false],
        ['allow_org_create', false],
      ],
    ],
    [
      'analytics',
      [
        ['reporting_enabled', false],
        ['check_for_updates', false],
        ['check_for_plugin_updates', false],
      ],
    ],
    ['paths', [['provisioning', `${GRAFANA_DIR}/provisioning`]]],
  ]
  const body = sections.map(([name, keys]) => [`[${name}]`, ...keys.map(([k, v]) => `${k} = ${v}`)].join('\n'))
  return `${HEADER.replace('#', ';')}${body.join('\n\n')}\n`
}

/** The Prometheus datasource of this monitoring host (Prometheus runs beside Grafana). */
export function datasourceYaml(vars: Vars): string {
  const datasource = {
    name: 'Prometheus',
    type: DATASOURCE.type,
    uid: DATASOURCE.uid,
    access: 'proxy',
    url: `http://${String(vars.address)}:${Number(vars.prometheus_port)}`,
    isDefault: true,
    editable: false,
  }
  return HEADER + stringify({ apiVersion: 1, datasources: [datasource] }, { lineWidth: 0 })
}

/** The provider that loads every JSON file of the dashboards directory into a "hastack" folder. */
export function dashboardProviderYaml(): string {
  const provider = {
    name: 'hastack',
    folder: 'hastack',
    type: 'file',
    disableDeletion: true,
    allowUiUpdates: false,
    options: { path: DASHBOARDS_REMOTE_DIR },
  }
  return HEADER + stringify({ apiVersion: 1, providers: [provider] }, { lineWidth: 0 })
}

/** The committed dashboards: file name and JSON text, sorted by name. */
export function dashboardFiles(): { name: string; json: string }[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => ({ name, json: readFileSync(DASHBOARDS_DIR + name, 'utf8') }))
}
