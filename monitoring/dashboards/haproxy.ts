/**
 * The HAProxy dashboard: servers up per backend, sessions, errors and traffic of the
 * clients' entry point, from HAProxy's built-in exporter.
 */
import type { DashboardSpec } from './builder.ts'

export const haproxy: DashboardSpec = {
  uid: 'hastack-haproxy',
  title: 'hastack / HAProxy',
  description: 'The entry point of PostgreSQL (5000/5001) and Redis: backends, sessions, errors, traffic.',
  tags: ['hastack', 'haproxy'],
  rows: [
    {
      title: 'Backends',
      panels: [
        {
          kind: 'timeseries',
          title: 'Servers up per backend',
          queries: [{ expr: 'haproxy_backend_active_servers{proxy!="stats"}', legend: '{{proxy}}' }],
        },
        {
          kind: 'table',
          title: 'Server states',
          queries: [{ expr: 'haproxy_server_status == 1', legend: '{{proxy}} {{server}} {{state}}', instant: true }],
        },
      ],
    },
    {
      title: 'Traffic',
      panels: [
        {
          kind: 'timeseries',
          title: 'Current sessions per frontend',
          queries: [{ expr: 'haproxy_frontend_current_sessions', legend: '{{proxy}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Backend connection errors per second',
          queries: [{ expr: 'rate(haproxy_backend_connection_errors_total[5m])', legend: '{{proxy}}' }],
        },
        {
          kind: 'timeseries',
          title: 'Bytes in per frontend',
          queries: [{ expr: 'rate(haproxy_frontend_bytes_in_total[5m])', legend: '{{proxy}}' }],
          unit: 'Bps',
        },
        {
          kind: 'timeseries',
          title: 'Bytes out per frontend',
          queries: [{ expr: 'rate(haproxy_frontend_bytes_out_total[5m])', legend: '{{proxy}}' }],
          unit: 'Bps',
        },
      ],
    },
  ],
}
