/**
 * The lab: VM-like Debian 12 hosts on this one machine, one per inventory host. Each
 * host is a systemd-nspawn container booting systemd as PID 1, with its own overlay
 * root on the shared base, its own network namespace on a bridge of its lab
 * instance, its own freezer and memory cgroups, and an SSH login `hastack` with
 * passwordless sudo. Faults (power cut, clean stop, freeze, partition, slow link)
 * are methods of `Lab`, for the CLI (cli.ts) and for tests.
 *
 * Every address the lab talks to is one of its own hosts or bridge gateways; every
 * wait is bounded; every process it ends is one it started (recorded pid or a
 * member of a cgroup it created).
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync,
  rmdirSync, rmSync, writeFileSync,
} from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { connect } from 'node:net'
import { $ } from 'zx'
import { LAB_ROOT, basePath, ensureBase, removeOldBases } from './base.ts'
import { ACNG_LINK, ACNG_PORT, ownProcess, syncAcng, tcpOpen } from './acng.ts'
import { loadTopology, type LabTopology } from './topology.ts'

export { tcpOpen } from './acng.ts'

export type Log = (message: string) => void

export interface LabHost {
  name: string
  index: number
  groups: string[]
  address: string
  /** Network namespace name (`hs-<lab>-<host>`). */
  netns: string
  /** The bridge-side end of the host's veth pair. */
  veth: string
  /** systemd-nspawn machine name, unique across lab instances. */
  machine: string
}

/** What `up` records in `/var/lib/hastack-lab/<name>/instance.json`. */
export interface LabInstance {
  name: string
  inventory: string
  bridge: string
  subnet: string
  gateway: string
  base: string
  key: string
  /** Absolute cgroup directories of the instance, by controller. */
  cgroups: Record<string, string>
  hosts: LabHost[]
  /** host_vars files and directories the lab created (removed by `down`). */
  createdFiles: string[]
  createdDirs: string[]
  partitions: Record<string, string[] | 'all'>
  shaping: Record<string, string>
}

export type HostState = 'running' | 'frozen' | 'stopped' | 'absent'

export interface HostStatus {
  host: string
  state: HostState
  address: string
  /** PID of the host's systemd (PID 1 inside), as the machine sees it. */
  pid?: number
  nspawnPid?: number
  memoryMiB?: number
  faults: string[]
}

export interface LabOptions {
  /** Path of the inventory file. */
  inventory: string
  /** Lab instance name; default: the inventory file's name without extension. */
  name?: string
  log?: Log
}

export interface SshResult {
  code: number
  stdout: string
  stderr: string
}

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,30}$/
/** Names taken by the lab's shared directories and links. */
const RESERVED = /^(cache|acng|hostkeys|base-.*)$/
/**
 * Hierarchies each host gets its own cgroup in; `freezer` is required, the others are
 * best effort. `systemd` (name=systemd) and `unified` (cgroup2) matter most: nspawn
 * and the host's systemd build their trees there, and hosts sharing one cgroup race
 * each other ("Failed to attach to cgroup /system.slice/…").
 */
const CONTROLLERS = ['freezer', 'memory', 'pids', 'systemd', 'unified']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const q = $({ quiet: true, nothrow: true, timeout: 60_000 })

function short(name: string): string {
  if (name.length <= 8) return name
  return name.slice(0, 4) + createHash('sha256').update(name).digest('hex').slice(0, 4)
}

function hashByte(name: string, salt: number): number {
  return createHash('sha256').update(`${name}/${salt}`).digest()[0]
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0)
}

function overlaps(a: string, b: string): boolean {
  const [an, al] = a.split('/')
  const [bn, bl] = b.split('/')
  const len = Math.min(Number(al ?? 32), Number(bl ?? 32))
  if (len === 0) return false // the default route overlaps everything; not a collision
  const mask = len === 32 ? 0xffffffff : ~(0xffffffff >>> len) >>> 0
  return ((ipToInt(an) & mask) >>> 0) === ((ipToInt(bn) & mask) >>> 0)
}

