/**
 * Measuring tools of the Redis lab test: a bounded write loop (one write every
 * 100 ms, each acknowledged or not), and a bounded poller of HAProxy's server
 * states on the endpoint host (through its admin socket, run on that host), which
 * keeps every sample and every failed poll.
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
export function writeLoop(
  client: Redis,
  prefix: string,
  opts: { intervalMs?: number; maxCount: number; maxMs: number },
) {
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
  /** The last check status (L4CON, L7RSP, L7OK, …) of each entry, per Redis backend. */
  checks: Record<string, string[]>
}

/** What a poll run saw: the samples, and every poll the admin socket did not answer (none are dropped). */
export interface HaproxyPoll {
  samples: HaproxySample[]
  errors: { t: number; error: string }[]
  /** The longest time between two samples, ms: a routing change shorter than this could go unseen. */
  longestSampleGapMs: number
}

// One JSON line per poll into a file on the endpoint host: a sample, or the error that stood in its way.
const POLLER = `
import json, os, socket, sys, time
end = time.time() + float(sys.argv[1]); stop = sys.argv[2]; out = open(sys.argv[3], 'a', buffering=1)
while time.time() < end and not os.path.exists(stop):
    s = socket.socket(socket.AF_UNIX); s.settimeout(2)
    try:
        s.connect('/run/haproxy/admin.sock'); s.sendall(b'show stat\\n'); d = b''
        while True:
            c = s.recv(65536)
            if not c: break
            d += c
    except Exception as e:
        out.write(json.dumps({'t': time.time(), 'error': str(e)}) + '\\n'); time.sleep(0.1); continue
    finally:
        s.close()
    lines = d.decode().splitlines()
    head = lines[0].lstrip('# ').split(',') if lines else []
    if 'status' not in head or 'check_status' not in head:
        out.write(json.dumps({'t': time.time(), 'error': 'no stat header: ' + d.decode()[:80]}) + '\\n')
        time.sleep(0.1); continue
    st, ck = head.index('status'), head.index('check_status')
    up, checks = {}, {}
    for line in lines[1:]:
        f = line.split(',')
        entry = len(f) > ck and f[1] not in ('FRONTEND', 'BACKEND')
        if entry and f[0].startswith('redis_') and f[0] != 'redis_no_primary':
            up[f[0]] = up.get(f[0], 0) + (1 if f[st].startswith('UP') else 0)
            checks.setdefault(f[0], []).append(f[ck])
    out.write(json.dumps({'t': time.time(), 'up': up, 'checks': checks}) + '\\n')
    time.sleep(0.1)
`

/** Poll HAProxy's states on `host` every 100 ms for at most maxSeconds, until stop(). */
export function pollHaproxy(lab: Lab, host: string, maxSeconds: number) {
  const base = `/tmp/hastack-redis-poll-${process.pid}`
  const [stopFile, outFile] = [`${base}.stop`, `${base}.jsonl`]
  const poller = `sudo timeout ${maxSeconds + 5} python3 -c ${quote(POLLER)} ${maxSeconds} ${stopFile} ${outFile}`
  const cmd = `sudo rm -f ${stopFile} ${outFile}; ${poller}`
  const running = lab.ssh(host, cmd, { timeoutMs: (maxSeconds + 30) * 1000 })
  const read = async (): Promise<HaproxyPoll> => {
    const r = await lab.ssh(host, `sudo cat ${outFile} 2>/dev/null || true`)
    const lines = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as HaproxySample & { error?: string })
    const samples = lines.filter((x) => !x.error)
    const errors = lines.filter((x) => x.error).map((x) => ({ t: x.t, error: x.error! }))
    let longestSampleGapMs = 0
    for (let i = 1; i < samples.length; i++) {
      longestSampleGapMs = Math.max(longestSampleGapMs, (samples[i]!.t - samples[i - 1]!.t) * 1000)
    }
    return { samples, errors, longestSampleGapMs: Math.round(longestSampleGapMs) }
  }
  return {
    /** What the poller has written so far (it keeps running). */
    read,
    /** Stop the poller; everything it saw. Throws when the poller itself failed. */
    async stop(): Promise<HaproxyPoll> {
      await lab.ssh(host, `sudo touch ${stopFile}`)
      const r = await running
      if (r.code !== 0) throw new Error(`the HAProxy poller on ${host} exited with ${r.code}: ${r.stderr.slice(-300)}`)
      const poll = await read()
      await lab.ssh(host, `sudo rm -f ${stopFile} ${outFile}`)
      return poll
    },
  }
}

/** Backends routable in a sample: at least `quorum` entries up. */
export function routable(sample: HaproxySample, quorum: number): string[] {
  return Object.entries(sample.up)
    .filter(([, n]) => n >= quorum)
    .map(([b]) => b)
}
