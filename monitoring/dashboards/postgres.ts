/**
 * The PostgreSQL dashboard: Patroni members, connections, transactions, WAL rate and
 * replica lag, from Patroni's /metrics and postgres_exporter.
 */
import type { DashboardSpec } from './builder.ts'
import { PG_REPLICA_LAG } from './queries.ts'

export const postgres: DashboardSpec = {
  uid: 'hastack-postgres',
  title: 'hastack / PostgreSQL',
  description: 'Patroni members, connections, transactions, WAL and replication of the PostgreSQL cluster.',
  tags: ['hastack', 'postgres'],
  rows: [
    {
      title: 'Members',
      panels: [
        {
          kind: 'stat',
          title: 'Members running PostgreSQL',
          queries: [{ expr: 'sum by (scope) (patroni_postgres_running)', legend: '{{scope}}', instant: true }],
          width: 8,
        },
        {
          kind: 'stat',
          title: 'Members waiting for a restart',
          queries: [{ expr: 'sum(patroni_pending_restart) or vector(0)', instant: true }],
          redFrom: 1,
          width: 8,
        },
        {
          kind: 'stat',
          title: 'Exporters connected',
          queries: [{ expr: 'sum(pg_up)', instant: true }],
          width: 8,
        },
      ],
    },
    {
      title: 'Load',
      panels: [
        {
          kind: 'timeseries',
          title: 'Connections by state',
          queries: [{ expr: 'sum by (host, state) (pg_stat_activity_count)', legend: '{{host}} {{state}}' }],
          stack: true,
        },
        {
          kind: 'timeseries',
          title: 'Commits per second',
          queries: [{ expr: 'sum by (host) (rate(pg_stat_database_xact_commit[5m]))', legend: '{{host}}' }],
          unit: 'reqps',
        },
      ],
    },
    {
      title: 'WAL and replication',
      panels: [
        {
          kind: 'timeseries',
          title: 'WAL written by the leader',
          queries: [
            { expr: 'rate(patroni_xlog_location[5m]) and on (instance) patroni_primary == 1', legend: '{{host}}' },
          ],
          unit: 'Bps',
        },
        {
          kind: 'timeseries',
          title: 'Replica lag',
          queries: [{ expr: PG_REPLICA_LAG, legend: '{{host}}' }],
          unit: 'bytes',
        },
      ],
    },
  ],
}
