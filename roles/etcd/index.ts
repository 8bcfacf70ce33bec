/**
 * etcd: a static cluster of the `etcd` group's hosts, v3 API only, peer and
 * client URLs on the host's cluster address (clients also on loopback), the
 * Debian package's /etc/default/etcd as the configuration. The members of a new
 * cluster start in parallel with `initial-cluster-state new`; a member that has
 * data, or whose peers already answer, is written `existing`, so a re-run never
 * bootstraps a second cluster. A host added to the group of a running cluster is
 * registered with `etcdctl member add` before its first start (membership.ts); a
 * bootstrapped member keeps the initial-cluster line it started with (etcd ignores it
 * once it has data), so a grown inventory restarts no running member. Health is checked with etcdctl after start. A
 * changed configuration restarts the members one at a time, health-gated.
 * Authentication (on by default): a `root` user and a `patroni` user limited to
 * Patroni's key prefix, then `auth enable`, once; root's credentials live in a
 * root-only env file read by the `hastack-etcdctl` wrapper, never on a command line.
 */
import type { HostRun, Inventory, Role, RunResult, Task, Vars } from '../../lib/types.ts'
import { command, directory, service, template, user, verifyAfterChange, waitFor } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { tlsGroup } from '../certificates/index.ts'
import { ETCD_CLIENT_VARS, TLS_VARS, settingsOf, sharedVars, tlsOn, type StackVars } from '../stack.ts'
import { etcdClientUrl, etcdPeerUrl, etcdctlTlsFlags, keepAsBuilt, tlsFiles } from '../tls.ts'
import { etcdctlEnvView, etcdDefaultView } from './render.ts'
import { memberAddTask } from './membership.ts'
import { isActiveState } from '../../lib/facts/units.ts'

const shared = sharedVars(...ETCD_CLIENT_VARS, 'patroni_namespace', 'etcd_root_password', ...TLS_VARS)

export interface EtcdVars extends Vars, Pick<StackVars, keyof typeof shared.defaults> {
  etcd_peer_port: number
  etcd_data_dir: string
  etcd_cluster_token: string
  etcd_heartbeat_interval: number
  etcd_election_timeout: number
  etcd_quota_backend_bytes: number
  etcd_pre_vote: boolean
}

/** Root's etcdctl settings on every member (0600) and the wrapper that reads them. */
export const ETCDCTL_ENV = '/etc/etcd/etcdctl.env'
export const ETCDCTL = '/usr/local/sbin/hastack-etcdctl'

/** Every member of the cluster answers `endpoint health` (through the wrapper: endpoints and credentials). */
function waitClusterHealthy(name: string, intervalMs: number) {
  return waitFor({ until: sh`${ETCDCTL} --command-timeout=3s endpoint health`, timeoutMs: 120_000, intervalMs, name })
}

/**
 * A health gate that, when nothing changed in the run, reads each member's `/health` (etcd's own health
 * endpoint: a leader, no alarm, a committed read) in the batch instead of starting etcdctl, which
 * authenticates on every member. With TLS on the client port the strict gate always runs.
 */
function healthGate(h: HostRun, strict: Task, clientUrls: string[]): Task {
  // With TLS, root shows the host's own certificate (etcd's client-cert-auth asks every client for one).
  const f = tlsFiles(h.vars)
  const tls = tlsOn(h.vars, 'etcd') ? { caFile: f.ca, certFile: f.cert, keyFile: f.key } : {}
  return verifyAfterChange(strict, {
    command: { kind: 'health', urls: clientUrls, ...tls },
    judge: (r) =>
      r.code === 0 ? `${clientUrls.length === 1 ? 'the member answers' : 'every member answers'} /health` : undefined,
  })
}

/** The etcd members of the inventory with their cluster addresses, in inventory order. */
export function etcdMembers(inventory: Inventory, group = 'etcd'): { name: string; address: string }[] {
  if (!inventory.groups.has(group)) return []
  return inventory
    .groupHosts(group)
    .map((name) => ({ name, address: String(inventory.hosts.get(name)!.vars.address ?? '') }))
}

/** The client endpoints (`ADDR:PORT`) of every member, for etcdctl and Patroni. */
export function etcdEndpoints(h: Pick<HostRun, 'vars' | 'inventory'>): string[] {
  const v = h.vars as StackVars
  return etcdMembers(h.inventory, v.etcd_group).map((m) => `${m.address}:${v.etcd_client_port}`)
}

