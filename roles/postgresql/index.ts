/**
 * postgresql: the PostgreSQL server packages for Patroni to run, without the
 * cluster Debian creates on install. `create_main_cluster = false` is written
 * to postgresql-common's createcluster.conf before the packages install (the
 * conffile is kept by dpkg); a `main` cluster left by an earlier install is
 * stopped and dropped only when it holds no user data (default-cluster.ts).
 */
import type { Role, Vars } from '../../lib/types.ts'
import { directory, service, template } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { POSTGRESQL_VARS, sharedVars, type StackVars } from '../stack.ts'
import { dropDefaultClusterTask } from './default-cluster.ts'

const shared = sharedVars(...POSTGRESQL_VARS)

export interface PostgresqlVars extends Vars, Pick<StackVars, keyof typeof shared.defaults> {
  postgresql_drop_default_cluster: boolean
  postgresql_packages: string[]
}

export const postgresqlRole: Role<PostgresqlVars> = {
  name: 'postgresql',
  description: "PostgreSQL server packages without Debian's automatically created cluster.",
  defaults: {
    ...shared.defaults,
    postgresql_drop_default_cluster: true,
    postgresql_packages: ['postgresql-15', 'postgresql-client-15'],
  },
  schema: {
    ...shared.schema,
    postgresql_drop_default_cluster: {
      type: 'boolean',
      description:
        'Stop and drop a Debian `main` cluster found from an earlier install, only when it holds no user data ' +
        '(else the run stops and says so).',
    },
    postgresql_packages: {
      type: 'array',
      items: { type: 'string', format: 'debian-package' },
      description: 'Server packages to install.',
    },
  },
  async tasks(h) {
    const v = h.vars
    await h.doAll([
      directory({ path: '/etc/postgresql-common', name: 'Ensure /etc/postgresql-common exists' }),
      template({
        src: 'postgresql/createcluster.conf.ejs',
        dest: '/etc/postgresql-common/createcluster.conf',
        name: 'Ensure Debian creates no cluster on install',
      }),
    ])
    await installWithoutStarting(h, v.postgresql_packages, 'PostgreSQL')
    await h.doAll([
      ...(v.postgresql_drop_default_cluster ? [dropDefaultClusterTask(v.postgresql_version)] : []),
      // The packaged umbrella unit stays harmless without clusters; keep it from starting one anyway.
      service({ service: 'postgresql', enabled: false, name: 'Ensure the packaged postgresql.service is disabled' }),
    ])
  },
}
