/**
 * grafana: Grafana on the monitoring group (port 3000 on the cluster address), from Grafana's
 * signed APT repository (its key pinned by fingerprint, the source `signed-by` that key only) or,
 * for air-gapped sites, from a .deb on the controller (`grafana_deb`, copied to the host). Grafana
 * is not in Debian: when its source cannot be reached (the repository does not answer within a
 * bound, or the .deb is missing) and Grafana is not installed yet, the role is skipped with the
 * reason and touches nothing. Where it installs: the generated admin password, no anonymous
 * access, the Prometheus datasource and every dashboards/*.json provisioned from files, and a
 * restart when any of them changes.
 */
import { existsSync, readFileSync } from 'node:fs'
import type { HostRun, Role, Vars } from '../../lib/types.ts'
import { absent, defineTask, directory, file, noChange, packages, service, waitFor } from '../../lib/tasks/index.ts'
import { quote, sh } from '../../lib/connection/quote.ts'
import { allInstalled } from '../common/apt.ts'
import { keyMismatch } from './apt-key.ts'
import {
  dashboardFiles,
  dashboardProviderYaml,
  DASHBOARDS_REMOTE_DIR,
  DATASOURCE_FILE,
  datasourceYaml,
  GRAFANA_DIR,
  grafanaIni,
  PROVIDER_FILE,
} from './provisioning.ts'

export interface GrafanaVars extends Vars {
  grafana_port: number
  grafana_deb: string
  grafana_apt_url: string
  grafana_apt_key_fingerprint: string
  /** A generated secret without a default: always set once the inventory is loaded. */
  grafana_admin_password?: string
}

/** Grafana's APT signing key since 2023-01 (https://apt.grafana.com). */
export const GRAFANA_KEY_FINGERPRINT = 'B53AE77BADB630A683046005963FA27710458545'
export const KEYRING = '/etc/apt/keyrings/grafana.asc'
export const SOURCES_LIST = '/etc/apt/sources.list.d/grafana.list'
/** Where a .deb from the controller is copied on the host. */
export const REMOTE_DEB = '/var/cache/hastack/grafana.deb'
/** The longest the repository may take to answer before the role skips (seconds). */
export const PROBE_SECONDS = 30

/** The shell command that downloads the repository's key with apt's own settings (proxy), bounded in time. */
export function keyProbeCommand(aptUrl: string): string {
  const url = `${aptUrl.replace(/\/+$/, '')}/gpg.key`
  const timeouts = ['-o', 'Acquire::Retries=0', '-o', 'Acquire::http::Timeout=15', '-o', 'Acquire::https::Timeout=15']
  const helper = sh`timeout ${PROBE_SECONDS} /usr/lib/apt/apt-helper ${timeouts} download-file ${url}`
  return `t=$(mktemp) && trap 'rm -f "$t"' EXIT && ${helper} "$t" >/dev/null 2>&1 && cat "$t"`
}

/**
 * Where Grafana comes from on this host, decided before anything is written: the .deb's bytes, the
 * repository's (pinned) key, `installed` when the package is there and its source is not reachable
 * now, or undefined after a skipped task that says why nothing is installed.
 */
async function grafanaSource(
  h: HostRun,
  v: GrafanaVars & Vars,
): Promise<{ deb: Buffer } | { key: string } | 'installed' | undefined> {
  const installed = await allInstalled(h, ['grafana'])
  let found: { deb: Buffer } | { key: string } | 'installed' | undefined
  await h.do(
    defineTask('Ensure the Grafana package source is reachable', {}, async (ctx) => {
      let why: string
      if (v.grafana_deb) {
        if (existsSync(v.grafana_deb)) {
          found = { deb: readFileSync(v.grafana_deb) }
          return noChange(`installing from ${v.grafana_deb}`)
        }
        why = `grafana_deb ${v.grafana_deb} does not exist on this machine`
      } else if (!v.grafana_apt_url) {
        why = 'no Grafana source is set (grafana_deb and grafana_apt_url are empty)'
      } else {
        const probe = await ctx.conn.run(keyProbeCommand(v.grafana_apt_url), { timeoutMs: (PROBE_SECONDS + 15) * 1000 })
        if (probe.code === 0 && probe.stdout.includes('BEGIN PGP PUBLIC KEY BLOCK')) {
          const mismatch = keyMismatch(probe.stdout, v.grafana_apt_key_fingerprint)
          if (mismatch) throw new Error(`refusing the Grafana repository at ${v.grafana_apt_url}: ${mismatch}`)
          found = { key: probe.stdout }
          return noChange(`${v.grafana_apt_url} answers with the pinned key ${v.grafana_apt_key_fingerprint}`)
        }
        why = `${v.grafana_apt_url} could not be reached (apt-helper exit ${probe.code}, bounded at ${PROBE_SECONDS} s)`
      }
      if (installed) {
        found = 'installed'
        return noChange(`${why}: the installed Grafana is kept as it is`)
      }
      return { change: false, skip: true, reason: `${why}: Grafana is not installed (Grafana is not in Debian)` }
    }),
  )
  return found
}