/** Every member's client URL (`http(s)://ADDR:PORT`), as this host's clients reach them. */
export function etcdClientUrls(h: Pick<HostRun, 'vars' | 'inventory'>): string[] {
  return etcdMembers(h.inventory, String(h.vars.etcd_group)).map((m) => etcdClientUrl(h.vars, m.address))
}

/** The scheme of a bootstrapped member's peer URL in its configuration (`https` with TLS), if it has one. */
function configuredPeerScheme(r: RunResult): string | undefined {
  return r.code === 0 ? r.stdout.trim() || undefined : undefined
}

/** The read of the scheme of the member's configured peer URLs (configuredPeerScheme parses its answer). */
const PEER_SCHEME_READ = `sed -n 's/^ETCD_LISTEN_PEER_URLS="\\(https\\{0,1\\}\\):.*$/\\1/p' /etc/default/etcd`

/**
 * Why a running cluster cannot be switched to (or from) TLS by a re-run: the members' registered peer URLs
 * would have to change (`etcdctl member update`) while they run, one at a time, with peers on both schemes
 * in between; a mistake there splits the cluster. Undefined when the member's scheme is the wanted one.
 */
export function tlsSwitchProblem(host: string, configured: string | undefined, wanted: string): string | undefined {
  if (configured === undefined || configured === wanted) return undefined
  return (
    `etcd member ${host} runs with ${configured} peer URLs and etcd_tls asks for ${wanted}: switching a running ` +
    'etcd cluster between plaintext and TLS is not automated (its peer URLs would change under a running ' +
    `cluster). ${keepAsBuilt('etcd_tls', configured === 'https')}, or rebuild etcd (docs/postgres.md, ` +
    '"Switching to TLS")'
  )
}

