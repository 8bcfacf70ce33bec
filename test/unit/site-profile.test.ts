/**
 * The site bench's profile (bench/site-profile.ts): plays in the order they ran, each spanning its
 * first task's start to its last task's end over every host, with each host's own span and task count.
 */
import t from 'tap'
import { phaseTables, playSpans, playSpanTable } from '../../bench/site-profile.ts'

const at = (ms: number) => new Date(Date.UTC(2026, 10, 30, 12, 0, 0, ms)).toISOString()
const task = (play: string, start: number, end: number) => ({
  play,
  task: `${play} task`,
  status: 'ok',
  startedAt: at(start),
  endedAt: at(end),
  durationMs: end - start,
})
const host = (tasks: ReturnType<typeof task>[]) => ({
  ok: tasks.length,
  changed: 0,
  failed: 0,
  skipped: 0,
  unreachable: 0,
  ignored: 0,
  pendingHandlers: [],
  tasks,
})

t.test('spans each play over every host, in the order the plays ran, with each host its own span', async (t) => {
  const report = {
    hosts: {
      a1: host([task('etcd', 100, 150), task('etcd', 150, 400), task('app', 500, 520)]),
      a2: host([task('etcd', 110, 300), task('common', 0, 90)]),
    },
  }
  t.same(playSpans(report), [
    { play: 'common', ms: 90, hosts: [{ host: 'a2', ms: 90, tasks: 1 }] },
    {
      play: 'etcd',
      ms: 300,
      hosts: [
        { host: 'a1', ms: 300, tasks: 2 },
        { host: 'a2', ms: 190, tasks: 1 },
      ],
    },
    { play: 'app', ms: 20, hosts: [{ host: 'a1', ms: 20, tasks: 1 }] },
  ])
  t.equal(playSpanTable(playSpans(report))[3], '| etcd | 300 ms | a1 300 ms (2 tasks), a2 190 ms (1 tasks) |')
})

t.test('leaves out tasks that never started (skipped before a run)', async (t) => {
  const skipped = { play: 'etcd', task: 'x', status: 'skipped', durationMs: 0 }
  t.same(playSpans({ hosts: { a1: { ...host([]), tasks: [skipped] } } }), [])
})

t.test('prints the run steps and each host set-up from the report phases', async (t) => {
  const phases = {
    planReadMs: 2,
    hostsReadyMs: 310,
    playsMs: 700,
    fingerprintsMs: 0,
    closeMs: 40,
    planWriteMs: 5,
    firstTaskAtMs: 330,
    tasksMs: 650,
    afterLastTaskMs: 120,
  }
  const a1 = { ...host([]), phases: { connectMs: 120, lockMs: 90, factsMs: 60, planBatchMs: 180, readyAtMs: 215 } }
  const lines = phaseTables({ durationMs: 1100, phases, hosts: { a1, a2: host([]) } })
  t.equal(lines[0], '| run step (of 1100 ms) | what | time |')
  t.ok(lines.includes('| closeMs | releasing the host locks, closing the connections | 40 ms |'))
  t.equal(lines.at(-2), '| a1 | 120 ms | 90 ms | 60 ms | 180 ms | 215 ms |')
  t.equal(lines.at(-1), '| a2 | – | – | – | – | – |', 'a host without phases shows dashes')
  t.same(phaseTables({ durationMs: 5, hosts: {} }), [], 'a report without phases prints nothing')
})
