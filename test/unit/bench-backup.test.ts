/** The backup bench reads its restore figures from what restore-drill.ts prints. */
import t from 'tap'
import { drillFigures } from '../../bench/backup.ts'

t.test('reads the recovered and file-restore seconds from the drill line', async (t) => {
  const stdout =
    'PLAY [restore-drill]\n  [node1] restore drill passed: backup 20261130-085321F restored and recovered in 11.3 s ' +
    '(files 7.9 s), recovered point 2026-11-30 08:54:01+00, canary rows 1 1, pgbackrest verify ok\n'
  t.same(drillFigures(stdout), { recovered: 11.3, files: 7.9 })
})

t.test('refuses a drill output without its figures, quoting its end', async (t) => {
  t.throws(
    () => drillFigures('restore drill FAILED: pgbackrest restore exited 1\n'),
    /printed no restore figures[^]*FAILED/,
  )
})
