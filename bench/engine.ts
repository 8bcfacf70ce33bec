/**
 * Engine overhead benchmark (`npm run bench`): the wall time of 200 no-op tasks
 * on 1 and on 5 hosts (real sshd servers on loopback), in milliseconds per task
 * per host. Two kinds of no-op: a task whose check needs no round trip (pure
 * engine cost) and a task whose check runs one remote command (engine plus one
 * SSH round trip, the cost of a typical "already correct" task), and a task
 * whose check runs one become (`sudo`) command, with the persistent privileged
 * session on and off (`ssh_persistent_session`), whose ratio is printed too; and 200 file tasks already
 * correct, checked one by one (a round trip each) and as one run of tasks (h.doAll: one round trip).
 * Then what typed probes save in a probe batch (bench/probe-kinds.ts). Prints Markdown tables for the README.
 */
import { loopbackHosts } from '../test/engine/harness.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineTask, noChange } from '../lib/tasks/common.ts'
import { file } from '../lib/tasks/files.ts'
import type { Play, Task } from '../lib/types.ts'
import { probeKindLines } from './probe-kinds.ts'

const TASKS = Number(process.env.BENCH_TASKS ?? 200)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

const pure = (i: number): Task => defineTask(`No-op ${i}`, {}, async () => noChange())
const roundTrip = (i: number): Task =>
  defineTask(`Remote no-op ${i}`, {}, async (ctx) => {
    await ctx.conn.run('true', { sudo: false, check: true })
    return noChange()
  })
const becomeRoundTrip = (i: number): Task =>
  defineTask(`Become no-op ${i}`, {}, async (ctx) => {
    await ctx.conn.run('true', { check: true })
    return noChange()
  })
const filesDir = mkdtempSync(join(tmpdir(), 'hastack-bench-files-'))
const fileCheck = (i: number): Task => file({ path: join(filesDir, `f${i}`), content: `${i}\n` })
/** Extra vars turning the persistent privileged session off. */
const SESSION_OFF = ['-e', JSON.stringify({ ssh_persistent_session: false })]

function play(make: (i: number) => Task, hosts: string, batched = false): Play {
  const tasks = () => Array.from({ length: TASKS }, (_, i) => make(i))
  return {
    name: 'bench',
    hosts,
    gatherFacts: false,
    tasks: async (h) => {
      if (batched) await h.doAll(tasks())
      else for (const task of tasks()) await h.do(task)
    },
  }
}

const lab = await loopbackHosts(5)
const rows: string[] = []
/** Median wall time per kind and host count, for the session on/off ratio. */
const medians = new Map<string, number>()
try {
  // Warm up: connect once so the first measurement is not a cold SSH handshake only.
  await lab.run([play(pure, 'all')])
  // The files the file tasks find already correct.
  await lab.run([play(fileCheck, 'h1')])
  for (const [label, make, args, batched] of [
    ['no round trip', pure, [], false],
    ['one round trip', roundTrip, [], false],
    ['one become round trip, session on', becomeRoundTrip, [], false],
    ['one become round trip, session off', becomeRoundTrip, SESSION_OFF, false],
    ['file already correct, one by one', fileCheck, [], false],
    ['file already correct, h.doAll', fileCheck, [], true],
  ] as const) {
    for (const hosts of ['h1', 'all']) {
      const count = hosts === 'h1' ? 1 : 5
      const times: number[] = []
      for (let r = 0; r < ROUNDS; r++) {
        const started = performance.now()
        const result = await lab.run([play(make, hosts, batched)], [...args])
        if (result.exitCode !== 0) throw new Error(`bench run failed: ${result.lines.join('\n')}`)
        times.push(performance.now() - started)
      }
      const best = Math.min(...times)
      const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!
      medians.set(`${label}/${count}`, median)
      rows.push(
        `| ${label} | ${count} | ${TASKS} | ${(median / 1000).toFixed(2)} s | ${(median / TASKS / count).toFixed(2)} ms | ${(best / TASKS / count).toFixed(2)} ms |`,
      )
      console.error(`${label}, ${count} host(s): median ${median.toFixed(0)} ms`)
    }
  }
} finally {
  await lab.stop()
  rmSync(filesDir, { recursive: true, force: true })
}
console.log(
  `Each run includes the SSH login to every host (one per host) and the recap. ${ROUNDS} rounds, median and best.\n`,
)
console.log(
  '| task kind | hosts | tasks | wall time (median) | per task per host (median) | per task per host (best) |',
)
console.log('|---|---|---|---|---|---|')
for (const row of rows) console.log(row)
for (const count of [1, 5]) {
  const single = medians.get(`file already correct, one by one/${count}`)!
  const batched = medians.get(`file already correct, h.doAll/${count}`)!
  console.log(
    `\nFile checks, ${count} host(s): one by one ${(single / TASKS / count).toFixed(2)} ms, h.doAll ` +
      `${(batched / TASKS / count).toFixed(2)} ms per task per host: ${(single / batched).toFixed(2)}× faster batched`,
  )
  const on = medians.get(`one become round trip, session on/${count}`)!
  const off = medians.get(`one become round trip, session off/${count}`)!
  console.log(
    `\nBecome round trip, ${count} host(s): session off ${(off / TASKS / count).toFixed(2)} ms, ` +
      `on ${(on / TASKS / count).toFixed(2)} ms per task per host: ${(off / on).toFixed(2)}× faster with the session`,
  )
}
console.log(
  '\nThe same questions in one probe batch, as typed probes and as the commands they stand for (median of 7):\n',
)
for (const line of await probeKindLines()) console.log(line)
