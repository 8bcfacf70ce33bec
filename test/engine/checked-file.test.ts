/**
 * checkedFile (roles/monitoring/checked-file.ts) on a real host over SSH: a new
 * configuration replaces the old only when its checker accepts it; a rejected one fails
 * the task, leaves the old file and no candidate behind; an unchanged file is not checked.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loopbackHosts, type Lab } from './harness.ts'
import type { Play, TaskOutcome } from '../../lib/types.ts'
import { sh } from '../../lib/connection/quote.ts'
import { checkedFile } from '../../roles/monitoring/checked-file.ts'

let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(1)
  work = mkdtempSync('/tmp/hastack-checked-')
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
})

/** Accepts a candidate whose first line is "valid". */
const checkCommand = (candidate: string) => sh`head -n 1 ${candidate} | grep -qx valid`

async function converge(path: string, content: string, args: string[] = []) {
  let outcome: TaskOutcome | undefined
  const play: Play = {
    name: 'checked file',
    hosts: 'h1',
    tasks: async (h) => void (outcome = await checkedFile(h, { path, content, checkCommand, checker: 'grep' })),
  }
  const result = await lab.run([play], args)
  return { outcome, result }
}

t.test('a candidate the checker accepts replaces the file; a second run changes nothing', async (t) => {
  const path = `${work}/accepted.conf`
  const first = await converge(path, 'valid\nsetting 1\n')
  t.equal(first.result.exitCode, 0)
  t.equal(first.outcome?.status, 'changed')
  t.equal(readFileSync(path, 'utf8'), 'valid\nsetting 1\n')
  t.notOk(existsSync(`${path}.hastack-candidate`), 'the candidate is removed')
  const second = await converge(path, 'valid\nsetting 1\n')
  t.equal(second.outcome?.status, 'ok')
})

t.test('a rejected candidate fails the task and leaves the old file and no candidate', async (t) => {
  const path = `${work}/rejected.conf`
  writeFileSync(path, 'valid\nold\n')
  const run = await converge(path, 'broken\nnew\n')
  t.equal(run.result.exitCode, 2, 'a failed task exits 2')
  t.equal(run.outcome, undefined, 'the file task never ran')
  t.ok(
    run.result.lines.some((l) => l.includes('grep rejects the new')),
    'the failure names the checker',
  )
  t.equal(readFileSync(path, 'utf8'), 'valid\nold\n')
  t.notOk(existsSync(`${path}.hastack-candidate`), 'the candidate is removed')
})

t.test('check mode reports the change without uploading a candidate', async (t) => {
  const path = `${work}/checkmode.conf`
  writeFileSync(path, 'valid\nold\n')
  const run = await converge(path, 'valid\nnew\n', ['--check'])
  t.equal(run.outcome?.status, 'changed')
  t.equal(readFileSync(path, 'utf8'), 'valid\nold\n')
  t.notOk(existsSync(`${path}.hastack-candidate`))
})
