/**
 * The variables several roles share, declared once here with their type, default and schema: ports,
 * groups and names one role sets up and another connects to (etcd endpoints for Patroni, Patroni's
 * REST port and PostgreSQL's port for HAProxy, Redis's port, master name and passwords for Sentinel
 * and HAProxy). A role that reads one lists it with `sharedVars(...)`, so its defaults and schema
 * come from this one place. `settingsOf` gives a validator a host's variables with defaults applied.
 */
import type { Inventory, InventoryHost, VarSchema, Vars } from '../lib/types.ts'
import { PG_PARAMETER_SCHEMA } from './postgresql/parameters.ts'

/** A generated etcd password: from the secrets alphabet, passed to etcdctl as one stdin line. */
export const ETCD_PASSWORD = { type: 'string', minLength: 16, pattern: '^[A-Za-z0-9_.~+/=-]+$', secret: true } as const

export interface StackVars extends Vars {
  etcd_group: string
  etcd_client_port: number
  etcd_auth: boolean
  etcd_patroni_user: string
  etcd_patroni_password: string
  etcd_root_password: string
  patroni_group: string
  patroni_namespace: string
  patroni_restapi_port: number
  postgresql_version: number
  postgresql_port: number
  postgresql_data_dir: string
  postgresql_parameters: Record<string, string | number | boolean>
  postgresql_client_networks: string[]
  postgresql_app_database: string
  postgresql_app_user: string
  postgresql_app_password: string
  redis_port: number
  redis_master_name: string
  /** A generated secret without a default: always set once the inventory is loaded. */
  redis_password?: string
  redis_haproxy_port: number
  redis_haproxy_check_interval_ms: number
  redis_haproxy_check_timeout_ms: number
  redis_haproxy_rise: number
  redis_haproxy_fall: number
  redis_haproxy_idle_timeout: string
  sentinel_port: number
  /** A generated secret without a default: always set once the inventory is loaded. */
  sentinel_password?: string
  sentinel_quorum: number
  /** Unset: no VIP (clients use the first haproxy host's address). */
  vip_address?: string
  pgbackrest_group: string
  pgbackrest_stanza: string
  pgbackrest_tls_port: number
  haproxy_pg_rw_port: number
  haproxy_pg_ro_port: number
  app_vote_port: number
  app_result_port: number
  app_http_port: number
  app_result_http_port: number
  failover_profile: FailoverProfile
  tls_enabled: boolean
  tls_dir: string
  etcd_tls: boolean
  patroni_api_tls: boolean
  postgresql_tls: boolean
  redis_tls: boolean
  haproxy_stats_tls: boolean
  pgbackrest_tls: boolean
}

/** How fast failures are detected and acted on: `failover_profile` in the inventory. */
export type FailoverProfile = 'default' | 'fast'

/**
 * What each failover profile sets (below any of these variables set in the inventory). `fast`: Patroni's
 * smallest ttl (20; on a power cut the leader key only expires after ttl), a loop every second, HAProxy
 * marking a server down at its first failed check; Sentinel calls the primary down after 2 s. The price:
 * a slow or lossy network (a GC pause, a stalled disk, a busy host) is taken for a failure sooner, so
 * failovers happen that the default profile would have ridden out.
 */
export const FAILOVER_PROFILES = {
  default: {
    patroni_ttl: 30,
    patroni_loop_wait: 10,
    patroni_retry_timeout: 10,
    sentinel_down_after_milliseconds: 5000,
    haproxy_check_interval_ms: 1000,
    haproxy_check_fall: 2,
  },
  fast: {
    patroni_ttl: 20,
    patroni_loop_wait: 1,
    patroni_retry_timeout: 5,
    sentinel_down_after_milliseconds: 2000,
    haproxy_check_interval_ms: 1000,
    haproxy_check_fall: 1,
  },
} as const satisfies Record<FailoverProfile, Vars>

type ProfileVar = keyof (typeof FAILOVER_PROFILES)['default']

/**
 * A role's part of the failover profiles: the `default` profile's values of `names` as the role's defaults,
 * and every profile's values as the role's `profiles` (the engine puts the chosen one above the defaults).
 */
