/**
 * postgresql: the PostgreSQL server packages for Patroni to run, without the
 * cluster Debian creates on install. `create_main_cluster = false` is written
 * to postgresql-common's createcluster.conf before the packages install (the
 * conffile is kept by dpkg); a `main` cluster left by an earlier install is
 * stopped and dropped only when it holds no user data (default-cluster.ts).
 */
import type { Role, Vars } from '../../lib/types.ts'
import { command, directory, template } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { PG_PARAMETER_SCHEMA } from './parameters.ts'
import { dropDefaultClusterTask } from './default-cluster.ts'

export interface PostgresqlVars extends Vars {
  postgresql_version: number
  postgresql_port: number
  postgresql_data_dir: string
  postgresql_parameters: Record<string, string | number | boolean>
  postgresql_client_networks: string[]
  postgresql_app_database: string
  postgresql_app_user: string
  postgresql_app_password: string
  postgresql_drop_default_cluster: boolean
  postgresql_packages: string[]
}

export const postgresqlRole: Role<PostgresqlVars> = {
  name: 'postgresql',
  description: 'PostgreSQL server packages without Debian\'s automatically created cluster.',
  defaults: {
    postgresql_version: 15,
    postgresql_port: 5432,
    postgresql_data_dir: '/var/lib/postgresql/15/patroni',
    postgresql_parameters: {
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
    postgresql_client_networks: [],
    postgresql_app_database: 'app',
    postgresql_app_user: 'app',
    postgresql_app_password: '',
    postgresql_drop_default_cluster: true,
    postgresql_packages: ['postgresql-15', 'postgresql-client-15'],
  },
  schema: {
    postgresql_version: { type: 'integer', enum: [15], description: 'PostgreSQL major version (Debian bookworm ships 15).' },
    postgresql_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'PostgreSQL port on the cluster address and loopback.' },
    postgresql_data_dir: { type: 'string', pattern: '^/', description: 'Data directory Patroni initialises and manages.' },
    postgresql_parameters: PG_PARAMETER_SCHEMA,
    postgresql_client_networks: {
      type: 'array',
      items: { type: 'string', pattern: '^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$' },
      description: 'Extra client networks (CIDR) allowed to log in as the application user; the stack\'s own hosts are always allowed.',
    },
    postgresql_app_database: { type: 'string', pattern: '^[a-z_][a-z0-9_]*$', description: 'Application database, created once on the leader.' },
    postgresql_app_user: { type: 'string', pattern: '^[a-z_][a-z0-9_]*$', description: 'Application user, owner of the application database.' },
    postgresql_app_password: { type: 'string', secret: true, description: 'Password of the application user (generated).' },
    postgresql_drop_default_cluster: {
      type: 'boolean',
      description:
        'Stop and drop a Debian `main` cluster found from an earlier install, only when it holds no user data ' +
        '(else the run stops and says so).',
    },
    postgresql_packages: { type: 'array', items: { type: 'string' }, description: 'Server packages to install.' },
  },
  async tasks(h) {
    const v = h.vars
    await h.do(directory({ path: '/etc/postgresql-common', name: 'Ensure /etc/postgresql-common exists' }))
    await h.do(template({ src: 'postgresql/createcluster.conf.ejs', dest: '/etc/postgresql-common/createcluster.conf', name: 'Ensure Debian creates no cluster on install' }))
    await installWithoutStarting(h, v.postgresql_packages, 'PostgreSQL')
    if (v.postgresql_drop_default_cluster) await h.do(dropDefaultClusterTask(v.postgresql_version))
    // The packaged umbrella unit stays harmless without clusters; keep it from starting one anyway.
    await h.do(command({ cmd: 'systemctl disable postgresql', onlyIf: 'systemctl is-enabled -q postgresql', name: 'Ensure the packaged postgresql.service is disabled' }))
  },
}