/** Install Grafana from the repository (key and source first) or from the copied .deb. */
async function installGrafana(h: HostRun, source: { deb: Buffer } | { key: string }): Promise<void> {
  if ('key' in source) {
    await h.doAll([
      directory({ path: '/etc/apt/keyrings', mode: '0755', name: 'Ensure the APT keyrings directory exists' }),
      file({ path: KEYRING, content: source.key, mode: '0644', name: "Ensure Grafana's signing key is pinned" }),
    ])
    const url = String(h.vars.grafana_apt_url).replace(/\/+$/, '')
    await h.doAll([
      file({
        path: SOURCES_LIST,
        content: `# Managed by hastack.\ndeb [signed-by=${KEYRING}] ${url} stable main\n`,
        mode: '0644',
        name: "Ensure Grafana's APT source is configured",
      }),
      // A new source needs a fresh index: refresh whenever the package is still missing.
      packages({
        install: ['grafana'],
        cacheValidSeconds: 0,
        denyServiceStarts: true,
        name: 'Ensure Grafana is installed',
      }),
    ])
    return
  }
  await h.doAll([
    directory({ path: '/var/cache/hastack', mode: '0755', name: 'Ensure the package cache directory exists' }),
    file({ path: REMOTE_DEB, content: source.deb, mode: '0644', name: 'Ensure the Grafana .deb is copied' }),
    packages({
      install: ['grafana'],
      debFiles: { grafana: REMOTE_DEB },
      denyServiceStarts: true,
      name: 'Ensure Grafana is installed',
    }),
  ])
}

/** The provisioning files and dashboards; each change restarts Grafana. */
async function provisionGrafana(h: HostRun): Promise<void> {
  const v = h.vars
  const grafanaFile = (path: string, content: string, name: string) =>
    file({ path, content, owner: 'root', group: 'grafana', mode: '0640', notify: 'Restart Grafana', name })
  await h.do(grafanaFile(`${GRAFANA_DIR}/grafana.ini`, grafanaIni(v), 'Ensure the Grafana settings are current'))
  for (const dir of [`${GRAFANA_DIR}/provisioning/datasources`, `${GRAFANA_DIR}/provisioning/dashboards`]) {
    await h.do(directory({ path: dir, owner: 'root', group: 'grafana', mode: '0755', name: `Ensure ${dir} exists` }))
  }
  await h.doAll([
    grafanaFile(DATASOURCE_FILE, datasourceYaml(v), 'Ensure the Prometheus datasource is provisioned'),
    grafanaFile(PROVIDER_FILE, dashboardProviderYaml(), 'Ensure the dashboard provider is provisioned'),
    directory({ path: DASHBOARDS_REMOTE_DIR, mode: '0755', name: 'Ensure the dashboards directory exists' }),
  ])
  const wanted = dashboardFiles()
  for (const { name, json } of wanted) {
    const path = `${DASHBOARDS_REMOTE_DIR}/${name}`
    await h.do(file({ path, content: json, mode: '0644', notify: 'Restart Grafana', name: `Ensure dashboard ${name}` }))
  }
  // A dashboard hastack no longer ships would stay in Grafana: remove its file.
  const deployed = (await h.query(`ls -1 ${quote(DASHBOARDS_REMOTE_DIR)}`)).stdout.split('\n')
  for (const name of deployed.filter((f) => f.endsWith('.json') && !wanted.some((w) => w.name === f))) {
    const path = `${DASHBOARDS_REMOTE_DIR}/${name}`
    await h.do(absent({ path, notify: 'Restart Grafana', name: `Remove the old dashboard ${name}` }))
  }
}

export const grafanaRole: Role<GrafanaVars> = {
  name: 'grafana',
  description: "Grafana on the monitoring group (skipped where its package source can't be reached).",
  defaults: {
    grafana_port: 3000,
    grafana_deb: '',
    grafana_apt_url: 'https://apt.grafana.com',
    grafana_apt_key_fingerprint: GRAFANA_KEY_FINGERPRINT,
  },
  schema: {
    grafana_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Grafana port on the cluster address.' },
    grafana_deb: {
      type: 'string',
      pattern: '^$|^(/[A-Za-z0-9_.+-]+)+\\.deb$',
      description:
        'Absolute path of a Grafana .deb on the controller, copied and installed instead of the APT ' +
        'repository (air-gapped sites); empty: the repository.',
    },
    grafana_apt_url: {
      type: 'string',
      pattern: '^$|^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?$',
      description:
        "Grafana's APT repository (suite `stable`, component `main`); empty: no repository, so without " +
        '`grafana_deb` the role skips (the lab sets it empty: its hosts reach no address outside the lab).',
    },
    grafana_apt_key_fingerprint: {
      type: 'string',
      pattern: '^[0-9A-F]{40}$',
      description: "Fingerprint the repository's signing key (`<url>/gpg.key`) must have, or nothing is installed.",
    },
    grafana_admin_password: {
      type: 'string',
      minLength: 16,
      pattern: '^[^\\s"]+$',
      secret: true,
      description: 'Password of the Grafana `admin` user, set when Grafana first starts (generated).',
    },
  },
  handlers: {
    'Restart Grafana': (h) => h.do(service({ service: 'grafana-server', state: 'restarted', name: 'Restart Grafana' })),
  },
  async tasks(h) {
    const v = h.vars
    const source = await grafanaSource(h, v)
    if (source === undefined) return
    if (source !== 'installed') await installGrafana(h, source)
    await provisionGrafana(h)
    await h.do(
      service({
        service: 'grafana-server',
        enabled: true,
        state: 'started',
        name: 'Ensure Grafana is enabled and started',
      }),
    )
    await h.flushHandlers()
    await h.do(
      waitFor({
        url: `http://${v.address}:${v.grafana_port}/api/health`,
        timeoutMs: 120_000,
        intervalMs: 1000,
        name: 'Wait for Grafana to be ready',
      }),
    )
  },
}
