/**
 * The one read of several roles' stored passwords (roles/patroni/users.ts): the query names every role
 * once, quoted, and each row gives its role's verifier, empty for a role without a password; a role
 * that does not exist has no row.
 */
import t from 'tap'
import { storedPasswords, storedPasswordsSql } from '../../roles/patroni/users.ts'

t.test('reads each existing role with its verifier, an empty one for a role without a password', async (t) => {
  const rows = 'postgres|SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vy\nnopass|\nodd|name|SCRAM-SHA-256$4096:x$y:z\n'
  t.same(
    [...storedPasswords(rows)],
    [
      ['postgres', 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vy'],
      ['nopass', ''],
      ['odd|name', 'SCRAM-SHA-256$4096:x$y:z'],
    ],
  )
  t.equal(storedPasswords('').size, 0, 'no rows: no role exists')
})

t.test('the query names each role as a quoted literal', async (t) => {
  t.equal(
    storedPasswordsSql(['postgres', "o'brien"]),
    "SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN ('postgres', 'o''brien');",
  )
})
