/**
 * Values written for systemd: an EnvironmentFile= value double-quoted with `\`, `"`, `` ` `` and `$` escaped
 * (and that form of a secret masked), and the `systemd-calendar` format of timer schedules.
 */
import t from 'tap'
import { systemdEnvValue } from '../../lib/config-quote.ts'
import { FORMATS } from '../../lib/inventory/formats.ts'
import { clearSecrets, mask, registerSecrets } from '../../lib/output/mask.ts'

t.test('an EnvironmentFile value is double-quoted with backslash, quote, backtick and dollar escaped', async (t) => {
  t.equal(systemdEnvValue('plain-word_1'), '"plain-word_1"')
  t.equal(systemdEnvValue(7), '"7"')
  t.equal(systemdEnvValue('a$b"c\\d`e#f %h'), '"a\\$b\\"c\\\\d\\`e#f %h"')
  t.throws(() => systemdEnvValue('two\nlines'), /control character/)
})

t.test('a secret written as an EnvironmentFile value is masked', async (t) => {
  t.teardown(clearSecrets)
  const secret = 'pa$$word"with\\odd`tick'
  registerSecrets([secret])
  t.equal(mask(`REDISCLI_AUTH=${systemdEnvValue(secret)}`), 'REDISCLI_AUTH="***"')
})

t.test('systemd-calendar accepts shorthands and [weekdays] [date] time [UTC] of numbers and *', async (t) => {
  const calendar = FORMATS['systemd-calendar']!
  const good = ['daily', 'hourly', 'weekly', '*-*-* 02:30:00', 'Mon..Fri 02:00', 'Sat,Sun 03:00 UTC', '*:0/15']
  for (const value of [...good, '2026-*-01 00:00', '*-*~01 00:00', '03:10']) t.ok(calendar.test(value), value)
  const bad = ['', 'every day', 'daily; rm -rf /', '$(reboot) 00:00', '02:30 Europe/Paris', '-1 00:00', 'Daily']
  for (const value of bad) t.notOk(calendar.test(value), `refused: ${JSON.stringify(value)}`)
})
