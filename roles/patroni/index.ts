/**
 * patroni: Debian's patroni package run by our own systemd unit with one
 * configuration file (/etc/patroni/config.yml), etcd3 as the DCS, the REST API
 * and PostgreSQL on the cluster address (PostgreSQL also on loopback), pg_hba
 * limited to the stack's hosts with scram-sha-256, generated passwords. The
 * first member to take the DCS lock bootstraps the cluster; the others clone it.
 * The application database and user are ensured on the leader only. Changed
 * cluster-wide settings go through the dynamic configuration (PATCH /config),
 * followed by a rolling restart where PostgreSQL asks for one.
 */
import type { HostRun, Inventory, InventoryHost, Role, Task, Vars } from '../../lib/types.ts'
import { directory, service, systemdUnit, template, user, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import {
  BACKUP_VARS,
  ETCD_CLIENT_VARS,
  POSTGRESQL_VARS,
  TLS_VARS,
  failoverProfiles,
  groupMembers,
  settingsOf,
  sharedVars,
  tlsOn,
  type StackVars,
} from '../stack.ts'
import { tlsGroup } from '../certificates/index.ts'
import { keepAsBuilt, patroniApiCa, patroniApiUrl, tlsFiles } from '../tls.ts'
import { servesCurrentCertificate } from '../certificates/served.ts'
import { dynamicConfigTask, rollingRestartTask, type ApiContext } from './dynamic.ts'
import { pgDatabase, pgRole, type PgRoleArgs } from './users.ts'
import { inventoryApis, leadsNow, waitForLeader } from './rest.ts'
import { patroniConfigView } from './render.ts'
import { dataDirTask, validateDataDirs } from './datadir.ts'
import { etcd3LeaderFix } from './etcd3-fix.ts'
import { isActiveState } from '../../lib/facts/units.ts'

const shared = sharedVars(
  'patroni_group',
  'patroni_namespace',
  'patroni_restapi_port',
  ...ETCD_CLIENT_VARS,
  ...POSTGRESQL_VARS,
  ...BACKUP_VARS,
  'failover_profile',
  ...TLS_VARS,
)
const profile = failoverProfiles('patroni_ttl', 'patroni_loop_wait', 'patroni_retry_timeout')

export interface PatroniVars extends Vars, Pick<StackVars, keyof typeof shared.defaults> {
  patroni_scope: string
  patroni_ttl: number
  patroni_loop_wait: number
  patroni_retry_timeout: number
  patroni_maximum_lag_on_failover: number
  patroni_synchronous_mode: boolean
  patroni_synchronous_mode_strict: boolean
  patroni_failsafe_mode: boolean
  patroni_use_pg_rewind: boolean
  patroni_use_slots: boolean
  patroni_restapi_user: string
  patroni_restapi_password: string
  patroni_superuser_password: string
  patroni_replication_user: string
  patroni_replication_password: string
  patroni_rewind_user: string
  patroni_rewind_password: string
}

const NAME = '^[a-z_][a-z0-9_]*$'

/** Addresses of the hosts that may reach PostgreSQL: the members, the HAProxy hosts and the app hosts. */
export function stackAddresses(inventory: Inventory, groups: string[]): string[] {
  const out: string[] = []
  for (const g of groups)
    if (inventory.groups.has(g))
      for (const name of inventory.groupHosts(g)) out.push(String(inventory.hosts.get(name)!.vars.address))
  return [...new Set(out)]
}

/**
 * A member's key in etcd, as Patroni builds it: `/<namespace>/<scope>/members/<name>`, repeated slashes
 * folded into one (patroni/dcs/__init__.py: the base path and `client_path`).
 */
export function patroniMemberKey(namespace: string, scope: string, name: string): string {
  return `/${namespace}/${scope}/members/${name}`.replace(/\/+/g, '/')
}

/**
 * Why a running member's REST API cannot be switched between HTTP and HTTPS by a re-run: every member
 * switches in the PostgreSQL play, HAProxy's checks only in its own later play, and in between HAProxy
 * finds no healthy member (the client ports are down). Undefined when it serves as wanted.
 */
export function restApiSwitchProblem(host: string, servesHttps: boolean, wantsHttps: boolean): string | undefined {
  if (servesHttps === wantsHttps) return undefined
  const [from, to] = servesHttps ? ['HTTPS', 'HTTP'] : ['HTTP', 'HTTPS']
  return (
    `Patroni on ${host} serves its REST API over ${from} and patroni_api_tls asks for ${to}: switching a running ` +
    "cluster is not automated (HAProxy's checks would fail between the PostgreSQL and HAProxy plays, closing " +
    `the client ports). ${keepAsBuilt('patroni_api_tls', servesHttps)}, or switch in a maintenance ` +
    'window by hand (docs/postgres.md, "Switching to TLS")'
  )
}

/**
 * A renewed certificate reaches PostgreSQL and the REST API with a reload of Patroni, no restart: on SIGHUP
 * Patroni 3.0 re-creates the API's TLS context when the certificate's serial on disk changed
 * (`reload_local_certificate`) and reloads PostgreSQL, which reads its ssl files again.
 */
function renewedCertificateTasks(h: HostRun): Task[] {
  const v = h.vars
  const address = String(v.address)
  const certFile = tlsFiles(v).cert
  const how = 'a reload of Patroni (SIGHUP: the REST API and PostgreSQL read their certificate again)'
  const reload = async () => void (await h.conn.run('systemctl reload patroni', { check: true }))
  return [
    ...(tlsOn(v, 'patroni_api')
      ? [{ service: "Patroni's REST API", address, port: Number(v.patroni_restapi_port), certFile }]
      : []),
    ...(tlsOn(v, 'postgresql')
      ? [{ service: 'PostgreSQL', address, port: Number(v.postgresql_port), starttls: 'postgres' as const, certFile }]
      : []),
  ].map((endpoint) => servesCurrentCertificate(endpoint, how, reload))
}

export const patroniRole: Role<PatroniVars> = {
  name: 'patroni',
  description: 'A Patroni-managed PostgreSQL cluster on the postgres group with etcd3 as its DCS.',
  defaults: {
    ...shared.defaults,
    patroni_scope: 'hastack',
    ...profile.defaults,
    patroni_maximum_lag_on_failover: 1048576,
    patroni_synchronous_mode: false,
    patroni_synchronous_mode_strict: false,
    patroni_failsafe_mode: false,
    patroni_use_pg_rewind: true,
    patroni_use_slots: true,
    patroni_restapi_user: 'patroni',
    patroni_restapi_password: '',
    patroni_superuser_password: '',
    patroni_replication_user: 'replicator',
    patroni_replication_password: '',
    patroni_rewind_user: 'rewinder',
    patroni_rewind_password: '',
  },
  profiles: profile.profiles,
  schema: {
    ...shared.schema,
    patroni_scope: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', description: 'Cluster name (Patroni `scope`).' },
    patroni_ttl: {
      type: 'integer',
      minimum: 20,
      description: "Leader lock TTL, s: a dead primary is replaced after at most this long (Patroni's minimum: 20).",
    },
    patroni_loop_wait: { type: 'integer', minimum: 1, description: 'Seconds between HA loop runs.' },
    patroni_retry_timeout: {
      type: 'integer',
      minimum: 3,
      description: 'Timeout for DCS and PostgreSQL operation retries, s.',
    },
    patroni_maximum_lag_on_failover: {
      type: 'integer',
      minimum: 0,
      description: 'Replicas further behind than this (bytes) are not promoted.',
    },
    patroni_synchronous_mode: {
      type: 'boolean',
      description: 'Commit waits for one synchronous replica; a failover loses no acknowledged write.',
    },
    patroni_synchronous_mode_strict: {
      type: 'boolean',
      description: 'Refuse writes when no synchronous replica is available.',
    },
    patroni_failsafe_mode: {
      type: 'boolean',
      description: 'Keep the primary while etcd is down if every member still answers it.',
    },
    patroni_use_pg_rewind: { type: 'boolean', description: 'Rewind a failed primary to rejoin as a replica.' },
    patroni_use_slots: { type: 'boolean', description: 'Use replication slots for the replicas.' },
    patroni_restapi_user: {
      type: 'string',
      pattern: NAME,
      description: "Basic-auth user for the API's unsafe endpoints.",
    },
    patroni_restapi_password: {
      type: 'string',
      format: 'one-line',
      minLength: 16,
      secret: true,
      description: 'Password of the REST API user (generated).',
    },
    patroni_superuser_password: {
      type: 'string',
      format: 'one-line',
      minLength: 16,
      secret: true,
      description: 'Password of the `postgres` superuser (generated).',
    },
    patroni_replication_user: { type: 'string', pattern: NAME, description: 'Replication user.' },
    patroni_replication_password: {
      type: 'string',
      format: 'one-line',
      minLength: 16,
      secret: true,
      description: 'Password of the replication user (generated).',
    },
    patroni_rewind_user: { type: 'string', pattern: NAME, description: 'pg_rewind user.' },
    patroni_rewind_password: {
      type: 'string',
      format: 'one-line',
      minLength: 16,
      secret: true,
      description: 'Password of the pg_rewind user (generated).',
    },
  },
  validate(inventory) {
    const errors: string[] = []
    for (const host of inventory.hosts.values()) {
      const v = settingsOf(host, patroniRole.defaults)
      if (!host.groups.includes(v.patroni_group)) continue
      const ttl = v.patroni_ttl
      const loop = v.patroni_loop_wait
      const retry = v.patroni_retry_timeout
      if (loop + 2 * retry > ttl)
        errors.push(
          `host ${host.name}: patroni_loop_wait + 2 × patroni_retry_timeout (${loop + 2 * retry}) must not exceed patroni_ttl (${ttl})`,
        )
      if (v.patroni_synchronous_mode_strict && !v.patroni_synchronous_mode)
        errors.push(`host ${host.name}: patroni_synchronous_mode_strict needs patroni_synchronous_mode`)
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(String(v.address ?? '')))
        errors.push(`host ${host.name}: a Patroni member needs an IPv4 address to bind to`)
      if (groupMembers(inventory, v.etcd_group).length === 0)
        errors.push(`host ${host.name}: Patroni needs etcd members (group ${v.etcd_group} is empty)`)
    }
    const isMember = (h: InventoryHost) => h.groups.includes(settingsOf(h, patroniRole.defaults).patroni_group)
    errors.push(
      ...validateDataDirs(
        inventory,
        [...inventory.hosts.values()].filter(isMember).map((h) => h.name),
      ),
    )
    return [...new Set(errors)]
  },
  handlers: {
    'Reload Patroni': (h) => h.do(service({ service: 'patroni', state: 'reloaded', name: 'Reload Patroni' })),
    // One member at a time: its PostgreSQL runs again and the cluster has a leader before the next restarts.
    'Restart Patroni': (h) =>
      h.oneAtATime('patroni:restart', async () => {
        await h.doAll([
          service({ service: 'patroni', state: 'restarted', name: 'Restart Patroni' }),
          waitFor({
            url: `${patroniApiUrl(h.vars)}/health`,
            caFile: patroniApiCa(h.vars),
            timeoutMs: 300_000,
            intervalMs: 1000,
            name: "Wait for this member's PostgreSQL to run again before the next member restarts",
          }),
          waitForLeader(h, patroniApiUrl(h.vars)),
        ])
      }),
  },
  async tasks(h) {
    const v = h.vars
    const auth = { user: v.patroni_restapi_user, password: v.patroni_restapi_password }
    const members = inventoryApis(h.inventory, v.patroni_group)
    const api: ApiContext = { base: patroniApiUrl(v), auth, members }
    // With the packages' states: whether Patroni runs, and whether its configuration serves the API over
    // HTTPS (`https` when it has a certificate; never the file itself: it holds passwords).
    const [active, served] = await installWithoutStarting(h, ['patroni', 'python3-etcd'], 'Patroni', [
      { kind: 'unit', name: 'patroni' },
      "sed -n 's/^  certfile: .*/https/p' /etc/patroni/config.yml",
    ])
    const running = isActiveState(active!.stdout)
    if (running) {
      const problem = restApiSwitchProblem(h.name, served!.stdout.trim() === 'https', tlsOn(v, 'patroni_api'))
      if (problem) throw new Error(problem)
    }
    // Patroni and the PostgreSQL it runs are the postgres user: it reads the copies of the host key it
    // serves with (PostgreSQL, the REST API) and shows etcd, and its archive and restore commands show
    // pgBackRest's TLS server postgres's copy. A process reads its groups when it starts, so a
    // running member that joins a group restarts (one member at a time, each healthy before the next).
    const groups = [
      ...(tlsOn(v, 'postgresql') || tlsOn(v, 'pgbackrest') ? [tlsGroup('postgres')] : []),
      ...(tlsOn(v, 'patroni_api') || tlsOn(v, 'etcd') ? [tlsGroup('patroni')] : []),
    ]
    if (groups.length)
      await h.do(
        user({
          user: 'postgres',
          groups,
          notify: running ? 'Restart Patroni' : undefined,
          name: 'Ensure PostgreSQL and Patroni may read their TLS keys',
        }),
      )
    await h.doAll(
      [
        dataDirTask(String(v.postgresql_data_dir)),
        directory({
          path: '/etc/patroni',
          owner: 'root',
          group: 'postgres',
          mode: '0750',
          name: 'Ensure /etc/patroni exists',
        }),
        template({
          src: 'patroni/config.yml.ejs',
          dest: '/etc/patroni/config.yml',
          owner: 'postgres',
          group: 'postgres',
          mode: '0600',
          vars: { patroni: patroniConfigView(h) },
          notify: running ? 'Reload Patroni' : undefined,
          name: 'Ensure the Patroni configuration is current',
        }),
        systemdUnit({
          unit: 'patroni.service',
          src: 'patroni/patroni.service.ejs',
          name: 'Ensure the Patroni systemd unit is current',
        }),
        // Before Patroni's first start; a running member restarts (one at a time, health-gated) to load it.
        etcd3LeaderFix(running ? 'Restart Patroni' : undefined),
        service({ service: 'patroni', enabled: true, state: 'started', name: 'Ensure Patroni is enabled and started' }),
      ],
      {
        afterHandlers: [
          waitFor({
            url: `${api.base}/health`,
            caFile: patroniApiCa(v),
            timeoutMs: 300_000,
            intervalMs: 1000,
            name: "Wait for this member's PostgreSQL to run",
          }),
          waitForLeader(h, api.base),
        ],
      },
    )

    await h.doAll(renewedCertificateTasks(h))

    // Roles and the application database: on the leader only (the only writable member).
    // A read without credentials: gathered (and kept in the probe plan) like the role's other queries.
    if (await leadsNow(h)) {
      const roles: PgRoleArgs[] = [
        {
          server: v,
          role: 'postgres',
          password: v.patroni_superuser_password,
          attrs: 'SUPERUSER LOGIN',
          name: 'Ensure the superuser password is current',
        },
        {
          server: v,
          role: v.patroni_replication_user,
          password: v.patroni_replication_password,
          attrs: 'REPLICATION LOGIN',
          name: 'Ensure the replication user is current',
        },
        {
          server: v,
          role: v.patroni_rewind_user,
          password: v.patroni_rewind_password,
          attrs: 'LOGIN',
          name: 'Ensure the pg_rewind user is current',
        },
        {
          server: v,
          role: String(v.postgresql_app_user),
          password: String(v.postgresql_app_password),
          attrs: 'LOGIN',
          name: 'Ensure the application user is current',
        },
      ]
      // The four roles' passwords are read by one psql (every task declares the same probe).
      const together = roles.map((r) => r.role)
      await h.doAll([
        ...roles.map((r) => pgRole(r, together)),
        pgDatabase({
          server: v,
          database: String(v.postgresql_app_database),
          owner: String(v.postgresql_app_user),
          name: 'Ensure the application database exists',
        }),
      ])
    }

    // Cluster-wide settings, once per run, then the restarts they need.
    const patched = await h.once('patroni:dynamic', async () => (await h.do(dynamicConfigTask(h, api))).changed)
    await h.once('patroni:rolling-restart', () => h.do(rollingRestartTask(h, api, patched)))
  },
}

export type { HostRun }
