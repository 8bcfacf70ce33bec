/**
 * The PITR target of playbooks/restore.ts: only a timestamp with its UTC offset is taken (refused
 * with exit-1 input errors otherwise), and a target outside what the repository holds is refused.
 */
import t from 'tap'
import { InputError } from '../../lib/types.ts'
import { parseTarget, targetProblem } from '../../roles/pgbackrest/pitr-target.ts'

t.test('a timestamp with an offset is read as that instant, in any of the usual spellings', async (t) => {
  const epoch = Date.parse('2026-11-30T06:12:00Z') / 1000
  t.same(parseTarget('2026-11-30 06:12:00+00'), { text: '2026-11-30 06:12:00+00', epoch })
  t.same(parseTarget('2026-11-30T06:12:00Z'), { text: '2026-11-30 06:12:00+00', epoch })
  t.equal(parseTarget('2026-11-30 07:12:00+01:00').epoch, epoch)
  t.equal(parseTarget('2026-11-30 07:12:00+0100').epoch, epoch)
  t.equal(parseTarget('2026-11-30 06:12:00.25+00').epoch, epoch + 0.25)
})

t.test('a time without an offset, or no time at all, is refused as bad input', async (t) => {
  for (const bad of ['2026-11-30 06:12:00', 'yesterday', '2026-11-30', "2026-11-30 06:12:00+00'; drop table x"])
    t.throws(() => parseTarget(bad), InputError, bad)
})

t.test('a target before the oldest backup or after the newest archived WAL is refused, naming the bound', async (t) => {
  const target = parseTarget('2026-11-30 06:12:00+00')
  t.equal(targetProblem(target, target.epoch - 60, target.epoch + 60), undefined)
  t.match(
    targetProblem(target, target.epoch + 1, target.epoch + 60),
    /before the end of the oldest backup \(2026-11-30T06:12:01/,
  )
  t.match(
    targetProblem(target, target.epoch - 60, target.epoch - 1),
    /after the newest archived WAL \(2026-11-30T06:11:59/,
  )
})