export const etcdRole: Role<EtcdVars> = {
  name: 'etcd',
  description: 'A static etcd v3 cluster on the etcd group, on the cluster network.',
  defaults: {
    ...shared.defaults,
    etcd_peer_port: 2380,
    etcd_data_dir: '/var/lib/etcd/hastack',
    etcd_cluster_token: 'hastack-etcd',
    etcd_heartbeat_interval: 100,
    etcd_election_timeout: 1000,
    etcd_quota_backend_bytes: 2147483648,
    etcd_pre_vote: true,
  },
  schema: {
    ...shared.schema,
    etcd_peer_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Peer port (cluster address only).' },
    etcd_data_dir: { type: 'string', format: 'absolute-path', description: 'Data directory of the member.' },
    etcd_cluster_token: {
      type: 'string',
      format: 'word',
      description: 'Initial cluster token: distinguishes clusters at bootstrap.',
    },
    etcd_heartbeat_interval: { type: 'integer', minimum: 10, description: 'Raft heartbeat interval, ms.' },
    etcd_election_timeout: {
      type: 'integer',
      minimum: 100,
      description: 'Raft election timeout, ms (≥ 5 × heartbeat).',
    },
    etcd_quota_backend_bytes: { type: 'integer', minimum: 16777216, description: 'Backend size quota, bytes.' },
    etcd_pre_vote: {
      type: 'boolean',
      description:
        'Raft pre-vote: a member cut off from the others does not raise its term, so it rejoins without forcing an election (off by default in etcd 3.4).',
    },
  },
  validate(inventory) {
    const errors: string[] = []
    const settings = [...inventory.hosts.values()].map((host) => ({ host, v: settingsOf(host, etcdRole.defaults) }))
    const groups = new Set(settings.map(({ v }) => v.etcd_group))
    for (const group of groups) {
      const members = etcdMembers(inventory, group)
      if (members.length === 0) continue
      // Four members (a cluster of three growing to five, or one member being replaced) tolerate one
      // failure like three; two tolerate none, fewer than one alone.
      if (members.length === 2)
        errors.push(
          `group ${group} has ${members.length} etcd members: use an odd count (3 or 5) so a majority survives a split`,
        )
      for (const m of members)
        if (!/^\d+\.\d+\.\d+\.\d+$/.test(m.address))
          errors.push(
            `etcd member ${m.address ? `${m.name} has address ${m.address}` : `${m.name} has no address`}: an IPv4 address is needed to bind the cluster URLs`,
          )
    }
    for (const { host, v } of settings) {
      const hb = v.etcd_heartbeat_interval
      const et = v.etcd_election_timeout
      if (et < 5 * hb)
        errors.push(
          `host ${host.name}: etcd_election_timeout (${et}) must be at least 5 × etcd_heartbeat_interval (${hb})`,
        )
    }
    return [...new Set(errors)]
  },
  async tasks(h) {
    const v = h.vars
    const dataDir = v.etcd_data_dir
    const endpoints = etcdClientUrls(h).join(',')
    const tlsFlags = etcdctlTlsFlags(v)
    // Installed first (not started): the probe below needs etcdctl on a host added to a running cluster.
    // With the packages' states: what the member has (data, a running service, its initial-cluster line).
    const [data, active, initialCluster, peerScheme] = await installWithoutStarting(
      h,
      ['etcd-server', 'etcd-client'],
      'etcd',
      [
        { kind: 'test', test: 'directory', path: `${dataDir}/member` },
        { kind: 'unit', name: 'etcd' },
        INITIAL_CLUSTER_READ,
        PEER_SCHEME_READ,
      ],
    )
    // Bootstrap state: `new` only when this member has no data and no peer answers.
    const hasData = data!.code === 0
    if (hasData) {
      const problem = tlsSwitchProblem(h.name, configuredPeerScheme(peerScheme!), tlsOn(v, 'etcd') ? 'https' : 'http')
      if (problem) throw new Error(problem)
    }
    // Answered at all (auth refusing an anonymous client or a certificate's user counts): the peers run.
    const peersUp = hasData
      ? true
      : (
          await h.query(
            sh`ETCDCTL_API=3 etcdctl --dial-timeout=1s --command-timeout=2s --endpoints=${endpoints} ${tlsFlags}` +
              sh` endpoint health 2>&1 | grep -Eq ${ANSWERED}`,
          )
        ).code === 0
    const state = hasData || peersUp ? 'existing' : 'new'
    if (state === 'existing' && !hasData)
      h.log(
        'etcd peers already run a cluster: initial-cluster-state existing, registered with `etcdctl member add` before its first start',
      )

    const running = isActiveState(active!.stdout)
    const kept = hasData ? bootstrappedInitialCluster(initialCluster!) : undefined
    const config = (initialState: 'new' | 'existing', name: string, notify?: string) =>
      template({
        src: 'etcd/etcd.default.ejs',
        dest: '/etc/default/etcd',
        mode: '0644',
        vars: { etcd: etcdDefaultView(h, initialState, kept) },
        notify,
        name,
      })
    // A running member restarts on a change; a member not started yet simply starts with it below.
    await h.do(config(state, 'Ensure the etcd configuration is current', running ? 'Restart etcd' : undefined))
    // The etcd user reads its copy of the host key through the group; a running member restarts to join it.
    if (tlsOn(v, 'etcd'))
      await h.do(
        user({
          user: 'etcd',
          groups: [tlsGroup('etcd')],
          notify: running ? 'Restart etcd' : undefined,
          name: 'Ensure etcd may read its TLS key',
        }),
      )
    const ownUrl = etcdClientUrl(v)
    await h.doAll([
      directory({ path: '/etc/etcd', owner: 'root', group: 'root', mode: '0755', name: 'Ensure /etc/etcd exists' }),
      template({
        src: 'etcd/etcdctl.env.ejs',
        dest: ETCDCTL_ENV,
        owner: 'root',
        group: 'root',
        mode: '0600',
        vars: { etcdctl: etcdctlEnvView(h) },
        name: "Ensure root's etcdctl settings are current",
      }),
      template({
        src: 'etcd/hastack-etcdctl.ejs',
        dest: ETCDCTL,
        owner: 'root',
        group: 'root',
        mode: '0755',
        name: 'Ensure the hastack-etcdctl wrapper is current',
      }),
      directory({
        path: dataDir,
        owner: 'etcd',
        group: 'etcd',
        mode: '0700',
        name: 'Ensure the etcd data directory exists',
      }),
    ])
    // A member joining a running cluster is registered first: etcd refuses a stranger's first start.
    if (state === 'existing' && !hasData) {
      const others = etcdMembers(h.inventory, v.etcd_group).filter((m) => m.name !== h.name)
      await h.do(
        memberAddTask(
          h,
          etcdPeerUrl(v),
          others.map((m) => etcdClientUrl(v, m.address)),
          others.map((m) => etcdPeerUrl(v, m.address)),
        ),
      )
    }
    // Every member starts now, in parallel with the others: a new cluster forms once a majority runs.
    await h.doAll(
      [
        service({
          service: 'etcd',
          enabled: true,
          state: 'started',
          noBlock: true,
          name: 'Ensure etcd is enabled and started',
        }),
      ],
      {
        afterHandlers: [
          healthGate(
            h,
            waitFor({
              until: sh`${ETCDCTL} --command-timeout=3s --endpoints=${ownUrl} endpoint health`,
              timeoutMs: 120_000,
              intervalMs: 1000,
              name: 'Wait for this etcd member to be healthy',
            }),
            [ownUrl],
          ),
          healthGate(h, waitClusterHealthy('Wait for every etcd member to be healthy', 1000), etcdClientUrls(h)),
        ],
      },
    )
    if (v.etcd_auth) await h.once('etcd:auth', () => h.do(enableAuth(h)))
    // Bootstrapped: from now on the member joins the existing cluster (etcd ignores the flag once it has data).
    if (state === 'new') await h.do(config('existing', 'Record that the etcd cluster is bootstrapped'))
  },
  handlers: {
    // One member at a time, each healthy again (with every other member) before the next
    // restarts: the cluster keeps its quorum, and a member that does not come back stops the roll.
    'Restart etcd': (h) =>
      h.oneAtATime('etcd:restart', async () => {
        await h.doAll([
          service({ service: 'etcd', state: 'restarted', name: 'Restart etcd' }),
          waitClusterHealthy('Wait for every etcd member to be healthy before the next one restarts', 500),
        ])
      }),
  },
}

