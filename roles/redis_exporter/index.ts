/**
 * redis_exporter: Debian's prometheus-redis-exporter, one instance per Redis server
 * (Debian's unit, port 9121) and one per Sentinel (a unit of hastack's, port 9122), each
 * authenticated with its server's password over loopback and listening on the cluster
 * address only, over TLS (`rediss://`, the stack's CA) when `tlsOn(vars, 'redis')`. A Sentinel-only host
 * keeps Debian's instance stopped and disabled.
 */
import type { Role, Vars } from '../../lib/types.ts'
import { service, systemdUnit, template, waitFor } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { tlsOn } from '../stack.ts'
import { tlsFiles } from '../tls.ts'

export interface RedisExporterVars extends Vars {
  redis_exporter_port: number
  redis_exporter_sentinel_port: number
}

const REDIS_UNIT = 'prometheus-redis-exporter'
const SENTINEL_UNIT = 'prometheus-redis-exporter-sentinel'

export const redisExporterRole: Role<RedisExporterVars> = {
  name: 'redis_exporter',
  description: 'Redis and Sentinel metrics (prometheus-redis-exporter), authenticated, on the cluster address.',
  defaults: { redis_exporter_port: 9121, redis_exporter_sentinel_port: 9122 },
  schema: {
    redis_exporter_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Port of the exporter of Redis.' },
    redis_exporter_sentinel_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'Port of the exporter of Sentinel.',
    },
  },
  validate(inventory) {
    const errors: string[] = []
    for (const host of inventory.hosts.values()) {
      const v = host.vars
      if (v.redis_exporter_port === v.redis_exporter_sentinel_port)
        errors.push(`host ${host.name}: redis_exporter_port and redis_exporter_sentinel_port are the same port`)
    }
    return errors
  },
  handlers: {
    'Restart redis_exporter': (h) =>
      h.do(service({ service: REDIS_UNIT, state: 'restarted', name: 'Restart the Redis exporter' })),
    'Restart the Sentinel exporter': (h) =>
      h.do(service({ service: SENTINEL_UNIT, state: 'restarted', name: 'Restart the Sentinel exporter' })),
  },
  async tasks(h) {
    const v = h.vars
    const redis = h.groups.includes('redis')
    const sentinel = h.groups.includes('sentinel')
    await installWithoutStarting(h, ['prometheus-redis-exporter'], 'redis_exporter')
    const redis_exporter_ca = tlsOn(v, 'redis') ? tlsFiles(v).ca : ''
    // Two runs of tasks (settings, then the waits after the handlers), each with its probes in one round trip.
    await h.doAll(
      [
        ...(redis
          ? [
              template({
                src: 'redis_exporter/default.ejs',
                dest: `/etc/default/${REDIS_UNIT}`,
                mode: '0600',
                vars: {
                  redis_exporter_target: 'Redis server',
                  redis_exporter_target_port: v.redis_port,
                  redis_exporter_target_password: v.redis_password,
                  redis_exporter_listen_port: v.redis_exporter_port,
                  redis_exporter_ca,
                },
                notify: 'Restart redis_exporter',
                name: 'Ensure the Redis exporter settings are current',
              }),
            ]
          : []),
        service({
          service: REDIS_UNIT,
          enabled: redis,
          state: redis ? 'started' : 'stopped',
          name: redis
            ? 'Ensure the Redis exporter is enabled and started'
            : "Ensure Debian's Redis exporter stays off on a Sentinel-only host",
        }),
        ...(sentinel
          ? [
              template({
                src: 'redis_exporter/default.ejs',
                dest: `/etc/default/${SENTINEL_UNIT}`,
                mode: '0600',
                vars: {
                  redis_exporter_target: 'Sentinel',
                  redis_exporter_target_port: v.sentinel_port,
                  redis_exporter_target_password: v.sentinel_password,
                  redis_exporter_listen_port: v.redis_exporter_sentinel_port,
                  redis_exporter_ca,
                },
                notify: 'Restart the Sentinel exporter',
                name: 'Ensure the Sentinel exporter settings are current',
              }),
              systemdUnit({
                unit: `${SENTINEL_UNIT}.service`,
                src: 'redis_exporter/sentinel.service.ejs',
                notify: 'Restart the Sentinel exporter',
                name: 'Ensure the Sentinel exporter unit is current',
              }),
              service({
                service: SENTINEL_UNIT,
                enabled: true,
                state: 'started',
                name: 'Ensure the Sentinel exporter is enabled and started',
              }),
            ]
          : []),
      ],
      {
        afterHandlers: [
          ...(redis
            ? [
                waitFor({
                  port: v.redis_exporter_port,
                  address: String(v.address),
                  name: 'Wait for the Redis exporter to listen',
                }),
              ]
            : []),
          ...(sentinel
            ? [
                waitFor({
                  port: v.redis_exporter_sentinel_port,
                  address: String(v.address),
                  name: 'Wait for the Sentinel exporter to listen',
                }),
              ]
            : []),
        ],
      },
    )
  },
}
