/**
 * Waiting, the one way: `waitFor` is a task that polls a TCP port, an HTTP URL
 * or a command on the host itself in one round trip, bounded in time (it
 * changes nothing, and is skipped in check mode; its first try is a batched probe); `waitUntil` polls a condition
 * from this machine (an API read through the connection), bounded in tries and
 * time; `delay` is the only plain pause, for a wait that has no condition.
 */
import type { Plan, Probe } from '../types.ts'
import { quote } from '../connection/quote.ts'
import { isIpv4Address, isTcpPort, portStateCommand } from '../facts/ports.ts'
import { urlReadyCommand } from '../facts/http.ts'
import { defineTask, type TaskOptions } from './common.ts'

export interface WaitArgs extends TaskOptions {
  /** TCP port to accept connections (on `address`, default 127.0.0.1). */
  port?: number
  address?: string
  /** URL answering 2xx (fetched with curl on the host, python3 where curl is missing). */
  url?: string
  /** The CA file an https `url` is verified with (the system's when absent). */
  caFile?: string
  /** A command that must exit 0. */
  until?: string
  /** Give up after this long (default 60 s). */
  timeoutMs?: number
  intervalMs?: number
}

/** The probe, as a shell command that exits 0 when ready. */
export function probeCommand(args: WaitArgs): string {
  if (args.port !== undefined) return portStateCommand(args.address ?? '127.0.0.1', args.port)
  if (args.url) return urlReadyCommand(args.url, args.caFile)
  if (args.until) return args.until
  throw new Error('waitFor needs port, url or until')
}

/**
 * The first try as a probe: a port on an IPv4 address and a URL are typed probes (a batch answers them without a
 * process of their own where it can), the rest commands.
 */
function firstTryProbe(args: WaitArgs, command: string): Probe {
  const address = args.address ?? '127.0.0.1'
  if (args.port !== undefined && isIpv4Address(address) && isTcpPort(args.port))
    return { kind: 'port', address, port: args.port }
  if (args.port === undefined && args.url)
    return { kind: 'url', url: args.url, ...(args.caFile ? { caFile: args.caFile } : {}) }
  return { kind: 'run', command }
}

/** Wait until the port, URL or command is ready; fail with the last probe output after the timeout. */
export function waitFor(args: WaitArgs) {
  const target = args.port !== undefined ? `port ${args.port}` : args.url ? args.url : 'the condition'
  const firstTry = probeCommand(args)
  // The first try is a probe: in a run of tasks (h.doAll) it is answered with the others' in one round trip.
  const definition = { ...args, probes: [firstTryProbe(args, firstTry)] }
  return defineTask(`Wait for ${target}`, definition, async (ctx): Promise<Plan> => {
    if (ctx.check) return { change: false, skip: true, reason: 'not waited for in check mode' }
    if ((await ctx.conn.run(firstTry)).code === 0) return { change: false, reason: 'ready' }
    const timeout = args.timeoutMs ?? 60_000
    const interval = Math.max(100, args.intervalMs ?? 1000)
    const tries = Math.max(1, Math.ceil(timeout / interval))
    const script = `i=0; while [ $i -lt ${tries} ]; do if ${probeCommand(args)}; then exit 0; fi; i=$((i+1)); sleep ${interval / 1000}; done; exit 1`
    const result = await ctx.conn.run(`sh -c ${quote(script)}`, { timeoutMs: timeout + 30_000 })
    if (result.code !== 0)
      throw new Error(
        `${target} not ready after ${Math.round(timeout / 1000)}s${result.stderr ? `: ${result.stderr.trim()}` : ''}`,
      )
    return { change: false, reason: 'ready' }
  })
}

export interface PollOptions {
  /** Give up after this long. */
  timeoutMs: number
  /** Between two probes (default 1 s). */
  intervalMs?: number
}

/** A plain pause, for waits with no condition to poll (for example one HA loop of a cluster manager). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Call `probe` until it returns a value and return that value; `undefined` and `false` mean not ready
 * (a yes/no probe can return its boolean), and a probe that throws counts as not ready. Bounded: at
 * most timeout / interval + 1 probes, and never past the timeout. Fails naming `what` and the last error.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  options: PollOptions,
): Promise<Exclude<T, false>> {
  const interval = Math.max(10, options.intervalMs ?? 1000)
  const end = Date.now() + options.timeoutMs
  const tries = Math.ceil(options.timeoutMs / interval) + 1
  let lastError = ''
  for (let attempt = 0; attempt < tries; attempt++) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value as Exclude<T, false>
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error)
    }
    const left = end - Date.now()
    if (left <= 0) break
    await delay(Math.min(interval, left))
  }
  const seconds = Math.round(options.timeoutMs / 1000)
  throw new Error(`timed out after ${seconds}s waiting for ${what}${lastError ? `: ${lastError}` : ''}`)
}