export function failoverProfiles<K extends ProfileVar>(...names: K[]) {
  const pick = (profile: FailoverProfile) =>
    Object.fromEntries(names.map((n) => [n, FAILOVER_PROFILES[profile][n]])) as Pick<
      (typeof FAILOVER_PROFILES)['default'],
      K
    >
  const profiles = { failover_profile: { default: pick('default') as Vars, fast: pick('fast') as Vars } }
  return { defaults: pick('default'), profiles }
}

/** The TLS switches: `tls_enabled` for the whole stack, one per service below it, and where the files are. */
export const TLS_VARS = [
  'tls_enabled',
  'tls_dir',
  'etcd_tls',
  'patroni_api_tls',
  'postgresql_tls',
  'redis_tls',
  'haproxy_stats_tls',
  'pgbackrest_tls',
] as const

/** A service whose links can be switched to TLS, by the name of its switch. */
export type TlsService = 'etcd' | 'patroni_api' | 'postgresql' | 'redis' | 'haproxy_stats' | 'pgbackrest'

/**
 * Whether a service's links use TLS on a host: `tls_enabled` (the whole stack) and the service's own
 * switch `<service>_tls` (default true, so one service can be kept in plaintext). Read through this
 * function only, so every role that talks to a service agrees with the role that serves it.
 */
export function tlsOn(vars: Vars, service: TlsService): boolean {
  return vars.tls_enabled === true && vars[`${service}_tls`] !== false
}

/** How a client reaches etcd: its members' group and port, and Patroni's user there. */
export const ETCD_CLIENT_VARS = [
  'etcd_group',
  'etcd_client_port',
  'etcd_auth',
  'etcd_patroni_user',
  'etcd_patroni_password',
] as const

/** PostgreSQL's server settings: installed by the postgresql role, run by Patroni. */
export const POSTGRESQL_VARS = [
  'postgresql_version',
  'postgresql_port',
  'postgresql_data_dir',
  'postgresql_parameters',
  'postgresql_client_networks',
  'postgresql_app_database',
  'postgresql_app_user',
  'postgresql_app_password',
] as const

/** Where Debian installs the programs of a PostgreSQL major version (pg_wrapper in /usr/bin picks among them). */
export const pgBinDir = (version: unknown) => `/usr/lib/postgresql/${String(version)}/bin`

/** Where PostgreSQL's backups go: read by the pgbackrest roles and by Patroni (the archive command). */
export const BACKUP_VARS = ['pgbackrest_group', 'pgbackrest_stanza', 'pgbackrest_tls_port'] as const

/** How a client reaches Redis and its Sentinels. */
export const REDIS_CLIENT_VARS = [
  'redis_port',
  'redis_master_name',
  'redis_password',
  'sentinel_port',
  'sentinel_password',
] as const

/** The Redis endpoint on the haproxy hosts: rendered by the haproxy role, validated by the redis role. */
export const REDIS_ENDPOINT_VARS = [
  'redis_haproxy_port',
  'redis_haproxy_check_interval_ms',
  'redis_haproxy_check_timeout_ms',
  'redis_haproxy_rise',
  'redis_haproxy_fall',
  'redis_haproxy_idle_timeout',
] as const

/** Where clients reach the load balancers: the VIP (keepalived role) and the HAProxy ports bound on it. */
export const CLIENT_ENTRY_VARS = ['vip_address'] as const
/** HAProxy's PostgreSQL ports: rendered by the haproxy role, used by the app's clients. */
export const HAPROXY_PG_VARS = ['haproxy_pg_rw_port', 'haproxy_pg_ro_port'] as const

/** The demo app's ports: served by the app role, published and checked by the haproxy role. */
export const APP_PORT_VARS = ['app_vote_port', 'app_result_port', 'app_http_port', 'app_result_http_port'] as const

/** A generated Redis or Sentinel password: no blanks, quotes or backslashes (it is written into config lines). */
const REDIS_SECRET = { type: 'string', minLength: 16, format: 'redis-config-string', secret: true } as const

