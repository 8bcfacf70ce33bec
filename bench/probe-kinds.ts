/**
 * What a typed probe saves in a probe batch (issue 15, part of `npm run bench`, loopback sshd): the same
 * questions a site no-op's host asks (package states, TCP port waits), once as typed probes (one dpkg-query
 * for all, a connect each inside the evaluator) and once as the commands they stand for (`probeCommand`, a
 * `/bin/sh -c` and its children each), both through one privileged session, median of ROUNDS batches.
 */
import { createServer, type AddressInfo, type Server } from 'node:net'
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
  try {
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
    ] as const) {
      const typed = await medianMs(conn, probes)
      const commands = await medianMs(conn, asCommands(probes))
      lines.push(`| ${label} | ${typed.toFixed(0)} ms | ${commands.toFixed(0)} ms |`)
      console.error(`${label}: typed ${typed.toFixed(0)} ms, as commands ${commands.toFixed(0)} ms`)
    }
    return lines
  } finally {
    await conn.close()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
    await sshd.stop()
  }
}
