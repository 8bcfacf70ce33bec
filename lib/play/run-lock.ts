/**
 * The local run lock: one run at a time per inventory on this machine. The lock
 * is a file beside the inventory (`<inventory name>.lock`) created exclusively,
 * holding the pid, host name, start time and command of its run. A second run
 * fails naming the holder (or waits with --wait-lock); a lock left by a dead
 * process of this machine is stale and taken over with a warning.
 */
import { readFileSync, unlinkSync } from 'node:fs'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { InputError } from '../types.ts'

export interface LockInfo {
  pid: number
  hostname: string
  startedAt: string
  command: string
}

export interface RunLock {
  file: string
  /** Remove the lock while it is still ours (synchronous, so an immediate exit can call it too). */
  release(): void
}

/** How often a waiting run looks at the lock again. */
const POLL_MS = 500

/** `inventory/lab.yml` → `inventory/lab.lock`. */
export function runLockPath(inventoryFile: string): string {
  const abs = path.resolve(inventoryFile)
  return path.join(path.dirname(abs), `${path.basename(abs).replace(/\.ya?ml$/, '')}.lock`)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function describe(info: LockInfo | undefined): string {
  if (!info) return 'a run whose lock file cannot be read'
  return `pid ${info.pid} on ${info.hostname}, started ${info.startedAt}: ${info.command}`
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(file, 'utf8')) as LockInfo
    return typeof info.pid === 'number' && typeof info.hostname === 'string' ? info : undefined
  } catch {
    return undefined
  }
}

export interface LockOptions {
  /** Shown to a run that finds the lock taken. */
  command: string
  /** Wait this long for the holder to finish (default 0: fail at once). */
  waitSeconds?: number
  /** Told when a stale lock is taken over. */
  warn(message: string): void
}

/** Take the lock of an inventory, or throw InputError naming the run that holds it. */
export async function acquireRunLock(inventoryFile: string, options: LockOptions): Promise<RunLock> {
  return acquirePidLock(runLockPath(inventoryFile), {
    ...options,
    hint: 'wait for it (--wait-lock SECONDS) or, if that run is gone, remove the file',
  })
}

/**
 * Take an exclusive lock file holding this process's pid (one holder at a time on this machine),
 * taking over a lock whose process is gone, or throw InputError naming the holder. The lab's base
 * root build uses it too.
 */
export async function acquirePidLock(file: string, options: LockOptions & { hint: string }): Promise<RunLock> {
  const mine: LockInfo = {
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
    command: options.command,
  }
  const text = JSON.stringify(mine) + '\n'
  const deadline = Date.now() + (options.waitSeconds ?? 0) * 1000
  let announced = false
  // Bounded: each pass either takes the lock, takes over a stale one, or waits POLL_MS until the deadline.
  for (let pass = 0; pass < 2 + Math.ceil(((options.waitSeconds ?? 0) * 1000) / POLL_MS) * 2; pass++) {
    try {
      await writeFile(file, text, { flag: 'wx', mode: 0o644 })
      return ownLock(file, text)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = await readLock(file)
    if (holder && holder.hostname === mine.hostname && !alive(holder.pid)) {
      options.warn(`taking over the stale lock ${file} of ${describe(holder)} (that process is gone)`)
      await unlink(file).catch(() => undefined)
      continue
    }
    if (Date.now() >= deadline) {
      const waited = options.waitSeconds ? ` (waited ${options.waitSeconds} s)` : ''
      throw new InputError(`another run holds the lock ${file}${waited}: ${describe(holder)}; ${options.hint}`)
    }
    if (!announced) options.warn(`waiting for the lock ${file}, held by ${describe(holder)}`)
    announced = true
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  throw new InputError(`could not take the lock ${file}`)
}

function ownLock(file: string, text: string): RunLock {
  let released = false
  const stillOurs = () => {
    try {
      return readFileSync(file, 'utf8') === text
    } catch {
      return false
    }
  }
  const release = () => {
    if (released) return
    released = true
    if (stillOurs()) unlinkSync(file)
  }
  return { file, release }
}