/** Every shared variable: its default (none for generated secrets without one) and its schema. */
const SHARED: { [K in keyof StackVars]-?: { default?: StackVars[K]; schema: VarSchema } } = {
  etcd_group: {
    default: 'etcd',
    schema: { type: 'string', format: 'word', description: 'Inventory group whose hosts are the etcd members.' },
  },
  etcd_client_port: {
    default: 2379,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Client port (on the cluster address and loopback).',
    },
  },
  etcd_auth: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        'Require authentication from every etcd client (root for operators, a prefix-limited user for Patroni). ' +
        'Turning it off later is not automated.',
    },
  },
  etcd_patroni_user: {
    default: 'patroni',
    schema: {
      type: 'string',
      pattern: '^[a-z_][a-z0-9_-]*$',
      description: 'etcd user of Patroni: read-write on `patroni_namespace` only.',
    },
  },
  etcd_patroni_password: {
    default: '',
    schema: { ...ETCD_PASSWORD, description: 'Password of the Patroni etcd user (generated).' },
  },
  etcd_root_password: {
    default: '',
    schema: {
      ...ETCD_PASSWORD,
      description:
        'Password of the etcd `root` user (generated): in /etc/etcd/etcdctl.env on the members and in ' +
        "the etcd snapshots' settings on the backup hosts, mode 0600.",
    },
  },
  patroni_group: {
    default: 'postgres',
    schema: { type: 'string', format: 'word', description: 'Inventory group whose hosts are the cluster members.' },
  },
  patroni_namespace: {
    default: '/service/',
    schema: {
      type: 'string',
      pattern: '^/([A-Za-z0-9_-]+/)*$',
      description: 'Key prefix in etcd (Patroni `namespace`).',
    },
  },
  patroni_restapi_port: {
    default: 8008,
    schema: { type: 'integer', minimum: 1, maximum: 65535, description: 'REST API port on the cluster address.' },
  },
  postgresql_version: {
    default: 15,
    schema: { type: 'integer', enum: [15], description: 'PostgreSQL major version (Debian bookworm ships 15).' },
  },
  postgresql_port: {
    default: 5432,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'PostgreSQL port on the cluster address and loopback.',
    },
  },
  postgresql_data_dir: {
    default: '/var/lib/postgresql/15/patroni',
    schema: { type: 'string', format: 'absolute-path', description: 'Data directory Patroni initialises and manages.' },
  },
  postgresql_parameters: {
    default: {
      max_connections: 200,
      shared_buffers: '256MB',
      wal_level: 'replica',
      hot_standby: true,
      max_wal_senders: 10,
      max_replication_slots: 10,
      wal_keep_size: '256MB',
      wal_log_hints: true,
      password_encryption: 'scram-sha-256',
      log_line_prefix: '%m [%p] %q%u@%d ',
    },
    schema: PG_PARAMETER_SCHEMA,
  },
  postgresql_client_networks: {
    default: [],
    schema: {
      type: 'array',
      items: { type: 'string', format: 'cidr' },
      description:
        'Extra client networks (CIDR) allowed to log in as the application user; ' +
        "the stack's own hosts are always allowed.",
    },
  },
  postgresql_app_database: {
    default: 'app',
    schema: {
      type: 'string',
      pattern: '^[a-z_][a-z0-9_]*$',
      description: 'Application database, created once on the leader.',
    },
  },
  postgresql_app_user: {
    default: 'app',
    schema: {
      type: 'string',
      pattern: '^[a-z_][a-z0-9_]*$',
      description: 'Application user, owner of the application database.',
    },
  },
  postgresql_app_password: {
    default: '',
    schema: {
      type: 'string',
      format: 'one-line',
      minLength: 16,
      secret: true,
      description: 'Password of the application user (generated).',
    },
  },
  redis_port: {
    default: 6379,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port Redis listens on (cluster address and loopback).',
    },
  },
  redis_master_name: {
    default: 'hastack-redis',
    schema: {
      type: 'string',
      format: 'word',
      description: 'Name the Sentinels monitor the primary under (clients ask for it).',
    },
  },
  redis_password: {
    schema: {
      ...REDIS_SECRET,
      description:
        'Password of Redis clients and replicas (`requirepass`, `masterauth`, Sentinel `auth-pass`). Generated once.',
    },
  },
  redis_haproxy_port: {
    default: 6379,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port of the client endpoint on the haproxy hosts.',
    },
  },
  redis_haproxy_check_interval_ms: {
    // 200 ms with a 150 ms timeout and rise 3: (3 - 1) × 200 > 1 × 200 + 150, and a new primary is
    // routed to 0.6 s after a quorum of Sentinels names it (1.5 s at 500 ms): most of a switchover's pause.
    default: 200,
    schema: { type: 'integer', minimum: 100, description: 'Interval of the endpoint health checks.' },
  },
  redis_haproxy_check_timeout_ms: {
    default: 150,
    schema: { type: 'integer', minimum: 50, description: 'Time a health check step may take.' },
  },
  redis_haproxy_rise: {
    default: 3,
    schema: {
      type: 'integer',
      minimum: 1,
      description: 'Successful checks before an entry is up; must outlast the fall of the old primary (validated).',
    },
  },
  redis_haproxy_fall: {
    default: 1,
    schema: { type: 'integer', minimum: 1, description: 'Failed checks before an entry is down.' },
  },
  redis_haproxy_idle_timeout: {
    default: '1h',
    schema: {
      type: 'string',
      pattern: '^\\d+(ms|s|m|h|d)?$',
      description: 'Idle time after which HAProxy closes a client connection to Redis.',
    },
  },
  sentinel_port: {
    default: 26379,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port each Sentinel listens on (cluster address and loopback).',
    },
  },
  sentinel_password: {
    schema: {
      ...REDIS_SECRET,
      description:
        'Password clients and the other Sentinels use with a Sentinel (`requirepass`, `sentinel-pass`). ' +
        'Generated once.',
    },
  },
  sentinel_quorum: {
    default: 2,
    schema: {
      type: 'integer',
      minimum: 1,
      description:
        'Sentinels that must agree the primary is down before a failover (a majority must still authorize it).',
    },
  },
  vip_address: {
    schema: {
      type: 'string',
      format: 'ipv4',
      description:
        'Virtual IPv4 address of the load balancers, held by one haproxy host at a time (keepalived) and used ' +
        "by every client; on the hosts' network, used by no host. Unset: no VIP, clients use the first haproxy host.",
    },
  },
  pgbackrest_group: {
    default: 'backup_repo',
    schema: {
      type: 'string',
      format: 'word',
      description:
        "Inventory group whose (one) host keeps pgBackRest's repository; without it there are no backups " +
        'and no WAL archiving.',
    },
  },
  pgbackrest_stanza: {
    default: 'hastack',
    schema: {
      type: 'string',
      format: 'word',
      description: "pgBackRest's name for the cluster (its stanza): the repository's directory and every command's.",
    },
  },
  pgbackrest_tls_port: {
    default: 8432,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description:
        "Port of pgBackRest's TLS server on the repository host's address (with `pgbackrest_tls`), open to the " +
        'members only.',
    },
  },
  haproxy_pg_rw_port: {
    default: 5000,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Read-write port: follows the Patroni primary.',
    },
  },
  haproxy_pg_ro_port: {
    default: 5001,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Read-only port: healthy replicas, round robin.',
    },
  },
  app_vote_port: {
    default: 8080,
    schema: {
      type: 'integer',
      minimum: 1024,
      maximum: 65535,
      description: 'Port of the vote program on each app host (cluster address).',
    },
  },
  app_result_port: {
    default: 8081,
    schema: {
      type: 'integer',
      minimum: 1024,
      maximum: 65535,
      description: 'Port of the result program on each app host (cluster address).',
    },
  },
  app_http_port: {
    default: 80,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port of the vote app on the haproxy hosts, balanced over the app hosts.',
    },
  },
  app_result_http_port: {
    default: 8088,
    schema: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port of the result page on the haproxy hosts, balanced over the app hosts.',
    },
  },
  failover_profile: {
    default: 'default',
    schema: {
      enum: ['default', 'fast'],
      description:
        'Failure detection settings: `default` (Patroni ttl 30, loop_wait 10, retry_timeout 10; Sentinel ' +
        'down-after 5000 ms; HAProxy fall 2) or `fast` (ttl 20, loop_wait 1, retry_timeout 5; down-after 2000 ms; ' +
        'fall 1): faster failovers, more false ones on a slow network. A variable set itself still wins.',
    },
  },
  tls_enabled: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        "TLS for the whole stack: every host gets a key and a certificate from the stack's CA (generated once " +
        'beside the secrets file, `<inventory>.ca.key`, mode 0600), and every service whose own switch is on ' +
        '(`etcd_tls`, `patroni_api_tls`, `postgresql_tls`, `redis_tls`, `haproxy_stats_tls`, `pgbackrest_tls`) ' +
        'uses it. On by default; false keeps the whole stack in plaintext.',
    },
  },
  tls_dir: {
    default: '/etc/hastack/tls',
    schema: {
      type: 'string',
      format: 'absolute-path',
      description: "Where each host keeps the CA certificate, its certificate, its key and the services' copies.",
    },
  },
  etcd_tls: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        "etcd's peer and client links over TLS (Patroni and etcdctl authenticate with a client certificate) when `tls_enabled` is on (false keeps this one service in plaintext).",
    },
  },
  patroni_api_tls: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        "Patroni's REST API over HTTPS (HAProxy checks it over HTTPS) when `tls_enabled` is on (false keeps this one service in plaintext).",
    },
  },
  postgresql_tls: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        'PostgreSQL requires TLS from every non-local client, replication included (`hostssl`) when `tls_enabled` is on (false keeps this one service in plaintext).',
    },
  },
  redis_tls: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        'Redis and Sentinel listen with TLS only (`tls-port`), replication and HAProxy checks included when `tls_enabled` is on (false keeps this one service in plaintext).',
    },
  },
  haproxy_stats_tls: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        "HAProxy's stats page over HTTPS when `tls_enabled` is on (false keeps this one service in plaintext).",
    },
  },
  pgbackrest_tls: {
    default: true,
    schema: {
      type: 'boolean',
      description:
        "The members reach pgBackRest's repository host over its TLS server (`pgbackrest server`, each member " +
        'authorized by its client certificate for the stanza only) instead of SSH, for archive-push, archive-get ' +
        'and restores, when `tls_enabled` is on (false keeps SSH); backups from the repository host to the ' +
        'members stay on SSH.',
    },
  },
}

