/**
 * What the audit reads on one host, read-only, over the host's one connection: its listening sockets,
 * the files under /etc and hastack's state directory that hold one of the stack's secrets (the secrets
 * go to grep on standard input, never on a command line), its certificates, and whether its services
 * answer a client that presents no credentials (Redis and Sentinel PING, PostgreSQL as postgres without
 * a password, etcd without a user, the HAProxy stats page; over TLS where the stack uses it). Services
 * answering without TLS are probed by tls.ts.
 */
import type { Connection, Vars } from '../../lib/types.ts'
import { sh } from '../../lib/connection/quote.ts'
import { etcdClientUrl, etcdctlTlsFlags, tlsFiles } from '../../roles/tls.ts'
import type { Finding } from './findings.ts'
import { redisTlsArgs } from '../../roles/redis/cli.ts'
import { tlsOn } from '../../roles/stack.ts'

/** Where files holding secrets are looked for. */
const SECRET_DIRS = ['/etc', '/var/lib/hastack']

export async function listeningSockets(conn: Connection): Promise<string> {
  return (await conn.run('ss -Hltnup', { check: true })).stdout
}

/** `mode|owner|group|path` of every file holding one of the secrets, and of every private key in the TLS directory. */
export async function secretFileModes(conn: Connection, secrets: string[], tlsDir: string): Promise<string> {
  const dirs = SECRET_DIRS.map((d) => sh`${d}`).join(' ')
  const holders = secrets.length > 0 ? `grep -rlZF -f - ${dirs} 2>/dev/null; ` : ''
  const keys = sh`find ${tlsDir} -name '*.key' -type f -print0 2>/dev/null`
  const command = `{ ${holders}${keys}; } | xargs -0 -r stat -c '%a|%U|%G|%n' --`
  return (await conn.run(command, { stdin: secrets.join('\n') + '\n' })).stdout
}

/** Every certificate in the TLS directory, each after a `==> path` line (none without the directory). */
export async function certificateListing(conn: Connection, tlsDir: string): Promise<string> {
  const command =
    sh`find ${tlsDir} -name '*.crt' -type f 2>/dev/null` + ' | sort | while read -r f; do echo "==> $f"; cat "$f"; done'
  return (await conn.run(command)).stdout
}

/** A service's port of this host that answers without credentials, as a finding. */
function open(host: string, port: number, what: string): Finding {
  return { host, kind: 'no-auth', port, message: `${host} port ${port}: ${what} answers without authentication` }
}

/** The status of a GET (0: no answer); an https URL is checked against the CA file given second. */
const HTTP_STATUS =
  'import ssl,sys,urllib.request,urllib.error\n' +
  'ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None\n' +
  'try: print(urllib.request.urlopen(sys.argv[1], timeout=5, context=ctx).status)\n' +
  'except urllib.error.HTTPError as e: print(e.code)\n' +
  'except Exception: print(0)\n'

/** Probe the services this host runs (by its groups) as a client without credentials. */
export async function unauthenticatedServices(
  conn: Connection,
  host: string,
  groups: string[],
  v: Vars,
): Promise<Finding[]> {
  const address = String(v.address)
  const findings: Finding[] = []
  const redisPing = async (port: number, what: string) => {
    const tls = redisTlsArgs(v)
    const out = await conn.run(sh`timeout 10 redis-cli ${tls} --no-auth-warning -h ${address} -p ${port} PING 2>&1`)
    if (out.stdout.trim() === 'PONG') findings.push(open(host, port, what))
  }
  if (groups.includes('redis')) await redisPing(Number(v.redis_port), 'Redis')
  if (groups.includes('sentinel')) await redisPing(Number(v.sentinel_port), 'Sentinel')
  if (groups.includes(String(v.patroni_group))) {
    const port = Number(v.postgresql_port)
    const target = `host=${address} port=${port} user=postgres dbname=postgres connect_timeout=5`
    const out = await conn.run(sh`env -u PGPASSWORD psql -w -X -At ${target} -c ${'select 1'} 2>&1`, { user: 'nobody' })
    if (out.code === 0 && out.stdout.trim() === '1')
      findings.push(open(host, port, 'PostgreSQL (trust from the network)'))
  }
  if (groups.includes(String(v.etcd_group))) {
    const port = Number(v.etcd_client_port)
    // With TLS, through the handshake with the host's certificate (it names no etcd user), without a password.
    const out = await conn.run(
      sh`env -u ETCDCTL_USER ETCDCTL_API=3 timeout 10 etcdctl --endpoints=${etcdClientUrl(v, address)}` +
        sh` ${etcdctlTlsFlags(v)} --command-timeout=3s get / --prefix --keys-only --limit=1 2>&1`,
    )
    if (out.code === 0) findings.push(open(host, port, 'etcd'))
  }
  if (groups.includes('haproxy')) {
    const port = Number(v.haproxy_stats_port)
    const https = tlsOn(v, 'haproxy_stats')
    const url = `${https ? 'https' : 'http'}://${address}:${port}/stats`
    const out = await conn.run(sh`python3 -c ${HTTP_STATUS} ${url} ${https ? [tlsFiles(v).ca] : []}`)
    if (out.stdout.trim() === '200') findings.push(open(host, port, 'the HAProxy stats page'))
  }
  return findings
}
