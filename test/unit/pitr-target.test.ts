/**
 * The PITR target of playbooks/restore.ts: a timestamp with its UTC offset, a transaction id, a restore
 * point name or the newest WAL, exactly one of them (refused with exit-1 input errors otherwise); the
 * pgBackRest options each restores with; and a target outside what the repository holds is refused.
 */
import t from 'tap'
import { InputError } from '../../lib/types.ts'
import { parseTarget, restoreOptions, targetFromOptions, targetProblem } from '../../roles/pgbackrest/pitr-target.ts'

t.test('a timestamp with an offset is read as that instant, in any of the usual spellings', async (t) => {
  const epoch = Date.parse('2026-11-30T06:12:00Z') / 1000
  t.same(parseTarget('2026-11-30 06:12:00+00'), { kind: 'time', text: '2026-11-30 06:12:00+00', epoch })
  t.same(parseTarget('2026-11-30T06:12:00Z'), { kind: 'time', text: '2026-11-30 06:12:00+00', epoch })
  t.equal(parseTarget('2026-11-30 07:12:00+01:00').epoch, epoch)
  t.equal(parseTarget('2026-11-30 07:12:00+0100').epoch, epoch)
  t.equal(parseTarget('2026-11-30 06:12:00.25+00').epoch, epoch + 0.25)
})

t.test('a time without an offset, or no time at all, is refused as bad input', async (t) => {
  for (const bad of ['2026-11-30 06:12:00', 'yesterday', '2026-11-30', "2026-11-30 06:12:00+00'; drop table x"])
    t.throws(() => parseTarget(bad), InputError, bad)
})

t.test('exactly one of --time, --xid, --name and --latest is taken', async (t) => {
  t.same(targetFromOptions({ xid: '1234' }), { kind: 'xid', text: '1234', xid: 1234n })
  t.same(targetFromOptions({ name: 'before-upgrade' }), { kind: 'name', text: 'before-upgrade' })
  t.equal(targetFromOptions({ latest: true, time: undefined }).kind, 'latest')
  t.equal(targetFromOptions({ time: '2026-11-30 06:12:00+00', latest: false }).kind, 'time')
  t.throws(() => targetFromOptions({}), /give exactly one of --time/)
  t.throws(() => targetFromOptions({ latest: true, xid: '12' }), /give exactly one of --time/)
})

t.test('a transaction id or a restore point name that is not plain is refused as bad input', async (t) => {
  for (const xid of ['0', '2', '-5', '12a', '1e6', '99999999999999999999', "5'; drop"])
    t.throws(() => targetFromOptions({ xid }), InputError, `xid ${xid}`)
  for (const name of ['', 'with space', "it's", 'a'.repeat(64), '-leading-dash', 'semi;colon'])
    t.throws(() => targetFromOptions({ name }), InputError, `name ${JSON.stringify(name)}`)
})

t.test('each target restores with its pgBackRest type, promoting at the target', async (t) => {
  t.same(restoreOptions(parseTarget('2026-11-30 06:12:00Z')), [
    '--type=time',
    '--target=2026-11-30 06:12:00+00',
    '--target-action=promote',
  ])
  t.same(restoreOptions(targetFromOptions({ xid: '777' })), ['--type=xid', '--target=777', '--target-action=promote'])
  t.same(restoreOptions(targetFromOptions({ name: 'nightly' })), [
    '--type=name',
    '--target=nightly',
    '--target-action=promote',
  ])
  t.same(restoreOptions(targetFromOptions({ latest: true })), ['--type=default'])
})

t.test('a target before the oldest backup or after the newest archived WAL is refused, naming the bound', async (t) => {
  const target = parseTarget('2026-11-30 06:12:00+00')
  const around = (before: number, after: number) => ({
    oldestBackupEnd: target.epoch + before,
    newestArchived: target.epoch + after,
  })
  t.equal(targetProblem(target, around(-60, 60)), undefined)
  t.match(targetProblem(target, around(1, 60)), /before the end of the oldest backup \(2026-11-30T06:12:01/)
  t.match(targetProblem(target, around(-60, -1)), /after the newest archived WAL \(2026-11-30T06:11:59/)
  t.match(targetProblem(target, around(-60, 0)), /after the newest archived WAL/, 'the newest instant itself too')
})

t.test('a transaction after the newest archived one is refused; a restore point is left to recovery', async (t) => {
  const window = { oldestBackupEnd: 0, newestArchived: 1e10, newestXid: 900n }
  t.equal(targetProblem(targetFromOptions({ xid: '900' }), window), undefined, 'the newest one itself restores')
  t.match(targetProblem(targetFromOptions({ xid: '901' }), window), /transaction 901 is after the newest archived/)
  t.equal(targetProblem(targetFromOptions({ xid: '5000' }), { ...window, newestXid: undefined }), undefined)
  t.equal(targetProblem(targetFromOptions({ name: 'nightly' }), window), undefined)
})
