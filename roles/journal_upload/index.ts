/**
 * journal_upload: every host ships its journal to the central store on the logging host with
 * Debian's systemd-journal-upload. Debian's unit keeps its position in a state file
 * (`--save-state`, under /var/lib/private/systemd/journal-upload), so a restart resumes after
 * the last entry sent instead of sending everything again; hastack adds restarts without a
 * start limit, so an upload that began while the store was down keeps trying.
 */
import type { Role, Vars } from '../../lib/types.ts'
import { directory, file, service, systemdUnit } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { LOGGING_GROUP } from '../journal_remote/index.ts'
import { groupMembers } from '../stack.ts'

export const UPLOAD_CONF_DIR = '/etc/systemd/journal-upload.conf.d'
export const UPLOAD_CONF = `${UPLOAD_CONF_DIR}/hastack.conf`

/** Keep trying while the store is unreachable (Debian's unit gives up after five quick failures). */
export const UPLOAD_DROP_IN =
  '# Managed by hastack.\n[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nRestart=always\nRestartSec=10s\n'

/** journal-upload.conf: the store's URL (the logging host's cluster address). */
export function uploadConf(store: Vars): string {
  const url = `http://${String(store.address)}:${Number(store.journal_remote_port)}`
  return `# Managed by hastack.\n[Upload]\nURL=${url}\n`
}

export const journalUploadRole: Role = {
  name: 'journal_upload',
  description: "Every host's journal shipped to the logging host (systemd-journal-upload, resuming after restarts).",
  defaults: {},
  schema: {},
  handlers: {
    'Restart journal-upload': (h) =>
      h.do(service({ service: 'systemd-journal-upload', state: 'restarted', name: 'Restart journal-upload' })),
  },
  async tasks(h) {
    const [store] = groupMembers(h.inventory, LOGGING_GROUP)
    if (store === undefined) throw new Error(`journal_upload needs a host in the ${LOGGING_GROUP} group`)
    await installWithoutStarting(h, ['systemd-journal-remote'], 'systemd-journal-upload')
    await h.doAll([
      directory({ path: UPLOAD_CONF_DIR, mode: '0755', name: 'Ensure the journal-upload settings directory exists' }),
      file({
        path: UPLOAD_CONF,
        content: uploadConf(h.hostvars(store)),
        mode: '0644',
        notify: 'Restart journal-upload',
        name: 'Ensure journal-upload sends to the logging host',
      }),
      systemdUnit({
        unit: 'systemd-journal-upload.service',
        dropIn: 'hastack.conf',
        content: UPLOAD_DROP_IN,
        notify: 'Restart journal-upload',
        name: 'Ensure journal-upload keeps retrying',
      }),
      service({
        service: 'systemd-journal-upload',
        enabled: true,
        state: 'started',
        name: 'Ensure journal-upload is enabled and started',
      }),
    ])
    await h.flushHandlers()
  },
}
