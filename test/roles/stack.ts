/**
 * The inventory the role tests share: three etcd/PostgreSQL members, three
 * Redis/Sentinel hosts and one HAProxy host, with Patroni timings short enough
 * that the role's own waits stay well under a second in a test. It is the plaintext stack without the
 * firewall (`tls_enabled` and `firewall_enabled` false, both on by default): a test of TLS or of the
 * firewall turns its switch on.
 */
export function stackInventory(vars: Record<string, unknown> = {}): Record<string, unknown> {
  const hosts = (names: string[], first: number) =>
    Object.fromEntries(names.map((n, i) => [n, { address: `10.0.0.${first + i}` }]))
  const db = hosts(['db1', 'db2', 'db3'], 11)
  const redis = hosts(['redis1', 'redis2', 'redis3'], 31)
  return {
    all: {
      vars: {
        ssh_user: 'root',
        tls_enabled: false,
        firewall_enabled: false,
        patroni_ttl: 20,
        patroni_loop_wait: 1,
        patroni_retry_timeout: 3,
        ...vars,
      },
      children: {
        etcd: { hosts: db },
        postgres: { hosts: Object.fromEntries(Object.keys(db).map((n) => [n, null])) },
        redis: { hosts: redis },
        sentinel: { hosts: Object.fromEntries(Object.keys(redis).map((n) => [n, null])) },
        haproxy: { hosts: { lb1: { address: '10.0.0.20' } } },
      },
    },
  }
}
