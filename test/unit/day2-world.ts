/**
 * A scripted stack for the day-2 tests: three colocated hosts (etcd, Patroni, Redis and Sentinel on
 * node1..node3, HAProxy on node1) whose scripted connections answer the day-2 readers' commands
 * (Patroni's REST API through curl, hastack-etcdctl, redis-cli for Redis and Sentinel, HAProxy's
 * `show stat`) from one in-memory cluster state, and change it the way the real services would
 * (a switchover, SENTINEL FAILOVER, systemctl restarts). Tests break the state on purpose.
 * `worldFleet(world, lines, shape)` can add app hosts, a second HAProxy host and the VIP (as
 * lab-small has them); the world then answers drain/ready, `ip addr` and keepalived's stop, the
 * writer (a fixed summary), reboots (a new boot id) and `apt-get -s upgrade` (`world.pending`); the
 * Redis entries' forced health is recorded (`world.healthForced`).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import type { RunOptions } from '../../lib/types.ts'
import { loadInventory } from '../../lib/inventory/index.ts'
import { allRoles } from '../../roles/index.ts'
import { ScriptedConnection, type Answer } from '../fixtures/scripted.ts'
import { fleetOf, type Fleet } from '../../playbooks/day2/fleet.ts'

export const HOSTS = ['node1', 'node2', 'node3'] as const
export const ADDRESS: Record<string, string> = { node1: '10.0.0.11', node2: '10.0.0.12', node3: '10.0.0.13' }
export const VIP = '10.0.0.200'

/**
 * Beyond the default (HAProxy on node1 alone): app hosts, more HAProxy hosts, the VIP on the first of them,
 * a pgBackRest repository host (the backup_repo group).
 */
export interface WorldShape {
  app?: string[]
  balancers?: string[]
  vip?: boolean
  backupRepo?: string
}

export interface PgMemberState {
  state: string
  lag: number
  /** False: the leader's pg_stat_replication does not list it as streaming. */
  streaming: boolean
  /** False: its Patroni is stopped (its REST API does not answer). */
  patroni: boolean
}

export interface WorldState {
  pgLeader: string
  pg: Record<string, PgMemberState>
  timeline: number
  etcdLeader: string
  etcdHealthy: Record<string, boolean>
  redisPrimary: string
  redisLinkUp: Record<string, boolean>
  priority: Record<string, number>
  /** Each Redis server's `repl-ping-replica-period`. */
  pingPeriod: Record<string, number>
  /** Every Redis command the servers ran, in order, as `host: WORDS` (passwords never reach a command). */
  redisRan: string[]
  /** Patroni members whose key is gone from etcd (deleted, or its TTL ran out): once stopped, /cluster omits them. */
  pgKeyDeleted: string[]
  /** What each Sentinel names as the primary (default: the primary). */
  sentinelNames: Record<string, string | undefined>
  /** What happens when systemctl restarts a unit on a host (default: nothing changes). */
  onRestart?: (host: string, unit: string, world: WorldState) => void
  /** App hosts' state at every HAProxy (UP, DRAIN) and open sessions; hosts of the shape's app group. */
  app: Record<string, { state: 'UP' | 'DRAIN'; sessions: number }>
  /** PostgreSQL members drained in HAProxy's read-write backend (at every HAProxy). */
  pgWriteDrained: string[]
  /** Those drained when Patroni was asked to switch over, per switchover. */
  drainedAtSwitchover: string[][]
  /** The host that holds the VIP (with the shape's vip). */
  vipHolder?: string
  /** Each host's boot count (a reboot adds one). */
  boots: Record<string, number>
  /** `apt-get -s upgrade` lines per host. */
  pending: Record<string, string[]>
  /** The haproxy group (set by worldFleet's shape). */
  balancers: string[]
  /** Every admin-socket line of `set server … health …` commands, as `host: backend/server health; …`. */
  healthForced: string[]
}

export function healthyState(): WorldState {
  return {
    pgLeader: 'node1',
    pg: {
      node1: { state: 'running', lag: 0, streaming: true, patroni: true },
      node2: { state: 'running', lag: 200, streaming: true, patroni: true },
      node3: { state: 'running', lag: 0, streaming: true, patroni: true },
    },
    timeline: 1,
    etcdLeader: 'node2',
    etcdHealthy: { node1: true, node2: true, node3: true },
    redisPrimary: 'node1',
    redisLinkUp: { node1: true, node2: true, node3: true },
    priority: { node1: 100, node2: 100, node3: 100 },
    pingPeriod: { node1: 10, node2: 10, node3: 10 },
    redisRan: [],
    pgKeyDeleted: [],
    sentinelNames: {},
    app: {},
    pgWriteDrained: [],
    drainedAtSwitchover: [],
    boots: { node1: 1, node2: 1, node3: 1 },
    pending: {},
    balancers: ['node1'],
    healthForced: [],
  }
}

