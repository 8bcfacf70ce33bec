/**
 * Measuring tools of the Redis lab test: a bounded write loop (one write every
 * 100 ms, each acknowledged or not), and a bounded poller of HAProxy's server
 * states on the endpoint host (through its admin socket, run on that host).
 */
import type { Redis } from 'ioredis'
import { quote } from '../../../lib/connection/quote.ts'
import type { Lab } from '../../../lab/lab.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface WriteLog {
  /** Keys of acknowledged writes, with the time (ms) of the acknowledgement. */
  acked: { key: string; at: number }[]
  failed: { at: number; error: string }[]
  attempts: number
}

/** Write `prefix:<n>` every intervalMs until stop() or the bounds (count, time) are reached. */
export function writeLoop(client: Redis, prefix: string, opts: { intervalMs?: number; maxCount: number; maxMs: number }) {
  const log: WriteLog = { acked: [], failed: [], attempts: 0 }
  let stopped = false
  const started = Date.now()
  const interval = opts.intervalMs ?? 100
  const done = (async () => {
    for (let n = 0; n < opts.maxCount && !stopped && Date.now() - started < opts.maxMs; n++) {
      const tick = Date.now()
      const key = `${prefix}:${n}`
      log.attempts++
      try {
        await client.set(key, String(n))
        log.acked.push({ key, at: Date.now() })
      } catch (e) {
        log.failed.push({ at: Date.now(), error: String((e as Error).message).slice(0, 120) })
      }
      await sleep(Math.max(0, interval - (Date.now() - tick)))
    }
  })()
  return {
    log,
    async stop() {
      stopped = true
      await done
      return log
    },
  }
}

/** The longest time (s) between two acknowledged writes, counted from `from` (ms). */
export function longestGap(log: WriteLog, from: number): number {
  const times = [from, ...log.acked.map((a) => a.at).filter((t) => t >= from)]
  let gap = 0
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!)
  return gap / 1000
}

export interface HaproxySample {
  /** Unix time, seconds (the lab hosts share the machine's clock). */
  t: number
  /** Entries up per Redis backend. */
  up: Record<string, number>
}

const POLLER = `
import json, os, socket, sys, time
end = time.time() + float(sys.argv[1]); stop = sys.argv[2]
while time.time() < end and not os.path.exists(stop):
    s = socket.socket(socket.AF_UNIX); s.settimeout(2)
    try:
        s.connect('/run/haproxy/admin.sock'); s.sendall(b'show stat\\n'); d = b''
        while True:
            c = s.recv(65536)
            if not c: break
            d += c
    except Exception as e:
        print(json.dumps({'t': time.time(), 'error': str(e)}), flush=True); time.sleep(0.1); continue
    finally:
        s.close()
    up = {}
    for line in d.decode().splitlines():
        f = line.split(',')
        if len(f) > 17 and f[0].startswith('redis_') and f[0] != 'redis_no_primary' and f[1] not in ('FRONTEND', 'BACKEND'):
            up[f[0]] = up.get(f[0], 0) + (1 if f[17].startswith('UP') else 0)
    print(json.dumps({'t': time.time(), 'up': up}), flush=True)
    time.sleep(0.1)
`

/** Poll HAProxy's states on `host` every 100 ms for at most maxSeconds, until stop(). */
export function pollHaproxy(lab: Lab, host: string, maxSeconds: number) {
  const stopFile = `/tmp/hastack-redis-poll-${process.pid}.stop`
  const cmd = `sudo rm -f ${stopFile}; sudo timeout ${maxSeconds + 5} python3 -c ${quote(POLLER)} ${maxSeconds} ${stopFile}`
  const running = lab.ssh(host, cmd, { timeoutMs: (maxSeconds + 30) * 1000 })
  return {
    async stop(): Promise<HaproxySample[]> {
      await lab.ssh(host, `sudo touch ${stopFile}`)
      const r = await running
      await lab.ssh(host, `sudo rm -f ${stopFile}`)
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((s) => s.up)
    },
  }
}

/** Backends routable in a sample: at least `quorum` entries up. */
export function routable(sample: HaproxySample, quorum: number): string[] {
  return Object.entries(sample.up)
    .filter(([, n]) => n >= quorum)
    .map(([b]) => b)
}