/** A peer list as etcd's initial-cluster takes it: `name=http(s)://ADDRESS:PORT`, comma-separated. */
const INITIAL_CLUSTER =
  /^[A-Za-z0-9_.-]+=https?:\/\/\d+\.\d+\.\d+\.\d+:\d+(,[A-Za-z0-9_.-]+=https?:\/\/\d+\.\d+\.\d+\.\d+:\d+)*$/

/**
 * etcdctl's answers of a member that runs, as an unauthenticated client or a certificate's user
 * (etcd takes a client certificate's CN as the user when no password is given) sees them.
 */
const ANSWERED = 'is healthy|user name is empty|user name not found|permission denied'

/**
 * The initial-cluster line a bootstrapped member's configuration already has, when it is a valid peer
 * list: etcd reads it only at a member's first start, so it is kept as it is, and a grown or shrunk
 * inventory changes no running member's file (which would restart it for nothing).
 */
function bootstrappedInitialCluster(r: RunResult): string | undefined {
  const line = r.code === 0 ? r.stdout.trim() : ''
  return INITIAL_CLUSTER.test(line) ? line : undefined
}

/** The read of the initial-cluster line in /etc/default/etcd (bootstrappedInitialCluster parses its answer). */
const INITIAL_CLUSTER_READ = `sed -n 's/^ETCD_INITIAL_CLUSTER="\\(.*\\)"$/\\1/p' /etc/default/etcd`

/**
 * Users, roles and `auth enable`, once for the cluster (run through `h.once`). Skipped when etcd already
 * refuses an anonymous request. Passwords go to etcdctl on stdin, one per line.
 * Every step checks first, so a run cut short half-way is completed by the next.
 */
function enableAuth(h: HostRun) {
  const v = h.vars as EtcdVars
  const prefix = v.patroni_namespace
  const user = v.etcd_patroni_user
  const script = [
    'set -e',
    'read -r ROOT_PW',
    'read -r CLIENT_PW',
    `E=${ETCDCTL}`,
    sh`$E role get root >/dev/null 2>&1 || $E role add root`,
    sh`$E user get root >/dev/null 2>&1 || printf '%s\\n' "$ROOT_PW" | $E user add root --interactive=false`,
    sh`$E user grant-role root root >/dev/null`,
    sh`$E role get ${user} >/dev/null 2>&1 || $E role add ${user}`,
    sh`$E role grant-permission --prefix=true ${user} readwrite ${prefix} >/dev/null`,
    sh`$E user get ${user} >/dev/null 2>&1 || printf '%s\\n' "$CLIENT_PW" | $E user add ${user} --interactive=false`,
    sh`$E user grant-role ${user} ${user} >/dev/null`,
    '$E auth enable',
  ].join('\n')
  return command({
    cmd: script,
    stdin: `${v.etcd_root_password}\n${v.etcd_patroni_password}\n`,
    // Requests without a password are refused once auth is on: "user name is empty", or with a client
    // certificate (TLS) "user name not found" for its CN, a host name that is no etcd user.
    unless:
      sh`ETCDCTL_API=3 etcdctl --endpoints=${etcdClientUrl(v, '127.0.0.1')} ${etcdctlTlsFlags(v)} user list 2>&1` +
      sh` | grep -Eq ${'user name is empty|user name not found'}`,
    name: 'Ensure etcd requires authentication (root and a Patroni user on its prefix)',
  })
}