const hostAt = (address: string) => Object.keys(ADDRESS).find((h) => ADDRESS[h] === address)!
const etcdId = (host: string) => String(1000000000000000000n + BigInt(HOSTS.indexOf(host as 'node1')))

function patroniAnswer(world: WorldState, host: string, stdin: string): Answer {
  const url = /^url = "([^"]*)"/m.exec(stdin)![1]!
  const method = /^request = "([^"]*)"/m.exec(stdin)![1]!
  const target = hostAt(new URL(url).hostname)
  if (!world.pg[target]!.patroni) return { code: 7, stdout: '\n000' }
  const path = new URL(url).pathname
  const reply = (body: unknown, status = 200) => ({ stdout: `${JSON.stringify(body)}\n${status}` })
  if (method === 'POST' && path === '/switchover') {
    const body = JSON.parse(/^data = "(.*)"$/m.exec(stdin)![1]!.replaceAll('\\"', '"'))
    world.drainedAtSwitchover.push([...world.pgWriteDrained])
    if (body.leader !== world.pgLeader) return reply('leader name does not match', 412)
    world.pgLeader = body.candidate
    world.timeline++
    return { stdout: `Successfully switched over to "${body.candidate}"\n200` }
  }
  if (path === '/cluster') {
    const listed = HOSTS.filter((name) => world.pg[name]!.patroni || !world.pgKeyDeleted.includes(name))
    const members = listed.map((name) => {
      const m = world.pg[name]!
      const role = name === world.pgLeader ? 'leader' : 'replica'
      const state = m.patroni ? m.state : 'stopped'
      return { name, role, state, host: ADDRESS[name], timeline: world.timeline, lag: role === 'leader' ? 0 : m.lag }
    })
    return reply({ members })
  }
  if (path === '/patroni') {
    if (target !== world.pgLeader) return reply({ state: 'running', role: 'replica' })
    const replication = HOSTS.filter((h) => h !== world.pgLeader && world.pg[h]!.patroni && world.pg[h]!.streaming)
    return reply({ role: 'master', replication: replication.map((h) => ({ application_name: h, state: 'streaming' })) })
  }
  return reply({}, 404)
}

function etcdAnswer(world: WorldState, host: string): Answer {
  const healthy = world.etcdHealthy[host]
  const status = healthy
    ? `[{"Status":{"header":{"member_id":${etcdId(host)}},"leader":${etcdId(world.etcdLeader)}}}]`
    : ''
  const members = HOSTS.map(
    (h) => `${etcdId(h)}, started, ${h}, http://${ADDRESS[h]}:2380, http://${ADDRESS[h]}:2379, false`,
  )
  return {
    stdout: [healthy ? 'healthy' : 'unhealthy', status, members.join('\n')].join('\n---hastack-etcd---\n') + '\n',
  }
}

function redisReply(world: WorldState, host: string, words: string[]): string[] {
  const [cmd = '', ...args] = words.map((w, i) => (i === 0 ? w.toUpperCase() : w))
  world.redisRan.push(`${host}: ${words.join(' ')}`)
  if (cmd === 'INFO') {
    if (host === world.redisPrimary) {
      const replicas = HOSTS.filter((h) => h !== host && world.redisLinkUp[h])
      return [
        '# Replication',
        'role:master',
        `connected_slaves:${replicas.length}`,
        ...replicas.map((h, i) => `slave${i}:ip=${ADDRESS[h]},port=6379,state=online,offset=500,lag=0`),
        'master_repl_offset:500',
      ]
    }
    const link = world.redisLinkUp[host] ? 'up' : 'down'
    return ['# Replication', 'role:slave', `master_host:${ADDRESS[world.redisPrimary]}`, 'master_port:6379'].concat([
      `master_link_status:${link}`,
      'master_sync_in_progress:0',
      'slave_repl_offset:500',
    ])
  }
  if (cmd === 'CLIENT') return args[0]?.toUpperCase() === 'KILL' ? ['2'] : ['OK']
  if (cmd === 'CONFIG' && args[0] === 'GET' && args[1] === 'repl-ping-replica-period')
    return [args[1], String(world.pingPeriod[host])]
  if (cmd === 'CONFIG' && args[0] === 'GET') return ['replica-priority', String(world.priority[host])]
  if (cmd === 'CONFIG' && args[0] === 'SET') {
    if (args[1] === 'repl-ping-replica-period') world.pingPeriod[host] = Number(args[2])
    else world.priority[host] = Number(args[2])
    return ['OK']
  }
  if (cmd === 'CONFIG' && args[0] === 'REWRITE') return ['OK']
  if (cmd === 'REPLICAOF') return args[0] === ADDRESS[world.redisPrimary] ? ['OK'] : ['ERR not the primary']
  return [`ERR unknown command ${cmd}`]
}

