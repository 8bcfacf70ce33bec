/**
 * The Redis dashboard: roles, memory against maxmemory, commands, clients, replication
 * links and what the Sentinels see, from redis_exporter.
 */
import type { DashboardSpec } from './builder.ts'

export const redis: DashboardSpec = {
  uid: 'hastack-redis',
  title: 'hastack / Redis',
  description: 'Redis servers and Sentinels: roles, memory, load, replication and Sentinel health.',
  tags: ['hastack', 'redis'],
  rows: [
    {
      title: 'Roles',
      panels: [
        {
          kind: 'table',
          title: 'Role of each server',
          queries: [{ expr: 'redis_instance_info{job="redis"}', legend: '{{host}} {{role}}', instant: true }],
        },
        {
          kind: 'timeseries',
          title: 'Sentinels that see the primary as healthy',
          queries: [{ expr: 'redis_sentinel_master_ok_sentinels', legend: '{{host}} {{master_name}}' }],
        },
      ],
    },
    {
      title: 'Load',
      panels: [
        {
          kind: 'timeseries',
          title: 'Memory used of maxmemory',
          queries: [{ expr: 'redis_memory_used_bytes / (redis_memory_max_bytes > 0)', legend: '{{host}}' }],
          unit: 'percentunit',
        },
        {
          kind: 'timeseries',
          title: 'Commands per second',
          queries: [{ expr: 'rate(redis_commands_processed_total{job="redis"}[5m])', legend: '{{host}}' }],
          unit: 'reqps',
        },
        {
          kind: 'timeseries',
          title: 'Connected clients',
          queries: [{ expr: 'redis_connected_clients', legend: '{{job}} {{host}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Replica links up',
          queries: [{ expr: 'redis_master_link_up', legend: '{{host}}' }],
        },
      ],
    },
  ],
}
