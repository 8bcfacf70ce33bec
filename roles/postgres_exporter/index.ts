/**
 * postgres_exporter: Debian's prometheus-postgres-exporter on each PostgreSQL host,
 * connecting over loopback as a read-only monitoring role (member of pg_monitor, a
 * generated password). The role is created on the Patroni leader, the only writable
 * member, the way the patroni role creates its users; replicas receive it by replication.
 * Run after the patroni role.
 */
import type { Role, Vars } from '../../lib/types.ts'
import { defineTask, directory, file, noChange, service, template, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { pgRole, psql, psqlProbe, psqlRead, type LocalServer } from '../patroni/users.ts'
import { leadsNow } from '../patroni/rest.ts'
import { sharedVars, type StackVars } from '../stack.ts'

/** The leader's own server, where the monitoring role is created. */
const shared = sharedVars('postgresql_version', 'postgresql_port')

export interface PostgresExporterVars extends Vars, Pick<StackVars, keyof typeof shared.defaults> {
  postgres_exporter_port: number
  postgres_exporter_user: string
  postgres_exporter_password: string
}

const PASSWORD_FILE = '/etc/prometheus/postgres-exporter.pass'

/** Ensure the monitoring role is a member of pg_monitor (read-only access to statistics). */
function pgMonitorMember(server: LocalServer, role: string) {
  const sql = `SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
      WHERE r.rolname = '${role}' AND g.rolname = 'pg_monitor';`
  return defineTask(`Ensure ${role} is a member of pg_monitor`, { probes: [psqlProbe(server, sql)] }, async (ctx) => {
    if ((await psqlRead(ctx, server, sql)) === '1') return noChange()
    return {
      change: true,
      reason: 'not a member of pg_monitor',
      apply: async () => void (await psql(ctx, server, `GRANT pg_monitor TO "${role}";`)),
    }
  })
}

export const postgresExporterRole: Role<PostgresExporterVars> = {
  name: 'postgres_exporter',
  description:
    'PostgreSQL metrics (prometheus-postgres-exporter) as a read-only pg_monitor role, on the cluster address.',
  defaults: {
    ...shared.defaults,
    postgres_exporter_port: 9187,
    postgres_exporter_user: 'hastack_monitor',
    postgres_exporter_password: '',
  },
  schema: {
    ...shared.schema,
    postgres_exporter_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'postgres_exporter port on the cluster address.',
    },
    postgres_exporter_user: {
      type: 'string',
      pattern: '^[a-z_][a-z0-9_]*$',
      description: 'Read-only PostgreSQL role of the exporter (member of pg_monitor).',
    },
    postgres_exporter_password: {
      type: 'string',
      secret: true,
      pattern: '^[A-Za-z0-9_.~+-]*$',
      description: "Password of the exporter's role (generated).",
    },
  },
  handlers: {
    'Restart postgres_exporter': (h) =>
      h.do(service({ service: 'prometheus-postgres-exporter', state: 'restarted', name: 'Restart postgres_exporter' })),
  },
  async tasks(h) {
    const v = h.vars
    // A read without credentials: gathered (and kept in the probe plan) like the role's other queries.
    if (await leadsNow(h)) {
      const role = v.postgres_exporter_user
      await h.doAll([
        pgRole({
          server: v,
          role,
          password: v.postgres_exporter_password,
          attrs: 'LOGIN IN ROLE pg_monitor',
          name: 'Ensure the monitoring role is current',
        }),
        pgMonitorMember(v, role),
      ])
    }
    await installWithoutStarting(h, ['prometheus-postgres-exporter'], 'postgres_exporter')
    // Debian's exporter package does not create /etc/prometheus (the prometheus package does).
    await h.doAll(
      [
        directory({ path: '/etc/prometheus', mode: '0755', name: 'Ensure /etc/prometheus exists' }),
        file({
          path: PASSWORD_FILE,
          content: v.postgres_exporter_password,
          owner: 'root',
          group: 'prometheus',
          mode: '0640',
          notify: 'Restart postgres_exporter',
          name: 'Ensure postgres_exporter has its password',
        }),
        template({
          src: 'postgres_exporter/default.ejs',
          dest: '/etc/default/prometheus-postgres-exporter',
          vars: { postgres_exporter_password_file: PASSWORD_FILE },
          notify: 'Restart postgres_exporter',
          name: 'Ensure the postgres_exporter settings are current',
        }),
        service({
          service: 'prometheus-postgres-exporter',
          enabled: true,
          state: 'started',
          name: 'Ensure postgres_exporter is enabled and started',
        }),
      ],
      // After the handlers: the wait's first try is gathered with the tasks' probes unless a handler ran.
      {
        afterHandlers: [
          waitFor({
            port: v.postgres_exporter_port,
            address: String(v.address),
            timeoutMs: 60_000,
            name: 'Wait for postgres_exporter to listen',
          }),
        ],
      },
    )
  },
}
