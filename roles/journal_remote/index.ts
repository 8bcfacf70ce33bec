/**
 * journal_remote: the central log store on the logging group. Debian's systemd-journal-remote
 * takes the uploads of every host's systemd-journal-upload over HTTP on the cluster address only
 * (TLS comes with issue 14) and writes one journal per sending host under /var/log/journal/remote.
 * Its size bound: journal-remote.conf's `MaxUse=` arrives in systemd 253 and Debian 12 has 252, so a
 * timer vacuums the archived files down to `journal_remote_max_use` every few minutes; each
 * sender's active file adds at most the 128 MiB at which journal-remote rotates it.
 */
import type { Inventory, Role, Vars } from '../../lib/types.ts'
import { command, service, systemdUnit, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { groupMembers } from '../stack.ts'

export interface JournalRemoteVars extends Vars {
  journal_remote_port: number
  journal_remote_max_use: string
}

/** The central store: one journal file per sending host. */
export const REMOTE_JOURNAL_DIR = '/var/log/journal/remote'
/** The inventory group of the central log store. */
export const LOGGING_GROUP = 'logging'
export const VACUUM_UNIT = 'hastack-journal-vacuum'
/** How often the store is vacuumed down to its bound. */
export const VACUUM_EVERY = '5min'

/** One logging host: every host ships its journal to exactly one store. */
export function validateJournalRemote(inventory: Inventory): string[] {
  const hosts = groupMembers(inventory, LOGGING_GROUP)
  return hosts.length > 1
    ? [`group ${LOGGING_GROUP} has ${hosts.length} hosts (${hosts.join(', ')}): one central log store is supported`]
    : []
}

/** The socket on the cluster address only (Debian's listens on every address). */
export function socketDropIn(vars: Vars): string {
  const listen = `${String(vars.address)}:${Number(vars.journal_remote_port)}`
  return `# Managed by hastack.\n[Socket]\nListenStream=\nListenStream=${listen}\nFreeBind=yes\n`
}

/** Plain HTTP on the socket systemd passes (Debian's unit asks for HTTPS, which needs certificates). */
export const SERVICE_DROP_IN =
  '# Managed by hastack: HTTP within the cluster network until TLS (issue 14).\n[Service]\nExecStart=\n' +
  `ExecStart=/lib/systemd/systemd-journal-remote --listen-http=-3 --output=${REMOTE_JOURNAL_DIR}/\n`

/** The vacuum that bounds the store: archived files are removed, oldest first, down to the bound. */
export function vacuumService(vars: Vars): string {
  const size = String(vars.journal_remote_max_use)
  return [
    '# Managed by hastack.',
    '[Unit]',
    `Description=Bound the central journal store to ${size}`,
    // The store appears with the first upload: until then there is nothing to bound (skipped, not failed).
    `ConditionPathIsDirectory=${REMOTE_JOURNAL_DIR}`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=/bin/journalctl --directory=${REMOTE_JOURNAL_DIR} --vacuum-size=${size}`,
    '',
  ].join('\n')
}

export const VACUUM_TIMER = [
  '# Managed by hastack.',
  '[Unit]',
  'Description=Bound the central journal store regularly',
  '',
  '[Timer]',
  'OnBootSec=2min',
  `OnUnitActiveSec=${VACUUM_EVERY}`,
  '',
  '[Install]',
  'WantedBy=timers.target',
  '',
].join('\n')

/** Restart the socket with its new address: the service holding it must stop first. */
export const RESTART_RECEIVER =
  'systemctl stop systemd-journal-remote.service && systemctl restart systemd-journal-remote.socket' +
  ' && systemctl start systemd-journal-remote.service'

export const journalRemoteRole: Role<JournalRemoteVars> = {
  name: 'journal_remote',
  description: 'Central log store (systemd-journal-remote) on the logging group, bounded in size.',
  defaults: { journal_remote_port: 19532, journal_remote_max_use: '1G' },
  schema: {
    journal_remote_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port receiving the journal uploads, on the cluster address of the logging host.',
    },
    journal_remote_max_use: {
      type: 'string',
      pattern: '^[1-9][0-9]*[KMG]$',
      description: 'Bound of the archived journals in the store (`journalctl --vacuum-size`), e.g. `512M`, `4G`.',
    },
  },
  validate: validateJournalRemote,
  handlers: {
    'Restart journal-remote': (h) =>
      h.do(command({ cmd: RESTART_RECEIVER, name: 'Restart journal-remote on its socket' })),
  },
  async tasks(h) {
    const v = h.vars
    await installWithoutStarting(h, ['systemd-journal-remote'], 'systemd-journal-remote')
    await h.doAll(
      [
        systemdUnit({
          unit: 'systemd-journal-remote.socket',
          dropIn: 'hastack.conf',
          content: socketDropIn(v),
          notify: 'Restart journal-remote',
          name: 'Ensure journal-remote listens on the cluster address only',
        }),
        systemdUnit({
          unit: 'systemd-journal-remote.service',
          dropIn: 'hastack.conf',
          content: SERVICE_DROP_IN,
          notify: 'Restart journal-remote',
          name: 'Ensure journal-remote takes uploads over HTTP',
        }),
        systemdUnit({
          unit: `${VACUUM_UNIT}.service`,
          content: vacuumService(v),
          name: 'Ensure the store is vacuumed to its bound',
        }),
        systemdUnit({ unit: `${VACUUM_UNIT}.timer`, content: VACUUM_TIMER, name: 'Ensure the vacuum timer exists' }),
        service({ service: `${VACUUM_UNIT}.timer`, enabled: true, state: 'started', name: 'Ensure the vacuum runs' }),
        service({
          service: 'systemd-journal-remote.socket',
          enabled: true,
          state: 'started',
          name: 'Ensure the journal-remote socket is enabled and listening',
        }),
        service({ service: 'systemd-journal-remote', state: 'started', name: 'Ensure journal-remote runs' }),
      ],
      // After the handlers: the wait's first try is gathered with the tasks' probes unless a handler ran.
      {
        afterHandlers: [
          waitFor({
            port: v.journal_remote_port,
            address: String(v.address),
            timeoutMs: 60_000,
            name: 'Wait for journal-remote to listen',
          }),
        ],
      },
    )
  },
}
