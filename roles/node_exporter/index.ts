/**
 * node_exporter: Debian's prometheus-node-exporter on every host, listening on the
 * cluster address only, with the systemd collector on (failed units are alerted on; it
 * reads unit states over D-Bus, so dbus is installed and started too).
 */
import type { Role, Vars } from '../../lib/types.ts'
import { service, template, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'

export interface NodeExporterVars extends Vars {
  node_exporter_port: number
}

export const nodeExporterRole: Role<NodeExporterVars> = {
  name: 'node_exporter',
  description: 'Host metrics (prometheus-node-exporter with its systemd collector) on the cluster address.',
  defaults: { node_exporter_port: 9100 },
  schema: {
    node_exporter_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'node_exporter port on the cluster address.',
    },
  },
  handlers: {
    'Restart node_exporter': (h) =>
      h.do(service({ service: 'prometheus-node-exporter', state: 'restarted', name: 'Restart node_exporter' })),
  },
  async tasks(h) {
    const v = h.vars
    // The systemd collector asks systemd over D-Bus: a minimal Debian has no bus until dbus is installed.
    await installWithoutStarting(h, ['prometheus-node-exporter', 'dbus'], 'node_exporter')
    await h.doAll(
      [
        service({ service: 'dbus', state: 'started', name: 'Ensure the system bus runs for the collector' }),
        template({
          src: 'node_exporter/default.ejs',
          dest: '/etc/default/prometheus-node-exporter',
          notify: 'Restart node_exporter',
          name: 'Ensure the node_exporter arguments are current',
        }),
        service({
          service: 'prometheus-node-exporter',
          enabled: true,
          state: 'started',
          name: 'Ensure node_exporter is enabled and started',
        }),
      ],
      // After the handlers: the wait's first try is gathered with the tasks' probes unless a handler ran.
      {
        afterHandlers: [
          waitFor({
            port: v.node_exporter_port,
            address: String(v.address),
            timeoutMs: 60_000,
            name: 'Wait for node_exporter to listen',
          }),
        ],
      },
    )
  },
}
