/**
 * The lab: VM-like Debian 12 hosts on this one machine, one per inventory host. Each
 * host is a systemd-nspawn container booting systemd as PID 1, with its own overlay
 * root on the shared base, its own network namespace on a bridge of its lab
 * instance, its own freezer and memory cgroups, and an SSH login `hastack` with
 * passwordless sudo. `Lab` is the one handle for the CLI (cli.ts) and for tests; the
 * work is done by the modules beside it: hosts.ts (a host's life), network.ts
 * (addresses, bridge, partitions, slow links), faults.ts, teardown.ts, base.ts and
 * acng.ts (the base image and the apt cache), topology.ts (what to boot).
 *
 * Every address the lab talks to is one of its own hosts or bridge gateways; every
 * wait is bounded; every process it ends is one it started (recorded pid or a
 * member of a cgroup it created).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { $ } from 'zx'
import { syncAcng } from './acng.ts'
import { LAB_ROOT, basePath, ensureBase } from './base.ts'
import * as faults from './faults.ts'
import { addHost } from './grow.ts'
import * as hosts from './hosts.ts'
import {
  listInstances,
  NAME_RE,
  RESERVED,
  elapsed,
  readJson,
  short,
  type HostState,
  type HostStatus,
  type LabHost,
  type LabInstance,
  type Log,
  type SshResult,
} from './instance.ts'
import { chooseSubnet, createBridge, createNetwork } from './network.ts'
import { CONTROLLERS, children, instanceCgroup, memoryOf, memoryUsageOf } from './processes.ts'
import { leftoverNetns, teardown } from './teardown.ts'
import { hostOctets, loadTopology, vipOctet, type LabTopology } from './topology.ts'

export type { HostState, HostStatus, LabHost, LabInstance, Log, SshResult } from './instance.ts'
export { listInstances } from './instance.ts'
export { netemAvailable, sshBanner, tcpOpen } from './network.ts'
export { basePath, LAB_ROOT }

export interface SshOptions {
  timeoutMs?: number
  user?: string
  stdin?: string
}

export interface LabOptions {
  /** Path of the inventory file. */
  inventory: string
  /** Lab instance name; default: the inventory file's name without extension. */
  name?: string
  log?: Log
}