function elapsed(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)}s`
}

function ownCgroup(controller: string): string {
  const key = controller === 'systemd' ? 'name=systemd' : controller === 'unified' ? '' : controller
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [id, ctl, path] = line.split(':')
    if (ctl === undefined) continue
    if (key === '' ? id === '0' && ctl === '' : ctl.split(',').includes(key)) return path
  }
  return '/'
}

function readPids(cgroupDir: string): number[] {
  const pids: number[] = []
  const walk = (d: string, depth: number) => {
    if (depth > 30) return
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.push(Number(p))
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name), depth + 1)
    } catch {}
  }
  walk(cgroupDir, 0)
  return pids
}

function rmCgroupTree(dir: string, depth = 0): void {
  if (depth > 30 || !existsSync(dir)) return
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroupTree(join(dir, e.name), depth + 1)
    rmdirSync(dir)
  } catch {}
}

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    )
  } catch {
    return []
  }
}

/** Whether pid exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

/** One lab instance: the hosts of one inventory file, on their own bridge and subnet. */
export class Lab {
  readonly name: string
  readonly topology: LabTopology
  readonly stateDir: string
  readonly sid: string
  readonly bridge: string
  log: Log

  constructor(opts: LabOptions) {
    this.topology = loadTopology(opts.inventory)
    this.name = opts.name ?? this.topology.defaultName
    if (!NAME_RE.test(this.name) || RESERVED.test(this.name)) throw new Error(`lab name "${this.name}" must match ${NAME_RE} and not be cache, acng, hostkeys or base-*`)
    this.stateDir = join(LAB_ROOT, this.name)
    this.sid = short(this.name)
    this.bridge = `hs-${this.sid}`
    this.log = opts.log ?? (() => {})
  }

  /** The recorded instance, when `up` ran. */
  get instance(): LabInstance | undefined {
    return readJson<LabInstance>(join(this.stateDir, 'instance.json'))
  }

  private save(inst: LabInstance): void {
    writeFileSync(join(this.stateDir, 'instance.json'), JSON.stringify(inst, null, 2))
  }

  private need(): LabInstance {
    const inst = this.instance
    if (!inst) throw new Error(`lab "${this.name}" is not up (no ${join(this.stateDir, 'instance.json')})`)
    return inst
  }

  host(name: string): LabHost {
    const h = this.need().hosts.find((x) => x.name === name)
    if (!h) throw new Error(`lab "${this.name}" has no host "${name}" (hosts: ${this.need().hosts.map((x) => x.name).join(', ')})`)
    return h
  }

  private hostDir(host: string): string {
    return join(this.stateDir, 'hosts', host)
  }

  private keyPath(): string {
    const k = this.topology.vars.ssh_key
    return typeof k === 'string' ? resolve(this.topology.dir, k) : join(this.stateDir, 'ssh', 'id_ed25519')
  }

  private cgroupDirs(inst: Pick<LabInstance, 'cgroups'>, host: string): Record<string, string> {
    return Object.fromEntries(Object.entries(inst.cgroups).map(([c, d]) => [c, join(d, host)]))
  }

  // ───────────────────────────── up / down ─────────────────────────────

  /** Pick this instance's /24: deterministic per name, clear of every route and other lab. */
  private async chooseSubnet(): Promise<string> {
    const routes = JSON.parse((await $({ quiet: true })`ip -j -4 route show table all`).stdout) as { dst: string }[]
    const addrs = JSON.parse((await $({ quiet: true })`ip -j -4 addr`).stdout) as { addr_info: { local: string; prefixlen: number }[] }[]
    const taken = [
      ...routes.map((r) => r.dst).filter((d) => d && d !== 'default'),
      ...addrs.flatMap((a) => a.addr_info.map((i) => `${i.local}/${i.prefixlen}`)),
    ]
    for (const entry of existsSync(LAB_ROOT) ? readdirSync(LAB_ROOT) : []) {
      const other = readJson<LabInstance>(join(LAB_ROOT, entry, 'instance.json'))
      if (other && other.name !== this.name) taken.push(other.subnet)
    }
    for (let salt = 0; salt < 64; salt++) {
      const third = 1 + (hashByte(this.name, salt) % 250)
      const subnet = `10.213.${third}.0/24`
      if (!taken.some((t) => overlaps(t, subnet))) return subnet
    }
    throw new Error('no free /24 in 10.213.0.0/16 for the lab after 64 tries')
  }

  /**
   * Boot every host of the inventory and return when each answers SSH and its systemd
   * reports the boot finished. Leftovers of an earlier run of this instance are
   * removed first; every host starts from a fresh disk.
   */
  async up(opts: { bootTimeoutMs?: number } = {}): Promise<{ baseMs: number; bootMs: number; hosts: Record<string, string> }> {
    const t0 = Date.now()
    const log = this.log
    if (existsSync(this.stateDir) || this.leftoverNetns().length || existsSync(`/sys/class/net/${this.bridge}`)) {
      log(`removing leftovers of an earlier run of lab "${this.name}"`)
      await this.teardown(false)
    }
    const base = await ensureBase(log)
    if (base.built) log(`base root built in ${(base.ms / 1000).toFixed(1)}s`)
    const tBoot = Date.now()
    mkdirSync(this.stateDir, { recursive: true })
    writeFileSync(join(this.stateDir, 'base'), `${base.path}\n`)

    const subnet = await this.chooseSubnet()
    const prefix = subnet.split('.').slice(0, 3).join('.')
    const gateway = `${prefix}.1`
    if (this.topology.hosts.length > 200) throw new Error('a lab instance holds at most 200 hosts')
    const hosts: LabHost[] = this.topology.hosts.map((h, i) => ({
      name: h.name,
      index: i,
      groups: h.groups,
      address: `${prefix}.${10 + i}`,
      netns: `hs-${this.name}-${h.name}`,
      veth: `hs${this.sid}-${i}`,
      machine: `hs-${this.name}-${h.name}`,
    }))
    const cgroups: Record<string, string> = {}
    for (const c of CONTROLLERS) {
      const root = `/sys/fs/cgroup/${c}`
      if (existsSync(join(root, 'cgroup.procs'))) cgroups[c] = join(root, ownCgroup(c), 'hastack-lab', this.name)
    }
    if (!cgroups.freezer) throw new Error('no cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer: freeze/thaw need it')
    const inst: LabInstance = {
      name: this.name,
      inventory: this.topology.file,
      bridge: this.bridge,
      subnet,
      gateway,
      base: base.path,
      key: this.keyPath(),
      cgroups,
      hosts,
      createdFiles: [],
      createdDirs: [],
      partitions: {},
      shaping: {},
    }
    this.save(inst)

    await this.ensureKey(inst.key)
    log(`lab "${this.name}": ${hosts.length} hosts on ${this.bridge} ${subnet}`)
    const step = async (host: string, what: string, fn: () => Promise<unknown>) => {
      try {
        return await fn()
      } catch (e: any) {
        throw new Error(`${host}: ${what} failed: ${e.message ?? e}`)
      }
    }
    await step('bridge', 'creating the bridge', () => this.createBridge(inst))
    await step('apt-cacher-ng', 'starting', () => syncAcng(log))
    this.writeHostVars(inst)

    const results: Record<string, string> = {}
    const timeout = opts.bootTimeoutMs ?? 180_000
    const outcomes = await Promise.allSettled(
      hosts.map(async (h) => {
        const th = Date.now()
        await step(h.name, 'network setup', () => this.createNetwork(inst, h))
        await step(h.name, 'root file system', () => this.createRoot(inst, h))
        const tr = Date.now()
        const pid = (await step(h.name, 'boot', () => this.launch(inst, h))) as number
        const state = await step(h.name, 'waiting for SSH', () => this.waitReady(h, pid, timeout))
        results[h.name] = String(state)
        log(`${h.name.padEnd(10)} ${h.address.padEnd(14)} ${String(state).padEnd(9)} prepared ${((tr - th) / 1000).toFixed(1)}s, booted and answering SSH ${elapsed(tr)}`)
      }),
    )
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')
    if (failed.length) throw new Error(failed.map((f) => f.reason?.message ?? String(f.reason)).join('\n'))
    log(`lab "${this.name}" up in ${elapsed(t0)} (boot ${elapsed(tBoot)})`)
    const ordered = Object.fromEntries(hosts.map((h) => [h.name, results[h.name]]))
    return { baseMs: base.ms, bootMs: Date.now() - tBoot, hosts: ordered }
  }

  /** Stop every host and remove everything of this instance; leaves nothing behind. */
  async down(): Promise<void> {
    const t0 = Date.now()
    await this.teardown(true)
    this.log(`lab "${this.name}" down in ${elapsed(t0)}`)
  }

  private leftoverNetns(): string[] {
    try {
      return readdirSync('/run/netns').filter((n) => n.startsWith(`hs-${this.name}-`))
    } catch {
      return []
    }
  }

  /**
   * Remove every part of this instance, recorded or found by its naming conventions:
   * processes (by recorded pid and by membership of the lab's own cgroups), mounts
   * under the state dir, network namespaces, veths, the bridge, nftables tables,
   * cgroups, host_vars files and the state dir.
   */
  private async teardown(syncCache: boolean): Promise<void> {
    const inst = this.instance
    const cgroupRoots = new Set<string>(Object.values(inst?.cgroups ?? {}))
    for (const c of CONTROLLERS) cgroupRoots.add(join(`/sys/fs/cgroup/${c}`, ownCgroup(c), 'hastack-lab', this.name))
    // Processes: thaw first (a frozen process cannot die), then SIGKILL.
    for (const root of cgroupRoots) {
      if (!root.includes('/freezer/') || !existsSync(root)) continue
      for (const d of readdirSync(root, { withFileTypes: true })) {
        if (d.isDirectory()) try { writeFileSync(join(root, d.name, 'freezer.state'), 'THAWED') } catch {}
      }
    }
    const hostsDir = join(this.stateDir, 'hosts')
    for (const h of existsSync(hostsDir) ? readdirSync(hostsDir) : []) {
      const pid = Number(readFileSync(join(hostsDir, h, 'nspawn.pid'), 'utf8').trim() || 0) || 0
      if (pid && ownProcess(pid, `hs-${this.name}-${h}`)) {
        for (const c of children(pid)) try { process.kill(c, 'SIGKILL') } catch {}
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    }
    for (let i = 0; i < 100; i++) {
      const pids = [...cgroupRoots].filter((r) => r.includes('/freezer/') || r.includes('/pids/')).flatMap(readPids)
      if (pids.length === 0) break
      for (const p of pids) try { process.kill(p, 'SIGKILL') } catch {}
      await sleep(100)
      if (i === 99) this.log(`warning: processes still in the lab's cgroups: ${pids.join(' ')}`)
    }
    // Mounts under the state dir, deepest first.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m && (m === this.stateDir || m.startsWith(`${this.stateDir}/`)))
      .sort((a, b) => b.length - a.length)
    // Overlay mounts are independent of each other (no nesting): unmount in parallel.
    await Promise.all(
      mounts.map(async (m) => {
        const r = await q`umount ${m}`
        if (r.exitCode !== 0) await q`umount -l ${m}`
      }),
    )
    await Promise.all(this.leftoverNetns().map((ns) => q`ip netns del ${ns}`))
    const links = JSON.parse((await $({ quiet: true })`ip -j link`).stdout) as { ifname: string }[]
    const ours = links.map((l) => l.ifname).filter((n) => (n.startsWith(`hs${this.sid}-`) || n === this.bridge) && n !== ACNG_LINK)
    await Promise.all(ours.filter((n) => n !== this.bridge).map((n) => q`ip link del ${n}`))
    if (ours.includes(this.bridge)) await q`ip link del ${this.bridge}`
    await q`nft delete table inet hastack_lab_${this.sid.replace(/-/g, '_')}`
    await q`nft delete table bridge hastack_lab_${this.sid.replace(/-/g, '_')}`
    for (const root of cgroupRoots) {
      rmCgroupTree(root)
      try { rmdirSync(dirname(root)) } catch {} // the shared `hastack-lab` level, once empty
    }
    for (const f of inst?.createdFiles ?? []) rmSync(f, { force: true })
    for (const d of [...(inst?.createdDirs ?? [])].reverse()) try { rmdirSync(d) } catch {}
    rmSync(this.stateDir, { recursive: true, force: true })
    if (syncCache) {
      await syncAcng(this.log)
      removeOldBases()
    }
  }

  private async ensureKey(key: string): Promise<void> {
    if (existsSync(key) && existsSync(`${key}.pub`)) return
    mkdirSync(dirname(key), { recursive: true, mode: 0o700 })
    rmSync(key, { force: true })
    rmSync(`${key}.pub`, { force: true })
    await $({ quiet: true })`ssh-keygen -q -t ed25519 -N ${''} -C ${'hastack-lab'} -f ${key}`
    this.log(`generated the lab SSH key ${key}`)
  }

  private nftTable(): string {
    return `hastack_lab_${this.sid.replace(/-/g, '_')}`
  }

  private async createBridge(inst: LabInstance): Promise<void> {
    const br = inst.bridge
    await $({ quiet: true })`ip link add ${br} type bridge forward_delay 0 stp_state 0`
    await $({ quiet: true })`ip addr add ${inst.gateway}/24 dev ${br}`
    await $({ quiet: true })`ip link set ${br} up`
    // Nothing is ever routed between the lab and any other network; partitions live
    // in the bridge table, on the machine's side where a host cannot undo them.
    const t = this.nftTable()
    const rules = [
      `table inet ${t} {`,
      `  chain forward { type filter hook forward priority -10; policy accept;`,
      `    iifname "${br}" oifname != "${br}" drop`,
      `    oifname "${br}" iifname != "${br}" drop`,
      `  }`,
      `}`,
      `table bridge ${t} {`,
      `  chain forward { type filter hook forward priority -10; policy accept; }`,
      `}`,
    ].join('\n')
    await $({ quiet: true, input: rules })`nft -f -`
  }

  private async createNetwork(inst: LabInstance, h: LabHost): Promise<void> {
    await $({ quiet: true })`ip netns add ${h.netns}`
    await $({ quiet: true })`ip link add ${h.veth} type veth peer name eth0 netns ${h.netns}`
    await $({ quiet: true })`ip link set ${h.veth} master ${inst.bridge} up`
    await $({ quiet: true })`ip -n ${h.netns} link set lo up`
    await $({ quiet: true })`ip -n ${h.netns} addr add ${h.address}/24 dev eth0`
    await $({ quiet: true })`ip -n ${h.netns} link set eth0 up`
    // A default route like a VM's (facts read the primary address from it); the
    // machine forwards nothing from the lab bridge, so nothing leaves the machine.
    await $({ quiet: true })`ip -n ${h.netns} route add default via ${inst.gateway}`
  }

  private async createRoot(inst: LabInstance, h: LabHost): Promise<void> {
    const dir = this.hostDir(h.name)
    const root = join(dir, 'root')
    for (const d of ['upper', 'work', 'root']) mkdirSync(join(dir, d), { recursive: true })
    await $({ quiet: true })`mount -t overlay overlay -o ${`lowerdir=${inst.base},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`} ${root}`
    const w = (path: string, content: string, mode = 0o644) => {
      mkdirSync(dirname(join(root, path)), { recursive: true })
      writeFileSync(join(root, path), content, { mode })
      chmodSync(join(root, path), mode)
    }
    w('etc/hostname', `${h.name}\n`)
    w('etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444)
    w(
      'etc/hosts',
      [
        '# generated by test/lab: every host of the lab instance',
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        ...inst.hosts.map((x) => `${x.address}\t${x.name}`),
        '',
      ].join('\n'),
    )
    w('etc/resolv.conf', '# hastack lab: no DNS server; names come from /etc/hosts\n')
    w('etc/apt/apt.conf.d/01hastack-lab-proxy', `// generated by test/lab\nAcquire::http::Proxy "http://${inst.gateway}:${ACNG_PORT}";\n`)
    const pub = readFileSync(`${inst.key}.pub`, 'utf8')
    w('root/.ssh/authorized_keys', pub, 0o600)
    const pw = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('hastack:'))
    if (!pw) throw new Error('the base has no hastack user')
    const [, , uid, gid] = pw.split(':').map(Number)
    w('home/hastack/.ssh/authorized_keys', pub, 0o600)
    chownSync(join(root, 'home/hastack/.ssh/authorized_keys'), uid, gid)
    chownSync(join(root, 'home/hastack/.ssh'), uid, gid)
    // SSH host keys: kept per lab name and host across runs, like a VM's identity
    // (and RSA key generation is the slowest part of preparing a host).
    const keys = join(LAB_ROOT, 'hostkeys', this.name, h.name)
    const names = ['rsa', 'ecdsa', 'ed25519'].flatMap((t) => [`ssh_host_${t}_key`, `ssh_host_${t}_key.pub`])
    if (names.every((n) => existsSync(join(keys, n)))) {
      for (const n of names) {
        copyFileSync(join(keys, n), join(root, 'etc/ssh', n))
        chmodSync(join(root, 'etc/ssh', n), n.endsWith('.pub') ? 0o644 : 0o600)
      }
    } else {
      await $({ quiet: true })`ssh-keygen -A -f ${root}`
      mkdirSync(keys, { recursive: true, mode: 0o700 })
      for (const n of names) copyFileSync(join(root, 'etc/ssh', n), join(keys, n))
    }
    const hostKey = readFileSync(join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    writeFileSync(join(this.stateDir, 'known_hosts'), `${h.address},${h.name} ${hostKey}\n`, { flag: 'a' })
  }

  /** Start systemd-nspawn for the host, detached, inside cgroups of its own. */
  private async launch(inst: LabInstance, h: LabHost): Promise<number> {
    const dir = this.hostDir(h.name)
    const cg = this.cgroupDirs(inst, h.name)
    const procs: string[] = []
    for (const [c, d] of Object.entries(cg)) {
      mkdirSync(d, { recursive: true })
      if (c === 'freezer') writeFileSync(join(d, 'freezer.state'), 'THAWED')
      procs.push(join(d, 'cgroup.procs'))
    }
    const nspawn = [
      'systemd-nspawn', '--quiet', '--register=no', '--keep-unit', '--boot',
      `--machine=${h.machine}`, `--hostname=${h.name}`,
      '-D', join(dir, 'root'),
      `--network-namespace-path=/run/netns/${h.netns}`,
      '--console=read-only', '--resolv-conf=off', '--timezone=off', '--link-journal=no',
    ]
    // The shell enters the cgroups, then becomes systemd-nspawn (same pid).
    const script = 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"'
    const fd = openSync(join(dir, 'console.log'), 'a')
    const child = spawn('/bin/sh', ['-c', script, 'lab-launch', ...procs, '--', ...nspawn], {
      detached: true,
      stdio: ['ignore', fd, fd],
    })
    closeSync(fd)
    child.unref()
    writeFileSync(join(dir, 'nspawn.pid'), `${child.pid}\n`)
    return child.pid!
  }

  /** Poll (bounded) until sshd answers and systemd finished booting; returns its state. */
  private async waitReady(h: LabHost, nspawnPid: number, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs
    let delay = 50
    for (let i = 0; ; i++) {
      if (await tcpOpen(h.address, 22, 1000)) break
      // Not ownProcess(): right after spawn the child may not have exec'd yet.
      if (!alive(nspawnPid)) {
        throw new Error(`systemd-nspawn exited; console: ${this.consoleTail(h.name)}`)
      }
      if (Date.now() > deadline || i > 2000) throw new Error(`port 22 not open after ${timeoutMs} ms; console: ${this.consoleTail(h.name)}`)
      await sleep(delay)
      delay = Math.min(500, delay * 2)
    }
    const left = Math.max(5, Math.round((deadline - Date.now()) / 1000))
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.ssh(h.name, `timeout ${left} systemctl is-system-running --wait`, { timeoutMs: (left + 10) * 1000 })
      const state = r.stdout.trim()
      if (state === 'running') return state
      if (state === 'degraded') {
        const failed = await this.ssh(h.name, 'systemctl --failed --no-legend --plain | cut -d" " -f1')
        return `degraded (${failed.stdout.trim().split('\n').join(', ')})`
      }
      if (r.code === 255 && Date.now() < deadline) {
        await sleep(200 * (attempt + 1))
        continue
      }
      throw new Error(`systemd did not finish booting (state "${state}", ssh exit ${r.code}: ${r.stderr.trim()})`)
    }
    throw new Error('SSH did not accept the lab key after 5 attempts')
  }

  private consoleTail(host: string): string {
    try {
      return readFileSync(join(this.hostDir(host), 'console.log'), 'utf8').trim().split('\n').slice(-8).join('\n')
    } catch {
      return '(no console log)'
    }
  }

  private writeHostVars(inst: LabInstance): void {
    const hv = join(this.topology.dir, 'host_vars')
    for (const h of inst.hosts) {
      for (const d of [hv, join(hv, h.name)]) {
        if (!existsSync(d)) {
          mkdirSync(d)
          inst.createdDirs.push(d)
        }
      }
      const f = join(hv, h.name, 'lab.yml')
      writeFileSync(
        f,
        `# generated by test/lab for lab "${this.name}" — do not edit; removed by \`lab down\`\naddress: ${h.address}\napt_proxy: http://${inst.gateway}:${ACNG_PORT}\n`,
      )
      inst.createdFiles.push(f)
    }
    this.save(inst)
  }

  // ───────────────────────────── processes ─────────────────────────────

  private nspawnPid(host: string): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.hostDir(host), 'nspawn.pid'), 'utf8').trim())
      return pid && ownProcess(pid, `hs-${this.name}-${host}`) ? pid : undefined
    } catch {
      return undefined
    }
  }

  /** The host's systemd as the machine sees it: the child of systemd-nspawn. */
  pid1(host: string): number | undefined {
    const n = this.nspawnPid(host)
    return n ? children(n)[0] : undefined
  }

  private freezerDir(host: string): string {
    return join(this.need().cgroups.freezer, host)
  }

  /** Every pid of the host (its freezer cgroup: nspawn and the whole container). */
  hostPids(host: string): number[] {
    return readPids(this.freezerDir(host))
  }

  // ───────────────────────────── faults ─────────────────────────────

  /** Power cut: SIGKILL the host's PID 1; every process of the host ends, the disk stays. */
  async kill(host: string): Promise<void> {
    this.host(host)
    await this.thaw(host, true)
    const pid = this.pid1(host)
    if (!pid) throw new Error(`${host}: not running`)
    process.kill(pid, 'SIGKILL')
    await this.waitGone(host, 30_000)
    this.log(`${host}: power cut (SIGKILL to pid ${pid})`)
  }

  /** Clean poweroff: systemd stops every unit, then the container exits. */
  async stop(host: string, timeoutMs = 90_000): Promise<void> {
    this.host(host)
    await this.thaw(host, true)
    const pid = this.pid1(host)
    if (!pid) throw new Error(`${host}: not running`)
    await $({ quiet: true })`kill -s RTMIN+4 ${pid}` // systemd: poweroff
    await this.waitGone(host, timeoutMs)
    this.log(`${host}: powered off`)
  }

  private async waitGone(host: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (let i = 0; i < 1000; i++) {
      if (this.hostPids(host).length === 0) return
      if (Date.now() > deadline) break
      await sleep(100)
    }
    throw new Error(`${host}: processes still alive after ${timeoutMs} ms: ${this.hostPids(host).join(' ')}`)
  }

  /** Boot a stopped or killed host again, with its disk as it was. */
  async start(host: string, timeoutMs = 180_000): Promise<string> {
    const inst = this.need()
    const h = this.host(host)
    if (this.nspawnPid(host)) throw new Error(`${host}: already running`)
    if (this.hostPids(host).length) await this.waitGone(host, 10_000)
    const t0 = Date.now()
    const pid = await this.launch(inst, h)
    const state = await this.waitReady(h, pid, timeoutMs)
    this.log(`${host}: started, ${state}, in ${elapsed(t0)}`)
    return state
  }

  /** Pause every process of the host (a hung VM). */
  async freeze(host: string): Promise<void> {
    this.host(host)
    const f = join(this.freezerDir(host), 'freezer.state')
    writeFileSync(f, 'FROZEN')
    for (let i = 0; i < 100 && readFileSync(f, 'utf8').trim() !== 'FROZEN'; i++) await sleep(50)
    const s = readFileSync(f, 'utf8').trim()
    if (s !== 'FROZEN') throw new Error(`${host}: freezer state is ${s} after 5 s`)
    this.log(`${host}: frozen`)
  }

  async thaw(host: string, quiet = false): Promise<void> {
    this.host(host)
    const f = join(this.freezerDir(host), 'freezer.state')
    if (!existsSync(f)) return
    writeFileSync(f, 'THAWED')
    for (let i = 0; i < 100 && readFileSync(f, 'utf8').trim() !== 'THAWED'; i++) await sleep(50)
    if (!quiet) this.log(`${host}: thawed`)
  }

  private async applyPartitions(inst: LabInstance): Promise<void> {
    const t = this.nftTable()
    const veth = (n: string) => `"${this.host(n).veth}"`
    const rules: string[] = []
    for (const [host, from] of Object.entries(inst.partitions)) {
      if (from === 'all') {
        rules.push(`iifname ${veth(host)} drop`, `oifname ${veth(host)} drop`)
      } else {
        const set = `{ ${from.map(veth).join(', ')} }`
        rules.push(`iifname ${veth(host)} oifname ${set} drop`, `iifname ${set} oifname ${veth(host)} drop`)
      }
    }
    const script = [`flush chain bridge ${t} forward`, ...rules.map((r) => `add rule bridge ${t} forward ${r}`)].join('\n')
    await $({ quiet: true, input: script })`nft -f -`
  }

  /**
   * Cut the host off from the other lab hosts (all, or only `from`), in both
   * directions, on the bridge. The machine (gateway: SSH, apt cache) still reaches it.
   */
  async partition(host: string, from?: string[]): Promise<void> {
    const inst = this.need()
    this.host(host)
    for (const f of from ?? []) this.host(f)
    const cur = inst.partitions[host]
    inst.partitions[host] = !from?.length ? 'all' : cur === 'all' ? 'all' : [...new Set([...(cur ?? []), ...from])]
    await this.applyPartitions(inst)
    this.save(inst)
    this.log(`${host}: partitioned from ${from?.length ? from.join(', ') : 'every other host'}`)
  }

  /** Undo partitions and link shaping, of one host or of all. */
  async heal(host?: string): Promise<void> {
    const inst = this.need()
    const hosts = host ? [this.host(host).name] : inst.hosts.map((h) => h.name)
    for (const h of hosts) {
      delete inst.partitions[h]
      for (const other of Object.keys(inst.partitions)) {
        const p = inst.partitions[other]
        if (Array.isArray(p)) {
          inst.partitions[other] = p.filter((x) => x !== h)
          if (!(inst.partitions[other] as string[]).length) delete inst.partitions[other]
        }
      }
      if (inst.shaping[h]) {
        await q`tc qdisc del dev ${this.host(h).veth} root`
        delete inst.shaping[h]
      }
    }
    await this.applyPartitions(inst)
    this.save(inst)
    this.log(`${host ?? 'every host'}: healed`)
  }

  /**
   * Slow the host's link: `delayMs` adds latency (tc netem), `rateKbit` limits the
   * bandwidth (tc tbf), on the machine's end of its veth (traffic towards the host).
   */
  async slow(host: string, opts: { delayMs?: number; jitterMs?: number; rateKbit?: number }): Promise<void> {
    const inst = this.need()
    const h = this.host(host)
    let args: string[]
    if (opts.delayMs) {
      if (!netemAvailable()) {
        throw new Error(
          'this kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set and modules cannot be loaded), so `slow --delay` cannot work here; `slow --rate KBIT` (tbf) does',
        )
      }
      args = ['netem', 'delay', `${opts.delayMs}ms`, ...(opts.jitterMs ? [`${opts.jitterMs}ms`] : [])]
      if (opts.rateKbit) args.push('rate', `${opts.rateKbit}kbit`)
    } else if (opts.rateKbit) {
      args = ['tbf', 'rate', `${opts.rateKbit}kbit`, 'burst', '16kb', 'latency', '400ms']
    } else throw new Error('slow needs --delay MS or --rate KBIT')
    const r = await q`tc qdisc replace dev ${h.veth} root ${args}`
    if (r.exitCode !== 0) throw new Error(`${host}: tc failed: ${r.stderr.trim()}`)
    inst.shaping[host] = args.join(' ')
    this.save(inst)
    this.log(`${host}: link ${args.join(' ')}`)
  }

  // ───────────────────────────── reading ─────────────────────────────

  status(): HostStatus[] {
    const inst = this.instance
    if (!inst) return this.topology.hosts.map((h) => ({ host: h.name, state: 'absent', address: '', faults: [] }))
    return inst.hosts.map((h) => {
      const nspawnPid = this.nspawnPid(h.name)
      const pid = nspawnPid ? children(nspawnPid)[0] : undefined
      let state: HostState = nspawnPid ? 'running' : 'stopped'
      try {
        if (readFileSync(join(this.freezerDir(h.name), 'freezer.state'), 'utf8').trim() !== 'THAWED' && nspawnPid) state = 'frozen'
      } catch {}
      let memoryMiB: number | undefined
      if (inst.cgroups.memory && nspawnPid) {
        try {
          const stat = readFileSync(join(inst.cgroups.memory, h.name, 'memory.stat'), 'utf8')
          const get = (k: string) => Number(stat.match(new RegExp(`^${k} (\\d+)$`, 'm'))?.[1] ?? 0)
          memoryMiB = Math.round((get('total_rss') + get('total_shmem') + get('total_kernel_stack')) / 1048576 * 10) / 10
          const usage = Number(readFileSync(join(inst.cgroups.memory, h.name, 'memory.usage_in_bytes'), 'utf8'))
          if (!get('total_rss')) memoryMiB = Math.round(usage / 1048576)
        } catch {}
      }
      const faults: string[] = []
      const p = inst.partitions[h.name]
      if (p) faults.push(`partitioned from ${p === 'all' ? 'all' : p.join(',')}`)
      for (const [other, from] of Object.entries(inst.partitions)) {
        if (Array.isArray(from) && from.includes(h.name)) faults.push(`partitioned from ${other}`)
      }
      if (inst.shaping[h.name]) faults.push(inst.shaping[h.name])
      return { host: h.name, state, address: h.address, pid, nspawnPid, memoryMiB, faults }
    })
  }

  /** SSH arguments for the host (as the inventory's user, with the lab key and known_hosts). */
  sshArgs(host: string, user = 'hastack'): string[] {
    const inst = this.need()
    const h = this.host(host)
    return [
      '-i', inst.key,
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${join(this.stateDir, 'known_hosts')}`,
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'ConnectTimeout=5',
      '-o', 'LogLevel=ERROR',
      `${user}@${h.address}`,
    ]
  }

  /** Run a command on the host over SSH (bounded by timeoutMs). */
  async ssh(host: string, command: string, opts: { timeoutMs?: number; user?: string; stdin?: string } = {}): Promise<SshResult> {
    const r = await $({ quiet: true, nothrow: true, timeout: opts.timeoutMs ?? 30_000, ...(opts.stdin === undefined ? {} : { input: opts.stdin }) })`ssh ${this.sshArgs(host, opts.user)} -- ${command}`
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }
  }
}

let netemCache: boolean | undefined
/** Whether the kernel can do tc netem (built in, or a loadable module present). */
export function netemAvailable(): boolean {
  if (netemCache !== undefined) return netemCache
  let ok = false
  try {
    const cfg = gunzipSync(readFileSync('/proc/config.gz')).toString()
    ok = /^CONFIG_NET_SCH_NETEM=(y|m)$/m.test(cfg)
    if (/^CONFIG_NET_SCH_NETEM=m$/m.test(cfg)) {
      const rel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
      ok = existsSync(`/lib/modules/${rel}`)
    }
  } catch {
    const rel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
    ok = existsSync(`/lib/modules/${rel}`) || existsSync('/sys/module/sch_netem')
  }
  return (netemCache = ok)
}

/** Every lab instance with state on this machine. */
export function listInstances(): LabInstance[] {
  if (!existsSync(LAB_ROOT)) return []
  return readdirSync(LAB_ROOT)
    .map((e) => readJson<LabInstance>(join(LAB_ROOT, e, 'instance.json')))
    .filter((x): x is LabInstance => !!x)
}

/** Resolves the SSH identification line the server sends first, or null after timeoutMs. */
export function sshBanner(address: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port: 22 })
    let buf = ''
    const done = (v: string | null) => {
      s.destroy()
      resolve(v)
    }
    s.setTimeout(timeoutMs, () => done(null))
    s.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.includes('\n')) done(buf.split('\n')[0].trim())
    })
    s.once('error', () => done(null))
    s.once('close', () => done(buf ? buf.trim() : null))
  })
}

export { basePath, LAB_ROOT }
