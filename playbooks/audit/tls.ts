/**
 * The audit's TLS probe: with a service's TLS switch on (`tlsOn`), a client that speaks plaintext to the
 * service's port must be turned away before it gets a reply. Read-only and without credentials: Redis
 * and Sentinel are sent a plain PING, PostgreSQL a connection with `sslmode=disable`, etcd and Patroni's
 * REST API a plain HTTP request. A service that answers is a finding ("answers without TLS"). The
 * judgements on each client's output are pure and exported for the unit tests.
 */
import type { Connection, Vars } from '../../lib/types.ts'
import { sh } from '../../lib/connection/quote.ts'
import { tlsOn } from '../../roles/stack.ts'
import type { Finding } from './findings.ts'

/** Whether redis-cli's output to a plain PING is Redis answering (PONG or an error reply), not a cut connection. */
export function redisAnswered(output: string): boolean {
  return /^(PONG|NOAUTH|ERR|WRONGPASS|DENIED|NOPERM)\b/.test(output.trim())
}

/**
 * Whether psql's outcome with `sslmode=disable` shows PostgreSQL accepted the plaintext connection: it
 * got as far as authentication (or through it). A `hostssl`-only server says "no encryption" instead.
 */
export function postgresAnswered(code: number, output: string): boolean {
  return code === 0 || /no password supplied|password authentication failed/.test(output)
}

/**
 * Whether an HTTP status from a plain `http://` request is the service answering. 000: no HTTP reply
 * (the TLS server cut the connection); 400: Go's TLS servers (etcd) answering "Client sent an HTTP
 * request to an HTTPS server", a refusal.
 */
export function httpAnswered(status: string): boolean {
  return /^\d{3}$/.test(status) && status !== '000' && status !== '400'
}

const finding = (host: string, port: number, what: string): Finding => ({
  host,
  kind: 'no-tls',
  port,
  message: `${host} port ${port}: ${what} answers without TLS`,
})

/** Probe, in plaintext, each service this host runs (by its groups) whose TLS switch is on. */
export async function plaintextServices(conn: Connection, host: string, groups: string[], v: Vars): Promise<Finding[]> {
  const address = String(v.address)
  const findings: Finding[] = []
  const httpStatus = async (url: string) =>
    (await conn.run(sh`curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${url}`)).stdout.trim()
  if (tlsOn(v, 'redis')) {
    const ports: [boolean, number, string][] = [
      [groups.includes('redis'), Number(v.redis_port), 'Redis'],
      [groups.includes('sentinel'), Number(v.sentinel_port), 'Sentinel'],
    ]
    for (const [runs, port, what] of ports) {
      if (!runs) continue
      const out = await conn.run(sh`timeout 10 redis-cli --no-auth-warning -h ${address} -p ${port} PING 2>&1`)
      if (redisAnswered(out.stdout)) findings.push(finding(host, port, what))
    }
  }
  if (tlsOn(v, 'postgresql') && groups.includes(String(v.patroni_group))) {
    const port = Number(v.postgresql_port)
    const target = `host=${address} port=${port} user=postgres dbname=postgres sslmode=disable connect_timeout=5`
    const out = await conn.run(sh`env -u PGPASSWORD psql -w -X -At ${target} -c ${'select 1'} 2>&1`, { user: 'nobody' })
    if (postgresAnswered(out.code, out.stdout)) findings.push(finding(host, port, 'PostgreSQL (sslmode=disable)'))
  }
  if (tlsOn(v, 'etcd') && groups.includes(String(v.etcd_group))) {
    const port = Number(v.etcd_client_port)
    if (httpAnswered(await httpStatus(`http://${address}:${port}/version`)))
      findings.push(finding(host, port, 'etcd (plain http)'))
  }
  if (tlsOn(v, 'patroni_api') && groups.includes(String(v.patroni_group))) {
    const port = Number(v.patroni_restapi_port)
    if (httpAnswered(await httpStatus(`http://${address}:${port}/health`)))
      findings.push(finding(host, port, "Patroni's REST API (plain http)"))
  }
  return findings
}