/** What `up` reports: how long the base and the boot took, and each host's systemd state. */
export interface LabUp {
  baseMs: number
  bootMs: number
  hosts: Record<string, string>
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
    if (!NAME_RE.test(this.name) || RESERVED.test(this.name))
      throw new Error(`lab name "${this.name}" must match ${NAME_RE} and not be cache, acng, hostkeys or base-*`)
    this.stateDir = join(LAB_ROOT, this.name)
    this.sid = short(this.name)
    this.bridge = `hs-${this.sid}`
    this.log = opts.log ?? (() => {})
  }

  /** The recorded instance, when `up` ran. */
  get instance(): LabInstance | undefined {
    return readJson<LabInstance>(join(this.stateDir, 'instance.json'))
  }

  /** Record the instance (for the lab's modules). */
  save(inst: LabInstance): void {
    writeFileSync(join(this.stateDir, 'instance.json'), JSON.stringify(inst, null, 2))
  }

  /** The recorded instance; throws when the lab is not up. */
  need(): LabInstance {
    const inst = this.instance
    if (!inst) throw new Error(`lab "${this.name}" is not up (no ${join(this.stateDir, 'instance.json')})`)
    return inst
  }

  host(name: string): LabHost {
    const all = this.need().hosts
    const h = all.find((x) => x.name === name)
    if (!h) throw new Error(`lab "${this.name}" has no host "${name}" (hosts: ${all.map((x) => x.name).join(', ')})`)
    return h
  }

  hostDir(host: string): string {
    return join(this.stateDir, 'hosts', host)
  }

  cgroupDirs(inst: Pick<LabInstance, 'cgroups'>, host: string): Record<string, string> {
    return Object.fromEntries(Object.entries(inst.cgroups).map(([c, d]) => [c, join(d, host)]))
  }

  freezerDir(host: string): string {
    return join(this.need().cgroups.freezer!, host)
  }

  private keyPath(): string {
    const k = this.topology.vars.ssh_key
    return typeof k === 'string' ? resolve(this.topology.dir, k) : join(this.stateDir, 'ssh', 'id_ed25519')
  }

  // ───────────────────────────── up / down ─────────────────────────────

  /** The instance's record before anything boots: subnet, addresses, cgroups, key. */
  private async plan(basePath: string): Promise<LabInstance> {
    const subnet = await chooseSubnet(this.name)
    const prefix = subnet.split('.').slice(0, 3).join('.')
    const octets = hostOctets(this.topology.hosts.map((h) => h.name))
    const vip = vipOctet(this.topology.hosts, octets)
    const hosts: LabHost[] = this.topology.hosts.map((h, i) => ({
      name: h.name,
      index: i,
      groups: h.groups,
      address: `${prefix}.${octets[i]}`,
      netns: `hs-${this.name}-${h.name}`,
      veth: `hs${this.sid}-${i}`,
      machine: `hs-${this.name}-${h.name}`,
    }))
    const cgroups: Record<string, string> = {}
    for (const c of CONTROLLERS) {
      if (existsSync(join(`/sys/fs/cgroup/${c}`, 'cgroup.procs'))) cgroups[c] = instanceCgroup(c, this.name)
    }
    if (!cgroups.freezer)
      throw new Error('no cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer: freeze/thaw need it')
    return {
      name: this.name,
      inventory: this.topology.file,
      bridge: this.bridge,
      subnet,
      gateway: `${prefix}.1`,
      base: basePath,
      key: this.keyPath(),
      cgroups,
      hosts,
      ...(vip === undefined ? {} : { vip: `${prefix}.${vip}` }),
      createdFiles: [],
      createdDirs: [],
      partitions: {},
      shaping: {},
    }
  }

  /**
   * Boot every host of the inventory and return when each answers SSH and its systemd
   * reports the boot finished. Leftovers of an earlier run of this instance are
   * removed first; every host starts from a fresh disk.
   */
  async up(opts: { bootTimeoutMs?: number } = {}): Promise<LabUp> {
    const t0 = Date.now()
    const log = this.log
    if (existsSync(this.stateDir) || leftoverNetns(this.name).length || existsSync(`/sys/class/net/${this.bridge}`)) {
      log(`removing leftovers of an earlier run of lab "${this.name}"`)
      await teardown(this, false)
    }
    const base = await ensureBase(log)
    if (base.built) log(`base root built in ${(base.ms / 1000).toFixed(1)}s`)
    const tBoot = Date.now()
    mkdirSync(this.stateDir, { recursive: true })
    writeFileSync(join(this.stateDir, 'base'), `${base.path}\n`)
    const inst = await this.plan(base.path)
    hosts.startKnownHosts(this, inst)
    this.save(inst)

    await hosts.ensureKey(this, inst.key)
    log(`lab "${this.name}": ${inst.hosts.length} hosts on ${this.bridge} ${inst.subnet}`)
    const step = async <T>(host: string, what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn()
      } catch (e: any) {
        throw new Error(`${host}: ${what} failed: ${e.message ?? e}`, { cause: e })
      }
    }
    await step('bridge', 'creating the bridge', () => createBridge(inst, this.sid))
    await step('apt-cacher-ng', 'starting', () => syncAcng(log))
    hosts.writeHostVars(this, inst)
    hosts.ensureInotifyLimits(
      this,
      listInstances().reduce((n, other) => n + other.hosts.length, 0),
    )

    const results: Record<string, string> = {}
    const timeout = opts.bootTimeoutMs ?? 180_000
    const outcomes = await Promise.allSettled(
      inst.hosts.map(async (h) => {
        const th = Date.now()
        await step(h.name, 'network setup', () => createNetwork(inst, h))
        await step(h.name, 'root file system', () => hosts.createRoot(this, inst, h))
        const tr = Date.now()
        const pid = await step(h.name, 'boot', () => hosts.launch(this, inst, h))
        const state = await step(h.name, 'waiting for SSH', () => hosts.waitReady(this, h, pid, timeout))
        results[h.name] = state
        const prepared = ((tr - th) / 1000).toFixed(1)
        const booted = `booted and answering SSH ${elapsed(tr)}`
        log(`${h.name.padEnd(10)} ${h.address.padEnd(14)} ${state.padEnd(9)} prepared ${prepared}s, ${booted}`)
      }),
    )
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')
    if (failed.length) throw new Error(failed.map((f) => f.reason?.message ?? String(f.reason)).join('\n'))
    log(`lab "${this.name}" up in ${elapsed(t0)} (boot ${elapsed(tBoot)})`)
    const ordered = Object.fromEntries(inst.hosts.map((h) => [h.name, results[h.name]!]))
    return { baseMs: base.ms, bootMs: Date.now() - tBoot, hosts: ordered }
  }

  /**
   * Boot one more host into the running lab: one the inventory names now but did not at `up` (a node
   * added to the stack). Resolves to its systemd state once it answers SSH; the other hosts are untouched.
   */
  async addHost(name: string, opts: { bootTimeoutMs?: number } = {}): Promise<string> {
    return addHost(this, name, opts.bootTimeoutMs ?? 180_000)
  }

  /** Stop every host and remove everything of this instance; leaves nothing behind. */
  async down(): Promise<void> {
    const t0 = Date.now()
    await teardown(this, true)
    this.log(`lab "${this.name}" down in ${elapsed(t0)}`)
  }

  // ───────────────────────────── processes and faults ─────────────────────────────

  /** The host's systemd as the machine sees it: the child of systemd-nspawn. */
  pid1(host: string): number | undefined {
    return hosts.pid1(this, host)
  }

  /** Every pid of the host (its freezer cgroup: nspawn and the whole container). */
  hostPids(host: string): number[] {
    return hosts.hostPids(this, host)
  }

  kill = (host: string) => faults.kill(this, host)
  stop = (host: string, timeoutMs?: number) => faults.stop(this, host, timeoutMs)
  start = (host: string, timeoutMs?: number) => faults.start(this, host, timeoutMs)
  freeze = (host: string) => faults.freeze(this, host)
  thaw = (host: string, quiet?: boolean) => faults.thaw(this, host, quiet)
  partition = (host: string, from?: string[]) => faults.partition(this, host, from)
  heal = (host?: string) => faults.heal(this, host)
  slow = (host: string, opts: faults.SlowLink) => faults.slow(this, host, opts)

  // ───────────────────────────── reading ─────────────────────────────

  status(): HostStatus[] {
    const inst = this.instance
    if (!inst) return this.topology.hosts.map((h) => ({ host: h.name, state: 'absent', address: '', faults: [] }))
    return inst.hosts.map((h) => {
      const nspawnPid = hosts.nspawnPid(this, h.name)
      const pid = nspawnPid ? children(nspawnPid)[0] : undefined
      let state: HostState = nspawnPid ? 'running' : 'stopped'
      try {
        const frozen = readFileSync(join(this.freezerDir(h.name), 'freezer.state'), 'utf8').trim() !== 'THAWED'
        if (frozen && nspawnPid) state = 'frozen'
      } catch {}
      const memoryCgroup = inst.cgroups.memory && nspawnPid ? join(inst.cgroups.memory, h.name) : undefined
      const memoryMiB = memoryCgroup ? memoryOf(memoryCgroup) : undefined
      const memoryUsageMiB = memoryCgroup ? memoryUsageOf(memoryCgroup) : undefined
      const faults: string[] = []
      const p = inst.partitions[h.name]
      if (p) faults.push(`partitioned from ${p === 'all' ? 'all' : p.join(',')}`)
      for (const [other, from] of Object.entries(inst.partitions)) {
        if (Array.isArray(from) && from.includes(h.name)) faults.push(`partitioned from ${other}`)
      }
      if (inst.shaping[h.name]) faults.push(inst.shaping[h.name]!)
      return { host: h.name, state, address: h.address, pid, nspawnPid, memoryMiB, memoryUsageMiB, faults }
    })
  }

  /** SSH arguments for the host (as the inventory's user, with the lab key and known_hosts). */
  sshArgs(host: string, user = 'hastack'): string[] {
    const inst = this.need()
    const h = this.host(host)
    return [
      '-i',
      inst.key,
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${join(this.stateDir, 'known_hosts')}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'ConnectTimeout=5',
      '-o',
      'LogLevel=ERROR',
      `${user}@${h.address}`,
    ]
  }

  /** Run a command on the host over SSH (bounded by timeoutMs). */
  async ssh(host: string, command: string, opts: SshOptions = {}): Promise<SshResult> {
    const input = opts.stdin === undefined ? {} : { input: opts.stdin }
    const run = $({ quiet: true, nothrow: true, timeout: opts.timeoutMs ?? 30_000, ...input })
    const r = await run`ssh ${this.sshArgs(host, opts.user)} -- ${command}`
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }
  }
}
