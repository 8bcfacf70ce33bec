/**
 * The HA overview dashboard: who is primary for PostgreSQL and Redis, whether etcd has a
 * leader and quorum, replication lag, failovers over time, HAProxy backends up, targets
 * up and the alerts firing. The first screen an operator opens.
 */
import type { DashboardSpec } from './builder.ts'
import { PG_REPLICA_LAG } from './queries.ts'

/** How many other primary addresses the Sentinels named in the last hour (0: no failover). */
const SENTINEL_ADDRESS_CHANGES = `count by (master_name) (
  count by (master_name, master_address) (last_over_time(redis_sentinel_master_status{job="sentinel"}[1h]))
) - 1`

export const haOverview: DashboardSpec = {
  uid: 'hastack-ha-overview',
  title: 'hastack / HA overview',
  description: 'Primaries, quorum, replication lag, failovers, HAProxy backends and alerts of the whole stack.',
  tags: ['hastack', 'ha'],
  from: 'now-6h',
  rows: [
    {
      title: 'Who leads',
      panels: [
        {
          kind: 'stat',
          title: 'PostgreSQL primary',
          description: 'The Patroni member that reports itself primary (more than one is a split brain).',
          queries: [{ expr: 'patroni_primary == 1', legend: '{{host}}', instant: true }],
          showName: true,
          width: 6,
        },
        {
          kind: 'stat',
          title: 'Redis primary',
          description: 'The Redis server that reports the master role.',
          queries: [{ expr: 'redis_instance_info{job="redis", role="master"}', legend: '{{host}}', instant: true }],
          showName: true,
          width: 6,
        },
        {
          kind: 'stat',
          title: 'etcd members with a leader',
          queries: [{ expr: 'sum(etcd_server_has_leader)', instant: true }],
          width: 4,
        },
        {
          kind: 'stat',
          title: 'Alerts firing',
          queries: [{ expr: 'count(ALERTS{alertstate="firing"}) or vector(0)', instant: true }],
          redFrom: 1,
          width: 4,
        },
        {
          kind: 'stat',
          title: 'Targets down',
          queries: [{ expr: 'count(up == 0) or vector(0)', instant: true }],
          redFrom: 1,
          width: 4,
        },
      ],
    },
    {
      title: 'Replication',
      panels: [
        {
          kind: 'timeseries',
          title: 'PostgreSQL replica lag',
          description: 'WAL the leader has written that each replica has not replayed yet.',
          queries: [{ expr: PG_REPLICA_LAG, legend: '{{host}}' }],
          unit: 'bytes',
        },
        {
          kind: 'timeseries',
          title: 'Redis replicas connected to the primary',
          queries: [
            { expr: 'redis_connected_slaves and on (instance) redis_instance_info{role="master"}', legend: '{{host}}' },
          ],
        },
      ],
    },
    {
      title: 'Failovers',
      panels: [
        {
          kind: 'timeseries',
          title: 'PostgreSQL timeline (a step is a failover or switchover)',
          queries: [{ expr: 'max by (scope) (patroni_postgres_timeline)', legend: '{{scope}}' }],
          width: 8,
        },
        {
          kind: 'timeseries',
          title: 'Redis primary address changes seen by Sentinel (last hour)',
          queries: [
            {
              expr: SENTINEL_ADDRESS_CHANGES,
              legend: '{{master_name}}',
            },
          ],
          width: 8,
        },
        {
          kind: 'timeseries',
          title: 'etcd leader changes (last hour)',
          queries: [{ expr: 'max(increase(etcd_server_leader_changes_seen_total[1h]))', legend: 'etcd' }],
          width: 8,
        },
      ],
    },
    {
      title: 'Entry points',
      panels: [
        {
          kind: 'timeseries',
          title: 'HAProxy servers up per backend',
          description: 'postgres_rw must show exactly one; each Redis backend counts the Sentinels naming it primary.',
          queries: [{ expr: 'haproxy_backend_active_servers{proxy!="stats"}', legend: '{{proxy}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Targets up per job',
          queries: [{ expr: 'sum by (job) (up)', legend: '{{job}}' }],
        },
      ],
    },
  ],
}
