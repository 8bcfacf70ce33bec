/**
 * The hosts dashboard: CPU, memory, disk, network, clock offset and failed units of every
 * host, from node_exporter.
 */
import type { DashboardSpec } from './builder.ts'

export const hosts: DashboardSpec = {
  uid: 'hastack-hosts',
  title: 'hastack / Hosts',
  description: 'CPU, memory, disks, network, clocks and systemd units of every host (node_exporter).',
  tags: ['hastack', 'hosts'],
  rows: [
    {
      title: 'Load',
      panels: [
        {
          kind: 'timeseries',
          title: 'CPU busy',
          queries: [{ expr: '1 - avg by (host) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', legend: '{{host}}' }],
          unit: 'percentunit',
        },
        {
          kind: 'timeseries',
          title: 'Memory available',
          queries: [{ expr: 'node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes', legend: '{{host}}' }],
          unit: 'percentunit',
        },
      ],
    },
    {
      title: 'Storage and network',
      panels: [
        {
          kind: 'timeseries',
          title: 'Disk space free',
          queries: [
            {
              expr: 'node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|squashfs"} / node_filesystem_size_bytes',
              legend: '{{host}} {{mountpoint}}',
            },
          ],
          unit: 'percentunit',
        },
        {
          kind: 'timeseries',
          title: 'Network received',
          queries: [
            { expr: 'sum by (host) (rate(node_network_receive_bytes_total{device!="lo"}[5m]))', legend: '{{host}}' },
          ],
          unit: 'Bps',
        },
      ],
    },
    {
      title: 'Clocks and services',
      panels: [
        {
          kind: 'timeseries',
          title: 'Clock offset',
          description:
            "NTP's offset where the kernel reports it (timex); elsewhere (a container, as in the lab, " +
            "cannot read it) the host's clock against the Prometheus host's at the scrape.",
          queries: [
            { expr: 'node_timex_offset_seconds or (node_time_seconds - timestamp(node_time_seconds))', legend: '{{host}}' },
          ],
          unit: 's',
        },
        {
          kind: 'stat',
          title: 'Failed systemd units',
          queries: [{ expr: 'sum(node_systemd_unit_state{state="failed"}) or vector(0)', instant: true }],
          redFrom: 1,
        },
      ],
    },
  ],
}
