/**
 * The etcd dashboard: leadership, WAL fsync latency, proposals and database size, from
 * etcd's /metrics.
 */
import type { DashboardSpec } from './builder.ts'

/** 99th percentile of WAL fsync durations per member (as in the EtcdHighFsyncDuration alert). */
const WAL_FSYNC_P99 = `histogram_quantile(0.99,
  sum by (host, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))`

export const etcd: DashboardSpec = {
  uid: 'hastack-etcd',
  title: 'hastack / etcd',
  description: "The etcd cluster that holds Patroni's leader key: leadership, disk latency, proposals, size.",
  tags: ['hastack', 'etcd'],
  rows: [
    {
      title: 'Leadership',
      panels: [
        {
          kind: 'timeseries',
          title: 'Has a leader',
          queries: [{ expr: 'etcd_server_has_leader', legend: '{{host}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Leader changes (last hour)',
          queries: [{ expr: 'increase(etcd_server_leader_changes_seen_total[1h])', legend: '{{host}}' }],
        },
      ],
    },
    {
      title: 'Disk and proposals',
      panels: [
        {
          kind: 'timeseries',
          title: 'WAL fsync p99',
          queries: [
            {
              expr: WAL_FSYNC_P99,
              legend: '{{host}}',
            },
          ],
          unit: 's',
        },
        {
          kind: 'timeseries',
          title: 'Proposals committed per second',
          queries: [{ expr: 'rate(etcd_server_proposals_committed_total[5m])', legend: '{{host}}' }],
          unit: 'reqps',
        },
        {
          kind: 'timeseries',
          title: 'Database size',
          queries: [{ expr: 'etcd_mvcc_db_total_size_in_bytes', legend: '{{host}}' }],
          unit: 'bytes',
        },
        {
          kind: 'timeseries',
          title: 'Failed proposals (last hour)',
          queries: [{ expr: 'increase(etcd_server_proposals_failed_total[1h])', legend: '{{host}}' }],
        },
      ],
    },
  ],
}