/** The default of every shared variable that has one. */
export const STACK_DEFAULTS: StackVars = Object.fromEntries(
  Object.entries(SHARED).flatMap(([name, v]) => ('default' in v ? [[name, v.default]] : [])),
) as StackVars

/** The schema of every shared variable, by name (for the generated documentation). */
export const STACK_SCHEMA: Record<string, VarSchema> = Object.fromEntries(
  Object.entries(SHARED).map(([name, v]) => [name, v.schema]),
)

/** The defaults and schemas of the shared variables a role reads, to spread into its own. */
export function sharedVars<K extends keyof StackVars & string>(
  ...names: K[]
): { defaults: Pick<StackVars, K>; schema: Record<K, VarSchema> } {
  const defaults = {} as Pick<StackVars, K>
  const schema = {} as Record<K, VarSchema>
  for (const name of names) {
    const entry = SHARED[name]
    if ('default' in entry) defaults[name] = entry.default as StackVars[K]
    schema[name] = entry.schema
  }
  return { defaults, schema }
}

/**
 * A host's variables with the given defaults under them: what a validator checks, typed; read-only. Loaded with
 * its roles, a host's variables already hold every default: they are then given as they are, since copying
 * some 400 of them for each call was a twentieth of the start-up.
 */
export function settingsOf<V extends Vars>(host: InventoryHost, defaults: V): Readonly<V & Vars> {
  for (const name in defaults) if (!(name in host.vars)) return { ...defaults, ...host.vars }
  return host.vars as V & Vars
}

/** The hosts of a group (none when the inventory has no such group), in inventory order. */
export function groupMembers(inventory: Pick<Inventory, 'groups' | 'groupHosts'>, group: string): string[] {
  return inventory.groups.has(group) ? inventory.groupHosts(group) : []
}

/**
 * The address clients connect to for the HAProxy endpoints: the VIP when the haproxy hosts have
 * `vip_address`, else the first haproxy host's address; undefined without haproxy hosts.
 */
export function clientAddress(inventory: Pick<Inventory, 'groups' | 'groupHosts' | 'hosts'>): string | undefined {
  const [first] = groupMembers(inventory, 'haproxy')
  if (first === undefined) return undefined
  const vars = inventory.hosts.get(first)!.vars
  return String(vars.vip_address ?? vars.address)
}
