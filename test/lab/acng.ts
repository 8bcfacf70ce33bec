/**
 * The apt cache shared by every lab instance: one apt-cacher-ng process that the lab
 * starts and owns (pid recorded; the machine has no systemd), bound only to the
 * gateway addresses of the running lab bridges, so it is never reachable from
 * outside the machine. Its cache lives in /var/cache/hastack-lab-acng and survives
 * clean clones; Debian's mirror is its only backend.
 */
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, closeSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
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

/** Gateways of every lab instance whose bridge currently exists. */
export function liveGateways(): string[] {
  const out: string[] = []
  if (!existsSync(LAB_ROOT)) return out
  for (const entry of readdirSync(LAB_ROOT)) {
    try {
      const inst = JSON.parse(readFileSync(join(LAB_ROOT, entry, 'instance.json'), 'utf8'))
      if (inst.gateway && existsSync(`/sys/class/net/${inst.bridge}`)) out.push(inst.gateway)
    } catch {}
  }
  return [...new Set(out)].sort()
}

async function stopPid(pid: number): Promise<void> {
  if (!ownProcess(pid, 'apt-cacher-ng')) return
  process.kill(pid, 'SIGTERM')
  for (let i = 0; i < 50 && ownProcess(pid, 'apt-cacher-ng'); i++) await new Promise((r) => setTimeout(r, 100))
  if (ownProcess(pid, 'apt-cacher-ng')) process.kill(pid, 'SIGKILL')
}

/**
 * Make the shared apt-cacher-ng listen on exactly the live lab gateways: start it,
 * restart it when the set changed, or stop it when no lab is left. Bounded waits.
 */
export async function syncAcng(log: (m: string) => void = () => {}): Promise<void> {
  const binds = liveGateways()
  const st = readState()
  const running = st && ownProcess(st.pid, 'apt-cacher-ng')
  if (running && JSON.stringify(st!.binds) === JSON.stringify(binds)) return
  if (running) await stopPid(st!.pid)
  rmSync(join(ACNG_DIR, 'state.json'), { force: true })
  if (binds.length === 0) {
    if (running) log('apt-cacher-ng stopped (no lab left)')
    return
  }
  const conf = join(ACNG_DIR, 'conf')
  mkdirSync(ACNG_DIR, { recursive: true })
  mkdirSync(ACNG_CACHE, { recursive: true })
  mkdirSync(join(ACNG_DIR, 'log'), { recursive: true })
  rmSync(conf, { recursive: true, force: true })
  if (!existsSync('/etc/apt-cacher-ng')) throw new Error('apt-cacher-ng is not installed: run test/lab/install-deps.sh')
  cpSync('/etc/apt-cacher-ng', conf, { recursive: true, dereference: true })
  writeFileSync(join(conf, 'backends_debian'), `${DEBIAN_BACKEND}\n`)
  const args = [
    '-c', conf,
    'ForeGround=1',
    `Port=${ACNG_PORT}`,
    `BindAddress=${binds.join(' ')}`,
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
  writeFileSync(join(ACNG_DIR, 'state.json'), JSON.stringify({ pid, binds }))
  for (let i = 0; i < 100; i++) {
    if (await tcpOpen(binds[0], ACNG_PORT, 500)) {
      log(`apt-cacher-ng (pid ${pid}) listening on ${binds.map((b) => `${b}:${ACNG_PORT}`).join(', ')}`)
      return
    }
    if (!ownProcess(pid, 'apt-cacher-ng')) break
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`apt-cacher-ng did not start listening on ${binds[0]}:${ACNG_PORT}; see ${join(ACNG_DIR, 'log')}`)
}
