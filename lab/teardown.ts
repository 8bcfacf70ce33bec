/**
 * Removing a lab instance, recorded or found by its naming conventions, so that `down`
 * and an `up` after a killed run leave nothing behind: processes (by recorded pid and
 * by membership of the lab's own cgroups, thawed first), mounts under the state dir,
 * network namespaces, veths, the bridge, nftables tables, cgroups, the files the lab
 * wrote beside the inventory, and the state dir.
 */
import { existsSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { $ } from 'zx'
import { delay } from '../lib/tasks/wait.ts'
import { ACNG_LINK, ownProcess, syncAcng } from './acng.ts'
import { removeOldBases } from './base.ts'
import { inventoryKnownHosts } from './hosts.ts'
import type { Lab } from './lab.ts'
import { nftTable } from './network.ts'
import { CONTROLLERS, children, instanceCgroup, readPids, rmCgroupTree } from './processes.ts'

const q = $({ quiet: true, nothrow: true, timeout: 60_000 })

/** Network namespaces of this instance left on the machine. */
export function leftoverNetns(name: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(`hs-${name}-`))
  } catch {
    return []
  }
}

/** Thaw, then SIGKILL every process of the instance: recorded nspawn pids and cgroup members. */
async function endProcesses(lab: Lab, cgroupRoots: Set<string>): Promise<void> {
  // A frozen process cannot die: thaw every host's freezer first.
  for (const root of cgroupRoots) {
    if (!root.includes('/freezer/') || !existsSync(root)) continue
    for (const d of readdirSync(root, { withFileTypes: true })) {
      if (d.isDirectory())
        try {
          writeFileSync(join(root, d.name, 'freezer.state'), 'THAWED')
        } catch {}
    }
  }
  const hostsDir = join(lab.stateDir, 'hosts')
  for (const h of existsSync(hostsDir) ? readdirSync(hostsDir) : []) {
    const pid = Number(readFileSync(join(hostsDir, h, 'nspawn.pid'), 'utf8').trim() || 0) || 0
    if (pid && ownProcess(pid, `hs-${lab.name}-${h}`)) {
      for (const c of children(pid))
        try {
          process.kill(c, 'SIGKILL')
        } catch {}
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
  for (let i = 0; i < 100; i++) {
    const pids = [...cgroupRoots].filter((r) => r.includes('/freezer/') || r.includes('/pids/')).flatMap(readPids)
    if (pids.length === 0) break
    for (const p of pids)
      try {
        process.kill(p, 'SIGKILL')
      } catch {}
    await delay(100)
    if (i === 99) lab.log(`warning: processes still in the lab's cgroups: ${pids.join(' ')}`)
  }
}

/** Remove every part of the instance; with `syncCache`, also stop the apt cache when no lab is left. */
export async function teardown(lab: Lab, syncCache: boolean): Promise<void> {
  const inst = lab.instance
  const cgroupRoots = new Set<string>(Object.values(inst?.cgroups ?? {}))
  for (const c of CONTROLLERS) cgroupRoots.add(instanceCgroup(c, lab.name))
  await endProcesses(lab, cgroupRoots)
  // Mounts under the state dir, deepest first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === lab.stateDir || m.startsWith(`${lab.stateDir}/`)))
    .sort((a, b) => b.length - a.length)
  // Overlay mounts are independent of each other (no nesting): unmount in parallel.
  await Promise.all(
    mounts.map(async (m) => {
      const r = await q`umount ${m}`
      if (r.exitCode !== 0) await q`umount -l ${m}`
    }),
  )
  await Promise.all(leftoverNetns(lab.name).map((ns) => q`ip netns del ${ns}`))
  const links = JSON.parse((await $({ quiet: true })`ip -j link`).stdout) as { ifname: string }[]
  const ours = links
    .map((l) => l.ifname)
    .filter((n) => (n.startsWith(`hs${lab.sid}-`) || n === lab.bridge) && n !== ACNG_LINK)
  await Promise.all(ours.filter((n) => n !== lab.bridge).map((n) => q`ip link del ${n}`))
  if (ours.includes(lab.bridge)) await q`ip link del ${lab.bridge}`
  await q`nft delete table inet ${nftTable(lab.sid)}`
  await q`nft delete table bridge ${nftTable(lab.sid)}`
  for (const root of cgroupRoots) {
    rmCgroupTree(root)
    try {
      rmdirSync(dirname(root))
    } catch {} // the shared `hastack-lab` level, once empty
  }
  for (const f of [...(inst?.createdFiles ?? []), inventoryKnownHosts(lab)]) rmSync(f, { force: true })
  for (const d of [...(inst?.createdDirs ?? [])].reverse())
    try {
      rmdirSync(d)
    } catch {}
  rmSync(lab.stateDir, { recursive: true, force: true })
  if (syncCache) {
    await syncAcng(lab.log)
    removeOldBases()
  }
}
