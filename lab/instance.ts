/**
 * What a lab instance is on disk: the types `up` records in
 * `/var/lib/hastack-lab/<name>/instance.json`, the naming rules of instances, and
 * the small readers every part of the lab shares.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { LAB_ROOT } from './base.ts'

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
  /** The load balancers' VIP (`vip_address` in every host's host_vars), when the haproxy group has two hosts. */
  vip?: string
  /** host_vars files, the known_hosts file and directories the lab created (removed by `down`). */
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
  /** The whole usage of the host's memory cgroup, page cache included (MiB). */
  memoryUsageMiB?: number
  faults: string[]
}

export interface SshResult {
  code: number
  stdout: string
  stderr: string
}

export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,30}$/
/** Names taken by the lab's shared directories and links. */
export const RESERVED = /^(cache|acng|hostkeys|base-.*)$/

/** A short, stable form of an instance name for interface names (at most 8 characters). */
export function short(name: string): string {
  if (name.length <= 8) return name
  return name.slice(0, 4) + createHash('sha256').update(name).digest('hex').slice(0, 4)
}

export function elapsed(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)}s`
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

/** Every lab instance with state on this machine. */
export function listInstances(): LabInstance[] {
  if (!existsSync(LAB_ROOT)) return []
  return readdirSync(LAB_ROOT)
    .map((e) => readJson<LabInstance>(join(LAB_ROOT, e, 'instance.json')))
    .filter((x): x is LabInstance => !!x)
}
