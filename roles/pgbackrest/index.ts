/**
 * pgbackrest: pgBackRest on the PostgreSQL members and the backup repository host. Every host gets
 * the package, its pgbackrest.conf and the SSH link for pgBackRest as postgres: keys derived from a
 * generated secret, restricted in authorized_keys to running pgbackrest, host keys pinned from the
 * controller's known_hosts. The repository host keeps the encrypted repository (aes-256-cbc with a
 * generated passphrase) and the retention. With `pgbackrest_tls` (and `tls_enabled`) the repository host
 * also runs pgBackRest's TLS server (Debian's pgbackrest.service, as postgres, on its address only), which
 * the members reach instead of SSH: a member's archive-get then needs no SSH login and no remote pgbackrest
 * process; the server is restarted when its configuration or certificate changes, and stays stopped on every
 * other host. WAL archiving itself is Patroni's dynamic configuration
 * (roles/pgbackrest/archiving.ts); the members get the script its restore_command runs. The role runs on
 * the members before Patroni (a replica's restore_command must find pgbackrest when it first starts: a
 * missing command stops its recovery) and does nothing without a repository host. The stanza, the check
 * and the timers are the repository role's.
 */
import type { HostRun, Role, Task, Vars } from '../../lib/types.ts'
import { directory, file, service, template, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { tlsReader } from '../certificates/index.ts'
import { servesCurrentCertificate } from '../certificates/served.ts'
import { tlsFiles } from '../tls.ts'
import { RESTORE_SCRIPT } from './archiving.ts'
import { BACKUP_VARS, TLS_VARS, groupMembers, settingsOf, sharedVars, tlsOn, type StackVars } from '../stack.ts'
import { pinnedHostKeyLines } from './host-keys.ts'
import { configSections, sshClients, sshPeers, tlsServer, type TlsServer } from './render.ts'
import { derivedKey } from './ssh-keys.ts'

const shared = sharedVars(
  ...BACKUP_VARS,
  ...TLS_VARS,
  'patroni_group',
  'patroni_restapi_port',
  'postgresql_version',
  'postgresql_port',
  'postgresql_data_dir',
)

export interface PgbackrestVars extends Vars, Pick<StackVars, keyof typeof shared.defaults> {
  pgbackrest_repo_path: string
  pgbackrest_cipher_pass: string
  pgbackrest_ssh_secret: string
  pgbackrest_retention_full: number
  pgbackrest_retention_diff: number
  pgbackrest_full_schedule: string
  pgbackrest_diff_schedule: string
  pgbackrest_drill_schedule: string
  pgbackrest_process_max: number
  pgbackrest_compress_type: string
  pgbackrest_drill_port: number
  pgbackrest_drill_dir: string
}

/** The postgres user's SSH directory (its home is Debian's /var/lib/postgresql). */
export const POSTGRES_SSH = '/var/lib/postgresql/.ssh'
const IDENTITY = `${POSTGRES_SSH}/hastack_pgbackrest`
const KNOWN_HOSTS = `${POSTGRES_SSH}/hastack_pgbackrest_known_hosts`
/** Where postgres's SSH keeps a peer's shared connection (%C: a hash of the connection; short, as sockets need). */
const CONTROL_PATH = `${POSTGRES_SSH}/mux-%C`
/**
 * How long a shared connection outlives its last session. A promotion's archive-gets come within a second or
 * two of each other; a replica otherwise fetches no WAL, so the connection does not linger.
 */
const CONTROL_PERSIST = '60s'
/**
 * sshd's MaxSessions (10) bounds the sessions on one shared connection: a backup or restore opens one per
 * process plus its own, and an archive-get or archive-push may share the connection at the same time.
 */
const MAX_PROCESSES = 8

const SECRET_WORD = { type: 'string', format: 'config-word', minLength: 16, secret: true } as const

/** Debian's unit of pgBackRest's TLS server: `pgbackrest server` as postgres, with /etc/pgbackrest/pgbackrest.conf. */
export const TLS_SERVER_UNIT = 'pgbackrest'
const RESTART_TLS_SERVER = "Restart pgBackRest's TLS server"
/** The server reads its certificate and its options when it starts. */
const RESTART_HOW = "a restart of pgBackRest's TLS server (it reads its certificate when it starts)"

/** A file whose content is a secret: never shown under --diff. */
function secretFile(path: string, content: string, name: string): Task {
  const inner = file({ path, content, owner: 'postgres', group: 'postgres', mode: '0600', name })
  return {
    ...inner,
    check: async (ctx) => {
      const plan = await inner.check(ctx)
      return plan.change ? { ...plan, diff: undefined } : plan
    },
  }
}

/** The SSH link of one host: its identity, the peers it reaches, their host keys, who may log in. */
function sshView(h: HostRun & { vars: PgbackrestVars }) {
  const v = h.vars
  const isRepository = groupMembers(h.inventory, v.pgbackrest_group).includes(h.name)
  const own = derivedKey(v.pgbackrest_ssh_secret, isRepository ? 'repository' : 'database')
  const clients = sshClients(h)
  const peers = sshPeers(h)
  return {
    privateKey: own.privateFile,
    peers: peers.map((p) => String(h.hostvars(p).address)),
    identity: IDENTITY,
    knownHosts: KNOWN_HOSTS,
    controlPath: CONTROL_PATH,
    controlPersist: CONTROL_PERSIST,
    hostKeys: pinnedHostKeyLines(h.inventory, peers),
    authorized: clients.length
      ? derivedKey(v.pgbackrest_ssh_secret, isRepository ? 'database' : 'repository').publicLine
      : undefined,
  }
}

/**
 * The TLS server on the repository host: running and enabled, listening on the host's address, presenting the
 * current certificate (after a renewal, a restart).
 */
function tlsServerTasks(h: HostRun & { vars: PgbackrestVars }, server: TlsServer): Task[] {
  const restart = () => h.conn.run(`systemctl restart ${TLS_SERVER_UNIT}`, { check: true }).then(() => undefined)
  const endpoint = {
    service: "pgBackRest's TLS server",
    address: server.address,
    port: server.port,
    certFile: tlsFiles(h.vars, 'postgres').cert,
  }
  return [
    service({
      service: TLS_SERVER_UNIT,
      enabled: true,
      state: 'started',
      name: "Ensure pgBackRest's TLS server is enabled and running",
    }),
    waitFor({
      port: server.port,
      address: server.address,
      timeoutMs: 30_000,
      name: "Wait for pgBackRest's TLS server to accept connections",
    }),
    servesCurrentCertificate(endpoint, RESTART_HOW, restart),
  ]
}

export const pgbackrestRole: Role<PgbackrestVars> = {
  name: 'pgbackrest',
  description: 'pgBackRest on the PostgreSQL members and the repository host, linked over restricted SSH.',
  defaults: {
    ...shared.defaults,
    pgbackrest_repo_path: '/var/lib/pgbackrest',
    pgbackrest_cipher_pass: '',
    pgbackrest_ssh_secret: '',
    pgbackrest_retention_full: 2,
    pgbackrest_retention_diff: 6,
    pgbackrest_full_schedule: 'Sun *-*-* 01:00:00',
    pgbackrest_diff_schedule: 'Mon..Sat *-*-* 01:00:00',
    pgbackrest_drill_schedule: '*-*-* 03:30:00',
    pgbackrest_process_max: 2,
    pgbackrest_compress_type: 'lz4',
    pgbackrest_drill_port: 5439,
    pgbackrest_drill_dir: '/var/lib/postgresql/hastack-drill',
  },
  schema: {
    ...shared.schema,
    pgbackrest_repo_path: {
      type: 'string',
      format: 'absolute-path',
      description: 'Directory of the repository on the repository host.',
    },
    pgbackrest_cipher_pass: {
      ...SECRET_WORD,
      description: 'Passphrase of the repository encryption (aes-256-cbc), on the repository host only (generated).',
    },
    pgbackrest_ssh_secret: {
      ...SECRET_WORD,
      description: "Seed of the SSH keys pgBackRest's hosts log in to each other with (generated).",
    },
    pgbackrest_retention_full: {
      type: 'integer',
      minimum: 1,
      description: 'Full backups kept (older ones, and the WAL only they need, expire).',
    },
    pgbackrest_retention_diff: {
      type: 'integer',
      minimum: 1,
      description: 'Differential backups kept.',
    },
    pgbackrest_full_schedule: {
      type: 'string',
      format: 'systemd-calendar',
      description: 'When the timer on the repository host takes a full backup (systemd `OnCalendar=`).',
    },
    pgbackrest_diff_schedule: {
      type: 'string',
      format: 'systemd-calendar',
      description: 'When it takes a differential backup.',
    },
    pgbackrest_drill_schedule: {
      type: 'string',
      format: 'systemd-calendar',
      description: 'When the timer on the repository host runs the restore drill (after the backups, by default).',
    },
    pgbackrest_process_max: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_PROCESSES,
      description:
        'Processes a backup or restore compresses and copies with (at most 8: each is an SSH session on the ' +
        "one shared connection to a peer, which sshd's MaxSessions 10 bounds).",
    },
    pgbackrest_compress_type: {
      type: 'string',
      enum: ['lz4', 'zst', 'gz', 'none'],
      description: 'Compression of the repository files.',
    },
    pgbackrest_drill_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: "Port of the restore drill's scratch PostgreSQL (Unix socket only) on the repository host.",
    },
    pgbackrest_drill_dir: {
      type: 'string',
      format: 'absolute-path',
      description: 'Directory the restore drill restores into and removes again (owned by postgres).',
    },
  },
  validate(inventory) {
    const errors: string[] = []
    const defaults = pgbackrestRole.defaults
    const groups = new Set([...inventory.hosts.values()].map((h) => settingsOf(h, defaults).pgbackrest_group))
    for (const group of groups) {
      const repos = groupMembers(inventory, group)
      if (repos.length > 1)
        errors.push(`group ${group} has ${repos.length} hosts (${repos.join(', ')}): pgBackRest keeps one repository`)
    }
    for (const host of inventory.hosts.values()) {
      const v = settingsOf(host, defaults)
      if (!groupMembers(inventory, v.pgbackrest_group).includes(host.name)) continue
      if (groupMembers(inventory, v.patroni_group).length === 0)
        errors.push(
          `host ${host.name}: a backup repository needs PostgreSQL members (group ${v.patroni_group} is empty)`,
        )
      if (host.groups.includes(v.patroni_group) && v.pgbackrest_drill_port === v.postgresql_port)
        errors.push(`host ${host.name}: pgbackrest_drill_port must differ from postgresql_port (${v.postgresql_port})`)
      const served = { postgresql_port: v.postgresql_port, patroni_restapi_port: v.patroni_restapi_port }
      for (const [name, port] of Object.entries(served))
        if (tlsOn(v, 'pgbackrest') && host.groups.includes(v.patroni_group) && v.pgbackrest_tls_port === port)
          errors.push(`host ${host.name}: pgbackrest_tls_port and ${name} are the same port (${port})`)
      const dataDir = `${v.postgresql_data_dir.replace(/\/$/, '')}/`
      const drill = `${v.pgbackrest_drill_dir.replace(/\/$/, '')}/`
      if (drill.startsWith(dataDir) || dataDir.startsWith(drill))
        errors.push(`host ${host.name}: pgbackrest_drill_dir must lie outside postgresql_data_dir and not contain it`)
    }
    return errors
  },
  handlers: {
    [RESTART_TLS_SERVER]: (h) =>
      h.do(service({ service: TLS_SERVER_UNIT, state: 'restarted', name: RESTART_TLS_SERVER })),
  },
  async tasks(h) {
    const v = h.vars
    // Part of the members' play (before Patroni, so restore_command finds pgbackrest from the first start).
    if (groupMembers(h.inventory, v.pgbackrest_group).length === 0) return
    const isRepository = groupMembers(h.inventory, v.pgbackrest_group).includes(h.name)
    const isMember = groupMembers(h.inventory, v.patroni_group).includes(h.name)
    await installWithoutStarting(h, ['pgbackrest', ...(isRepository ? ['python3'] : [])], 'pgBackRest')
    const server = isRepository ? tlsServer(h) : undefined
    // The server runs as postgres with postgres's copy of the host key (its group); before it first starts.
    if (server) await h.do(tlsReader('postgres', 'postgres'))
    const ssh = sshView(h)
    const sshFile = (src: string, dest: string, what: string) =>
      template({ src, dest, owner: 'postgres', mode: '0600', vars: { ssh }, name: `Ensure ${what} is current` })
    // One run of tasks, in the order they were always run: their probes answered in one round trip.
    await h.doAll([
      directory({ path: '/etc/pgbackrest', group: 'postgres', mode: '0750', name: 'Ensure /etc/pgbackrest exists' }),
      directory({
        path: '/var/log/pgbackrest',
        owner: 'postgres',
        mode: '0750',
        name: "Ensure pgBackRest's log directory exists",
      }),
      ...(isRepository
        ? [
            directory({
              path: v.pgbackrest_repo_path,
              owner: 'postgres',
              mode: '0750',
              name: 'Ensure the backup repository directory exists',
            }),
          ]
        : []),
      directory({ path: POSTGRES_SSH, owner: 'postgres', mode: '0700', name: "Ensure postgres's .ssh exists" }),
      secretFile(IDENTITY, ssh.privateKey, "Ensure postgres's pgBackRest SSH key is current"),
      sshFile('pgbackrest/ssh_config.ejs', `${POSTGRES_SSH}/config`, "postgres's SSH client configuration"),
      sshFile('pgbackrest/known_hosts.ejs', KNOWN_HOSTS, "the pgBackRest peers' pinned host keys"),
      sshFile(
        'pgbackrest/authorized_keys.ejs',
        `${POSTGRES_SSH}/authorized_keys`,
        "postgres's authorized pgBackRest key",
      ),
      template({
        src: 'pgbackrest/pgbackrest.conf.ejs',
        dest: '/etc/pgbackrest/pgbackrest.conf',
        group: 'postgres',
        mode: '0640',
        vars: { sections: configSections(h) },
        notify: server ? RESTART_TLS_SERVER : undefined,
        name: 'Ensure the pgBackRest configuration is current',
      }),
      ...(isMember
        ? [
            template({
              src: 'pgbackrest/restore-wal.sh.ejs',
              dest: RESTORE_SCRIPT,
              mode: '0755',
              vars: {},
              name: "Ensure the members' restore_command script is current",
            }),
          ]
        : []),
    ])
    await h.flushHandlers()
    await h.doAll(
      server
        ? tlsServerTasks(h, server)
        : [
            // Debian enables the unit on install; without options it has nothing to serve.
            service({
              service: TLS_SERVER_UNIT,
              enabled: false,
              state: 'stopped',
              name: "Ensure pgBackRest's TLS server is not running here",
            }),
          ],
    )
  },
}
