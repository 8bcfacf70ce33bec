/**
 * What a typed probe saves in a probe batch (issue 15, part of `npm run bench`, loopback sshd): the same
 * questions a site no-op's host asks (package states, TCP port waits; group lookups, path tests, file digests,
 * lines in files, a file's bytes, a listing, entry matches, the host name and a sysctl, on files of this
 * machine), once as typed probes (one dpkg-query for all, a connect each inside the evaluator, the files read
 * by the evaluator) and once as the commands they stand for
 * (`probeCommand`, a `/bin/sh -c` and its children each), both through one privileged session, median of
 * ROUNDS batches. (The user lookups are left out: this machine's nsswitch.conf names `files systemd`, where
 * the evaluator runs `id -nG` as the command; the lab's hosts name `files` alone.)
 */
import { createServer, type AddressInfo, type Server } from 'node:net'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { SshConnection } from '../lib/connection/ssh.ts'
import { probeCommand } from '../lib/facts/probes.ts'
import type { CommandProbe, Probe } from '../lib/types.ts'
import { startSshd } from '../test/fixtures/sshd.ts'

const ROUNDS = 7

/** The package lists node1 asks in the site no-op (reports/site-noop-plan.json), 15 questions. */
const PACKAGE_LISTS = [
  ['nftables'],
  ['etcd-server', 'etcd-client'],
  ['postgresql-15', 'postgresql-client-15'],
  ['pgbackrest', 'python3'],
  ['patroni', 'python3-etcd'],
  ['redis-server', 'redis-tools'],
  ['redis-sentinel'],
  ['keepalived'],
  ['haproxy'],
  ['prometheus-node-exporter', 'dbus'],
  ['prometheus-postgres-exporter'],
  ['prometheus-redis-exporter'],
  ['prometheus-alertmanager'],
  ['prometheus'],
  ['systemd-journal-remote'],
]
/** node1 waits for 7 ports in the site no-op. */
const PORTS = 7

/**
 * node1's 6 group lookups, 3 path tests, 4 digests, 2 lines, policy-rc.d's bytes, 2 entry matches, a listing,
 * the host name and a sysctl (groups of this machine, files made here; the listing in the C collation).
 */
function fileQuestions(dir: string): CommandProbe[] {
  for (const name of ['ca.crt', 'host.crt', 'host.key']) writeFileSync(`${dir}/${name}`, `${name}\n`.repeat(40))
  writeFileSync(`${dir}/redis.conf`, '# redis\nbind 127.0.0.1\ninclude /etc/redis/hastack.conf\n')
  return [
    ...['root', 'adm', 'sys', 'daemon', 'bin', 'nogroup'].map((name) => ({ kind: 'group' as const, name })),
    { kind: 'test', test: 'exists', path: `${dir}/host.key` },
    { kind: 'test', test: 'directory', path: `${dir}/member` },
    { kind: 'test', test: 'exists', path: `${dir}/backup.info` },
    ...['ca.crt', 'host.crt', 'host.key'].map((name) => ({ kind: 'digest' as const, paths: [`${dir}/${name}`] })),
    { kind: 'line', line: 'include /etc/redis/hastack.conf', path: `${dir}/redis.conf` },
    { kind: 'line', line: '# hastack: sentinel bootstrap', path: `${dir}/redis.conf` },
    { kind: 'digest', paths: [`${dir}/host.crt`, `${dir}/host.key`] },
    { kind: 'content', path: `${dir}/policy-rc.d` },
    { kind: 'entry', dir, pattern: 'redis-*.rdb.sha256' },
    { kind: 'entry', dir, pattern: 'etcd-*.db.sha256' },
    { kind: 'listing', dir },
    { kind: 'hostname', name: hostname() },
    { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1' },
  ]
}

async function listen(): Promise<Server> {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

async function medianMs(conn: SshConnection, probes: readonly Probe[]): Promise<number> {
  const times: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const started = performance.now()
    await conn.runProbes(probes)
    times.push(performance.now() - started)
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!
}

/** The Markdown lines: each group of questions as typed probes and as commands, median ms per batch. */
export async function probeKindLines(): Promise<string[]> {
  const sshd = await startSshd()
  const servers = await Promise.all(Array.from({ length: PORTS }, listen))
  const conn = await SshConnection.connect(sshd.userSpec())
  const dir = mkdtempSync('/tmp/hastack-probe-kinds-')
  chmodSync(dir, 0o755)
  try {
    const files = fileQuestions(dir)
    const packages: CommandProbe[] = PACKAGE_LISTS.map((names) => ({ kind: 'packages', names }))
    const ports: CommandProbe[] = servers.map((s) => ({
      kind: 'port',
      address: '127.0.0.1',
      port: (s.address() as AddressInfo).port,
    }))
    const asCommands = (probes: readonly CommandProbe[]): Probe[] =>
      probes.map((p) => ({ kind: 'run', command: probeCommand(p) }))
    await conn.runProbes([{ kind: 'run', command: 'true' }]) // the session's first batch starts its helper
    const lines = ['| questions | as typed probes | as commands |', '|---|---|---|']
    for (const [label, probes] of [
      [`${packages.length} package-state questions`, packages],
      [`${ports.length} port waits (open ports)`, ports],
      ['both together', [...packages, ...ports]],
      [`${files.length} group, path, digest, line, file, listing, entry, host name and sysctl questions`, files],
    ] as const) {
      const typed = await medianMs(conn, probes)
      const commands = await medianMs(conn, asCommands(probes))
      lines.push(`| ${label} | ${typed.toFixed(0)} ms | ${commands.toFixed(0)} ms |`)
      console.error(`${label}: typed ${typed.toFixed(0)} ms, as commands ${commands.toFixed(0)} ms`)
    }
    return lines
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await conn.close()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
    await sshd.stop()
  }
}
