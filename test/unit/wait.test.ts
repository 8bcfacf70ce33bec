/**
 * waitUntil, the one way to poll a condition from this machine: it returns the first value a probe
 * gives, treats a throwing probe as not ready, and gives up after its timeout with a clear message.
 */
import t from 'tap'
import { waitUntil } from '../../lib/tasks/wait.ts'

t.test('returns the first value a probe gives, after the probes that gave none', async (t) => {
  let calls = 0
  const probe = async () => (++calls >= 3 ? `ready after ${calls}` : undefined)
  const value = await waitUntil('three calls', probe, { timeoutMs: 2000, intervalMs: 10 })
  t.equal(value, 'ready after 3')
  t.equal(calls, 3)
})

t.test('a yes/no probe that returns false is not ready yet: it waits for true', async (t) => {
  let calls = 0
  const probe = async () => ++calls >= 3
  const value = await waitUntil('a boolean condition', probe, { timeoutMs: 2000, intervalMs: 10 })
  t.equal(value, true)
  t.equal(calls, 3, 'false twice, then true')
})

t.test('a yes/no probe that never turns true times out', async (t) => {
  const waiting = waitUntil('a condition that stays false', async () => false, { timeoutMs: 100, intervalMs: 20 })
  await t.rejects(waiting, /timed out after 0s waiting for a condition that stays false/)
})

t.test('a probe that throws counts as not ready', async (t) => {
  let calls = 0
  const value = await waitUntil(
    'a flaky probe',
    async () => {
      if (++calls < 2) throw new Error('connection refused')
      return calls
    },
    { timeoutMs: 2000, intervalMs: 10 },
  )
  t.equal(value, 2)
})

t.test('gives up after the timeout, bounded in probes, naming what it waited for and the last error', async (t) => {
  let calls = 0
  const started = Date.now()
  const waiting = waitUntil(
    'the moon',
    async () => {
      calls++
      throw new Error('still dark')
    },
    { timeoutMs: 200, intervalMs: 50 },
  )
  await t.rejects(waiting, /timed out after 0s waiting for the moon: still dark/)
  t.ok(Date.now() - started < 1000, 'stops near its timeout')
  t.ok(calls <= 5, `at most timeout / interval + 1 probes (${calls})`)
})
