/**
 * The faults the lab offers, each checked to have taken effect: a power cut (SIGKILL
 * to the host's PID 1), a clean poweroff, booting a stopped host again, freezing and
 * thawing every process of a host, partitions on the bridge and slow links.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { $ } from 'zx'
import { waitUntil } from '../lib/tasks/wait.ts'
import { hostPids, launch, nspawnPid, pid1, waitGone, waitReady } from './hosts.ts'
import { elapsed } from './instance.ts'
import type { Lab } from './lab.ts'
import { applyPartitions, dropAddedAddresses, shapeLink, shapingArgs, unshapeLink } from './network.ts'

/**
 * Power cut: SIGKILL the host's PID 1; every process of the host ends, the disk stays, and so does no
 * address its services added (a VIP).
 */
export async function kill(lab: Lab, host: string): Promise<void> {
  const h = lab.host(host)
  await thaw(lab, host, true)
  const pid = pid1(lab, host)
  if (!pid) throw new Error(`${host}: not running`)
  process.kill(pid, 'SIGKILL')
  await waitGone(lab, host, 30_000)
  const dropped = await dropAddedAddresses(h)
  lab.log(`${host}: power cut (SIGKILL to pid ${pid})${dropped.length ? `, dropped ${dropped.join(', ')}` : ''}`)
}

/** Clean poweroff: systemd stops every unit, then the container exits. */
export async function stop(lab: Lab, host: string, timeoutMs = 90_000): Promise<void> {
  lab.host(host)
  await thaw(lab, host, true)
  const pid = pid1(lab, host)
  if (!pid) throw new Error(`${host}: not running`)
  await $({ quiet: true })`kill -s RTMIN+4 ${pid}` // systemd: poweroff
  await waitGone(lab, host, timeoutMs)
  lab.log(`${host}: powered off`)
}

/** Boot a stopped or killed host again, with its disk as it was and its own address alone. */
export async function start(lab: Lab, host: string, timeoutMs = 180_000): Promise<string> {
  const inst = lab.need()
  const h = lab.host(host)
  if (nspawnPid(lab, host)) throw new Error(`${host}: already running`)
  if (hostPids(lab, host).length) await waitGone(lab, host, 10_000)
  await dropAddedAddresses(h)
  const t0 = Date.now()
  const pid = await launch(lab, inst, h)
  const state = await waitReady(lab, h, pid, timeoutMs)
  lab.log(`${host}: started, ${state}, in ${elapsed(t0)}`)
  return state
}

/** Write the host's freezer state and wait (bounded, 5 s) until the kernel reports it. */
async function setFreezer(lab: Lab, host: string, wanted: 'FROZEN' | 'THAWED'): Promise<boolean> {
  const f = join(lab.freezerDir(host), 'freezer.state')
  if (wanted === 'THAWED' && !existsSync(f)) return true
  writeFileSync(f, wanted)
  const reached = async () => (readFileSync(f, 'utf8').trim() === wanted ? true : undefined)
  return waitUntil(`${host} ${wanted.toLowerCase()}`, reached, { timeoutMs: 5000, intervalMs: 50 }).catch(() => false)
}

/** Pause every process of the host (a hung VM). */
export async function freeze(lab: Lab, host: string): Promise<void> {
  lab.host(host)
  if (!(await setFreezer(lab, host, 'FROZEN'))) {
    const s = readFileSync(join(lab.freezerDir(host), 'freezer.state'), 'utf8').trim()
    throw new Error(`${host}: freezer state is ${s} after 5 s`)
  }
  lab.log(`${host}: frozen`)
}

export async function thaw(lab: Lab, host: string, quiet = false): Promise<void> {
  lab.host(host)
  await setFreezer(lab, host, 'THAWED')
  if (!quiet) lab.log(`${host}: thawed`)
}

/**
 * Cut the host off from the other lab hosts (all, or only `from`), in both
 * directions, on the bridge. The machine (gateway: SSH, apt cache) still reaches it.
 */
export async function partition(lab: Lab, host: string, from?: string[]): Promise<void> {
  const inst = lab.need()
  lab.host(host)
  for (const f of from ?? []) lab.host(f)
  const cur = inst.partitions[host]
  inst.partitions[host] = !from?.length ? 'all' : cur === 'all' ? 'all' : [...new Set([...(cur ?? []), ...from])]
  await applyPartitions(inst, lab.sid)
  lab.save(inst)
  lab.log(`${host}: partitioned from ${from?.length ? from.join(', ') : 'every other host'}`)
}

/** Undo partitions and link shaping, of one host or of all. */
export async function heal(lab: Lab, host?: string): Promise<void> {
  const inst = lab.need()
  const hosts = host ? [lab.host(host).name] : inst.hosts.map((h) => h.name)
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
      await unshapeLink(lab.host(h).veth)
      delete inst.shaping[h]
    }
  }
  await applyPartitions(inst, lab.sid)
  lab.save(inst)
  lab.log(`${host ?? 'every host'}: healed`)
}

/**
 * Slow the host's link: `delayMs` adds latency (tc netem), `rateKbit` limits the
 * bandwidth (tc tbf), on the machine's end of its veth (traffic towards the host).
 */
export interface SlowLink {
  delayMs?: number
  jitterMs?: number
  rateKbit?: number
}

export async function slow(lab: Lab, host: string, opts: SlowLink): Promise<void> {
  const inst = lab.need()
  const h = lab.host(host)
  const args = shapingArgs(opts)
  await shapeLink(h.veth, args).catch((e: Error) => {
    throw new Error(`${host}: ${e.message}`)
  })
  inst.shaping[host] = args.join(' ')
  lab.save(inst)
  lab.log(`${host}: link ${args.join(' ')}`)
}
