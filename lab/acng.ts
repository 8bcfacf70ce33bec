/**
 * The apt cache shared by every lab instance: one apt-cacher-ng process that the lab
 * starts and owns (pid recorded; the machine has no systemd). It listens on a /32 on
 * a port-less bridge of the lab's own (hs-cache; this kernel has no dummy links);
 * each lab's gateway:3142 is redirected there, and an nftables guard drops any
 * packet for it that does not come from a lab bridge or loopback, so it is never
 * reachable from outside the machine. Its cache lives in /var/cache/hastack-lab-acng
 * and survives clean clones; Debian's mirror is its only backend.
 */
import { spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  closeSync,
} from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { $ } from 'zx'
import { LAB_ROOT } from './base.ts'

export const ACNG_DIR = join(LAB_ROOT, 'acng')
export const ACNG_CACHE = process.env.HASTACK_LAB_APT_CACHE ?? '/var/cache/hastack-lab-acng'
export const ACNG_PORT = 3142
const DEBIAN_BACKEND = 'http://deb.debian.org/debian/'

interface AcngState {
  pid: number
  binds: string[]
}

function readState(): AcngState | undefined {
  try {
    return JSON.parse(readFileSync(join(ACNG_DIR, 'state.json'), 'utf8'))
  } catch {
    return undefined
  }
}

/** Whether pid is alive and its command line contains marker (so we never end a stranger). */
export function ownProcess(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker)
  } catch {
    return false
  }
}

/** Resolves true when a TCP connection to address:port opens within timeoutMs. */
export function tcpOpen(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port })
    const done = (ok: boolean) => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(timeoutMs, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

/**
 * The stable address apt-cacher-ng listens on: a /32 on a port-less bridge of the lab's own.
 * Each lab redirects its gateway's port 3142 there (nat in its nftables table), so the
 * hosts use `http://<gateway>:3142` and the cache never restarts when labs come and go.
 */
export const ACNG_ADDRESS = '10.213.0.1'
export const ACNG_LINK = 'hs-cache'
const GUARD_TABLE = 'hastack_lab_cache'

/** Lab instances whose bridge currently exists. */
export function liveLabs(): { name: string; bridge: string; gateway: string }[] {
  const out: { name: string; bridge: string; gateway: string }[] = []
  if (!existsSync(LAB_ROOT)) return out
  for (const entry of readdirSync(LAB_ROOT)) {
    try {
      const inst = JSON.parse(readFileSync(join(LAB_ROOT, entry, 'instance.json'), 'utf8'))
      if (inst.bridge && inst.gateway && existsSync(`/sys/class/net/${inst.bridge}`)) out.push(inst)
    } catch {}
  }
  return out
}

async function ensureCacheLink(labs: { bridge: string; gateway: string }[]): Promise<void> {
  if (!existsSync(`/sys/class/net/${ACNG_LINK}`)) {
    await $({ quiet: true })`ip link add ${ACNG_LINK} type bridge`
    await $({ quiet: true })`ip addr add ${ACNG_ADDRESS}/32 dev ${ACNG_LINK}`
    await $({ quiet: true })`ip link set ${ACNG_LINK} up`
  }
  // Each live lab's gateway:3142 leads to the cache; only the lab bridges (and the
  // machine itself) may reach it. Rebuilt whole, in one transaction.
  const guard = [
    `table inet ${GUARD_TABLE} {}`,
    `delete table inet ${GUARD_TABLE}`,
    `table inet ${GUARD_TABLE} {`,
    `  chain prerouting { type nat hook prerouting priority dstnat; policy accept;`,
    ...labs.map(
      (l) =>
        `    iifname "${l.bridge}" ip daddr ${l.gateway} tcp dport ${ACNG_PORT} dnat ip to ${ACNG_ADDRESS}:${ACNG_PORT}`,
    ),
    `  }`,
    `  chain input { type filter hook input priority 0; policy accept;`,
    `    ip daddr ${ACNG_ADDRESS} iifname != "hs-*" iifname != "lo" drop`,
    `  }`,
    `}`,
  ].join('\n')
  await $({ quiet: true, input: guard })`nft -f -`
}

async function removeCacheLink(): Promise<void> {
  await $({ quiet: true, nothrow: true })`ip link del ${ACNG_LINK}`
  await $({ quiet: true, nothrow: true })`nft delete table inet ${GUARD_TABLE}`
}

async function stopPid(pid: number): Promise<void> {
  if (!ownProcess(pid, 'apt-cacher-ng')) return
  process.kill(pid, 'SIGTERM')
  for (let i = 0; i < 50 && ownProcess(pid, 'apt-cacher-ng'); i++) await new Promise((r) => setTimeout(r, 100))
  if (ownProcess(pid, 'apt-cacher-ng')) process.kill(pid, 'SIGKILL')
}

/**
 * Keep the shared apt-cacher-ng running while any lab is up (start it when missing),
 * and stop it with its dummy link when none is left. Bounded waits.
 */
export async function syncAcng(log: (m: string) => void = () => {}): Promise<void> {
  const labs = liveLabs()
  const st = readState()
  const running = st && ownProcess(st.pid, 'apt-cacher-ng')
  if (labs.length === 0) {
    if (running) await stopPid(st!.pid)
    rmSync(join(ACNG_DIR, 'state.json'), { force: true })
    await removeCacheLink()
    if (running) log('apt-cacher-ng stopped (no lab left)')
    return
  }
  await ensureCacheLink(labs)
  if (running && JSON.stringify(st!.binds) === JSON.stringify([ACNG_ADDRESS])) return
  if (running) await stopPid(st!.pid) // started by an older lab version, bound elsewhere
  const conf = join(ACNG_DIR, 'conf')
  mkdirSync(ACNG_DIR, { recursive: true })
  mkdirSync(ACNG_CACHE, { recursive: true })
  mkdirSync(join(ACNG_DIR, 'log'), { recursive: true })
  rmSync(conf, { recursive: true, force: true })
  if (!existsSync('/etc/apt-cacher-ng')) throw new Error('apt-cacher-ng is not installed: run lab/install-deps.sh')
  cpSync('/etc/apt-cacher-ng', conf, { recursive: true, dereference: true })
  writeFileSync(join(conf, 'backends_debian'), `${DEBIAN_BACKEND}\n`)
  const args = [
    '-c',
    conf,
    'ForeGround=1',
    `Port=${ACNG_PORT}`,
    `BindAddress=${ACNG_ADDRESS}`,
    `CacheDir=${ACNG_CACHE}`,
    `LogDir=${join(ACNG_DIR, 'log')}`,
    `SocketPath=${join(ACNG_DIR, 'socket')}`,
    `PidFile=${join(ACNG_DIR, 'pid')}`,
    'ConnectProto=v4',
  ]
  const fd = openSync(join(ACNG_DIR, 'log', 'stdout.log'), 'a')
  const child = spawn('/usr/sbin/apt-cacher-ng', args, { detached: true, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  child.unref()
  const pid = child.pid!
  writeFileSync(join(ACNG_DIR, 'state.json'), JSON.stringify({ pid, binds: [ACNG_ADDRESS] }))
  for (let i = 0; i < 100; i++) {
    if (await tcpOpen(ACNG_ADDRESS, ACNG_PORT, 500)) {
      log(`apt-cacher-ng (pid ${pid}) listening on ${ACNG_ADDRESS}:${ACNG_PORT}`)
      return
    }
    if (!ownProcess(pid, 'apt-cacher-ng')) break
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`apt-cacher-ng did not start listening on ${ACNG_ADDRESS}:${ACNG_PORT}; see ${join(ACNG_DIR, 'log')}`)
}
