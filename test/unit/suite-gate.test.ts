/**
 * The lab suites' fail-fast gate (test/stack/gate.ts): a check that leaves the stack broken closes it,
 * and every later check then fails at once, naming the first broken check, its reason and diagnosis.
 */
import t from 'tap'
import { SuiteGate, type GatedTest } from '../../test/stack/gate.ts'

/** A stand-in for a tap test: records its failures; `passing()` is false once one was recorded. */
function fakeTest(): GatedTest & { failures: string[] } {
  const failures: string[] = []
  return { failures, fail: (m: string) => failures.push(m), passing: () => failures.length === 0 }
}

t.test('runs every check while the gate is open', async (t) => {
  const gate = new SuiteGate({ suite: 'PostgreSQL suite' })
  const ran: string[] = []
  for (const name of ['first', 'second']) {
    const test = fakeTest()
    await gate.check(name, async () => void ran.push(name))(test)
    t.same(test.failures, [], `${name}: no failure`)
  }
  t.same(ran, ['first', 'second'])
  t.equal(gate.broken, undefined, 'the gate stays open')
})

t.test('a check that closes the gate makes the later checks fail at once without running', async (t) => {
  const gate = new SuiteGate({ suite: 'PostgreSQL suite' })
  await gate.check('a partition heals', async () => gate.close('no leader after 180 s', '/r/diagnosis-1.log'))(
    fakeTest(),
  )
  let ran = false
  const later = fakeTest()
  await gate.check('an etcd roll', async () => void (ran = true))(later)
  t.notOk(ran, 'the later check did not run')
  t.same(later.failures, [
    'not run: the PostgreSQL suite left its stack broken in the check "a partition heals" ' +
      '(no leader after 180 s; diagnosis: /r/diagnosis-1.log)',
  ])
})

t.test('keeps the first breakage: later ones are its consequences', async (t) => {
  const gate = new SuiteGate({ suite: 'site suite' })
  await gate.check('first', async () => {
    gate.close('the first cause')
    gate.close('a consequence')
  })(fakeTest())
  t.same(gate.broken, { check: 'first', reason: 'the first cause' })
})

t.test('after a failed check, a probe that finds the stack broken closes the gate', async (t) => {
  let probes = 0
  const probe = async () => (probes++, { reason: 'db2 streams to 0 of 2 replicas', diagnosis: '/r/d.log' })
  const gate = new SuiteGate({ suite: 'PostgreSQL suite', probe })
  const failing = fakeTest()
  await gate.check('failing check', async (test) => void test.fail('an assertion'))(failing)
  t.equal(probes, 1, 'probed once, after the failure')
  t.same(gate.broken, { check: 'failing check', reason: 'db2 streams to 0 of 2 replicas', diagnosis: '/r/d.log' })
})

t.test('after a check that throws, the probe runs and the error still reaches the test', async (t) => {
  const gate = new SuiteGate({ suite: 'Redis suite', probe: async () => ({ reason: 'no primary' }) })
  const throwing = gate.check('throwing check', async () => {
    throw new Error('timed out')
  })
  await t.rejects(throwing(fakeTest()), /timed out/)
  t.same(gate.broken, { check: 'throwing check', reason: 'no primary' })
})

t.test('after a failed check, a probe that finds the stack healthy leaves the gate open', async (t) => {
  const gate = new SuiteGate({ suite: 'site suite', probe: async () => undefined })
  await gate.check('failing check', async (test) => void test.fail('an assertion'))(fakeTest())
  t.equal(gate.broken, undefined)
  let ran = false
  await gate.check('next check', async () => void (ran = true))(fakeTest())
  t.ok(ran, 'the next check ran')
})

t.test('a probe that throws counts as a broken stack', async (t) => {
  const probe = async () => {
    throw new Error('no member answered')
  }
  const gate = new SuiteGate({ suite: 'site suite', probe })
  await gate.check('failing check', async (test) => void test.fail('an assertion'))(fakeTest())
  t.same(gate.broken, { check: 'failing check', reason: 'the health probe failed: no member answered' })
})

t.test('a passing check is never probed', async (t) => {
  let probes = 0
  const gate = new SuiteGate({ suite: 'site suite', probe: async () => (probes++, { reason: 'x' }) })
  await gate.check('passing check', async () => {})(fakeTest())
  t.equal(probes, 0)
})

t.test('a breakage found before any check names no check of the suite', async (t) => {
  const gate = new SuiteGate({ suite: 'site suite' })
  gate.close('the lab did not boot')
  t.match(gate.refusal(), /in the check "\(before the first check\)" \(the lab did not boot\)$/)
})

t.test('tells which check runs now and since when', async (t) => {
  const gate = new SuiteGate({ suite: 'site suite' })
  const before = Date.now()
  await gate.check('now running', async () => {
    t.equal(gate.current.name, 'now running')
    t.ok(gate.current.startedAt >= before, 'started after the test began')
  })(fakeTest())
})