function sentinelReply(world: WorldState, host: string, words: string[]): string[] {
  const sub = (words[1] ?? '').toUpperCase()
  const named = world.sentinelNames[host] ?? world.redisPrimary
  if (sub === 'GET-MASTER-ADDR-BY-NAME') return [ADDRESS[named]!, '6379']
  if (sub === 'MASTER') return ['name', 'hastack-redis', 'ip', ADDRESS[named]!, 'num-other-sentinels', '2']
  if (sub === 'REPLICAS')
    return HOSTS.filter((h) => h !== world.redisPrimary).flatMap((h) => {
      return ['name', `${ADDRESS[h]}:6379`, 'ip', ADDRESS[h]!, 'slave-priority', String(world.priority[h])]
    })
  if (sub === 'FAILOVER') {
    const candidates = HOSTS.filter((h) => h !== world.redisPrimary && world.priority[h]! > 0 && world.redisLinkUp[h])
    world.redisPrimary = [...candidates].sort((a, b) => world.priority[a]! - world.priority[b]!)[0]!
    return ['OK']
  }
  return [`ERR unknown subcommand ${sub}`]
}

/** Answer a redis-cli script (one redis-cli per command, replies separated by the marker line). */
function redisCliAnswer(world: WorldState, stdin: string): Answer {
  const calls = [...stdin.matchAll(/-h (\S+) -p (\d+) <<'HASTACK_EOF' 2>&1\n(.*)\nHASTACK_EOF/g)]
  const replies = calls.map(([, address, port, line]) => {
    const words = [...line!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'))
    const host = hostAt(address!.replace(/'/g, ''))
    const reply = port === '26379' ? sentinelReply(world, host, words) : redisReply(world, host, words)
    return reply.join('\n') + '\n'
  })
  return { stdout: replies.join('---hastack-next---\n') }
}

function showStat(world: WorldState): Answer {
  const lines = ['# pxname,svname,scur,status']
  for (const h of HOSTS) lines.push(`postgres_rw,${h},0,${h === world.pgLeader ? 'UP' : 'DOWN'}`)
  for (const h of HOSTS) {
    const replica = h !== world.pgLeader && world.pg[h]!.patroni && world.pg[h]!.lag < 1048576
    lines.push(`postgres_ro,${h},0,${replica ? 'UP' : 'DOWN'}`)
  }
  for (const h of HOSTS) {
    for (const s of HOSTS) {
      const named = (world.sentinelNames[s] ?? world.redisPrimary) === h
      lines.push(`redis_${h},${h}_via_${s},0,${named && h === world.redisPrimary ? 'UP' : 'DOWN'}`)
    }
  }
  for (const backend of ['app_vote', 'app_result'])
    for (const [h, a] of Object.entries(world.app)) {
      lines.push(`${backend},${h},${a.sessions},${a.state}`)
      // A drained server's sessions end after one more reading.
      if (a.state === 'DRAIN' && backend === 'app_result') a.sessions = 0
    }
  return { stdout: lines.join('\n') + '\n' }
}

/** What the scripted writer prints when stopped: six of twelve writes acknowledged, one pause of 1.2 s. */
export const WRITER_SUMMARY = { attempts: 12, acks: [100, 200, 300, 1500, 1600, 1700], failures: 2, endedMs: 1800 }

/** One scripted connection per host, all answering from `world`. */
export function worldConnections(world: WorldState): Map<string, ScriptedConnection> {
  const conns = new Map<string, ScriptedConnection>()
  for (const host of HOSTS) {
    const conn = new ScriptedConnection(host, { address: ADDRESS[host] })
    const stdinOf = (o: RunOptions) => String(o.stdin ?? '')
    conn.on(/^curl -K -$/, (_c, o) => patroniAnswer(world, host, stdinOf(o)))
    conn.on(/hastack-etcdctl/, () => etcdAnswer(world, host))
    conn.on(/^'?sh'? '?-s'?$/, (_c, o) => redisCliAnswer(world, stdinOf(o)))
    conn.on(/^systemctl disable --now patroni$/, () => {
      world.pg[host]!.patroni = false
      return { code: 0 }
    })
    conn.on(/^python3 -c .*show stat/s, () => showStat(world))
    conn.on(/^python3 -c .*show info/s, () => ({ stdout: 'Name: HAProxy\nPid: 1234\n' }))
    conn.on(/^python3 -c .*'set server app_\w+\/\w+ state \w+'$/s, (command) => {
      const [, app, state] = /set server app_\w+\/(\w+) state (\w+)/.exec(command)!
      world.app[app!]!.state = state === 'drain' ? 'DRAIN' : 'UP'
      return { stdout: '\n' }
    })
    conn.on(/^python3 -c .*'set server postgres_rw\/\w+ state \w+'$/s, (command) => {
      const [, member, state] = /set server postgres_rw\/(\w+) state (\w+)/.exec(command)!
      world.pgWriteDrained = world.pgWriteDrained.filter((m) => m !== member)
      if (state === 'drain') world.pgWriteDrained.push(member!)
      return { stdout: '\n' }
    })
    conn.on(/^python3 -c .*'set server redis_\w+\/\w+ health /s, (command) => {
      const forced = [...command.matchAll(/set server (\w+\/\w+) health (\w+)/g)].map(([, e, h]) => `${e} ${h}`)
      world.healthForced.push(`${host}: ${forced.join('; ')}`)
      return { stdout: '\n' }
    })
    conn.on(/^python3 -c .*max_seconds/s, () => ({ stdout: JSON.stringify(WRITER_SUMMARY) + '\n' }))
    conn.on(/^'?ip'? '?-o'? '?addr'? '?show'?$/, () => ({
      stdout: `2: eth0    inet ${ADDRESS[host]}/24 scope global eth0\n${
        world.vipHolder === host ? `2: eth0    inet ${VIP}/24 scope global secondary eth0\n` : ''
      }`,
    }))
    conn.on(/^'?systemctl'? '?stop'? '?keepalived'?$/, () => {
      if (world.vipHolder === host) world.vipHolder = HOSTS.find((h) => h !== host && world.balancers.includes(h))
      return { code: 0 }
    })
    conn.on(/^'?systemctl'? '?reboot'?$/, () => {
      world.boots[host]!++
      return { code: 255, stderr: 'Connection closed by remote host' }
    })
    conn.on(/boot_id/, () => ({ stdout: `boot-${host}-${world.boots[host]}\n` }))
    conn.on(/is-system-running/, () => ({ stdout: 'running\n' }))
    conn.on(/apt-get.* -s /, () => ({ stdout: (world.pending[host] ?? []).join('\n') + '\n' }))
    conn.on(/apt-get.* --only-upgrade /, () => {
      world.pending[host] = []
      return { code: 0 }
    })
    conn.on(/^'?systemctl'? '?(restart|reload)'? /, (command) => {
      for (const unit of command
        .split(' ')
        .slice(2)
        .map((u) => u.replace(/'/g, '')))
        world.onRestart?.(host, unit, world)
      return { code: 0 }
    })
    conns.set(host, conn)
  }
  return conns
}

/** The world's inventory (lab-small's shape) loaded as a playbook loads it, and a fleet over the scripted hosts. */
export async function worldFleet(world: WorldState, lines: string[] = [], shape: WorldShape = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hastack-day2-'))
  const members = Object.fromEntries(HOSTS.map((h) => [h, null]))
  const group = (hosts: string[]) => Object.fromEntries(hosts.map((h) => [h, null]))
  world.balancers = shape.balancers ?? ['node1']
  for (const h of shape.app ?? []) world.app[h] ??= { state: 'UP', sessions: 3 }
  if (shape.vip) world.vipHolder ??= world.balancers[0]
  const vip = shape.vip ? { vip_address: VIP } : {}
  const inventory = {
    all: {
      // The scripted world answers plaintext probes: TLS and the firewall (on by default) are switched off.
      vars: { ssh_user: 'root', tls_enabled: false, firewall_enabled: false },
      hosts: Object.fromEntries(HOSTS.map((h) => [h, { address: ADDRESS[h] }])),
      children: {
        etcd: { hosts: members },
        postgres: { hosts: members },
        redis: { hosts: members },
        sentinel: { hosts: members },
        haproxy: { hosts: group(world.balancers), vars: { redis_haproxy_port: 6380, ...vip } },
        ...(shape.app ? { app: { hosts: group(shape.app) } } : {}),
        ...(shape.backupRepo ? { backup_repo: { hosts: group([shape.backupRepo]) } } : {}),
      },
    },
  }
  const file = join(dir, 'hosts.yml')
  writeFileSync(file, stringify(inventory))
  const loaded = await loadInventory(file, { roles: allRoles, writeSecrets: false })
  const conns = worldConnections(world)
  const fleet: Fleet = fleetOf(
    loaded,
    async (host) => conns.get(host)!,
    (line) => lines.push(line),
  )
  return { fleet, conns, lines, file }
}
