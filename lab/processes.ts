/**
 * The lab's processes and cgroups: which cgroup the lab runs in, the pids of a cgroup
 * tree, a process's children, whether a pid is alive. The lab ends only processes it
 * started: a recorded pid checked against its command line, or a member of a cgroup it
 * created.
 */
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Hierarchies each host gets its own cgroup in; `freezer` is required, the others are
 * best effort. `systemd` (name=systemd) and `unified` (cgroup2) matter most: nspawn
 * and the host's systemd build their trees there, and hosts sharing one cgroup race
 * each other ("Failed to attach to cgroup /system.slice/…").
 */
export const CONTROLLERS = ['freezer', 'memory', 'pids', 'systemd', 'unified']

/** The cgroup path this process runs in, for one controller. */
export function ownCgroup(controller: string): string {
  const key = controller === 'systemd' ? 'name=systemd' : controller === 'unified' ? '' : controller
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [id, ctl, path] = line.split(':')
    if (ctl === undefined) continue
    if (key === '' ? id === '0' && ctl === '' : ctl.split(',').includes(key)) return path
  }
  return '/'
}

/** The cgroup directory of the instance `name` under one controller. */
export function instanceCgroup(controller: string, name: string): string {
  return join(`/sys/fs/cgroup/${controller}`, ownCgroup(controller), 'hastack-lab', name)
}

/** Every pid in a cgroup tree (bounded depth). */
export function readPids(cgroupDir: string): number[] {
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

export function rmCgroupTree(dir: string, depth = 0): void {
  if (depth > 30 || !existsSync(dir)) return
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) rmCgroupTree(join(dir, e.name), depth + 1)
    }
    rmdirSync(dir)
  } catch {}
}

export function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    )
  } catch {
    return []
  }
}

/** Whether pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** A host's memory in MiB from its memory cgroup: anonymous RSS + shmem + kernel stacks, else usage. */
export function memoryOf(cgroup: string): number | undefined {
  try {
    const stat = readFileSync(join(cgroup, 'memory.stat'), 'utf8')
    const get = (k: string) => Number(stat.match(new RegExp(`^${k} (\\d+)$`, 'm'))?.[1] ?? 0)
    const usage = () => Number(readFileSync(join(cgroup, 'memory.usage_in_bytes'), 'utf8'))
    if (!get('total_rss')) return Math.round(usage() / 1048576)
    return Math.round(((get('total_rss') + get('total_shmem') + get('total_kernel_stack')) / 1048576) * 10) / 10
  } catch {
    return undefined
  }
}

/** A memory cgroup's whole usage in MiB, page cache included (cgroup v1 usage_in_bytes, v2 memory.current). */
export function memoryUsageOf(cgroup: string): number | undefined {
  for (const file of ['memory.usage_in_bytes', 'memory.current']) {
    try {
      return Math.round((Number(readFileSync(join(cgroup, file), 'utf8')) / 1048576) * 10) / 10
    } catch {}
  }
  return undefined
}
