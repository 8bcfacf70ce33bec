/**
 * hastack's alert rules (monitoring/rules): promtool accepts them, their unit tests pass,
 * and every alert is tested both firing and silent and carries severity, summary,
 * description and runbook. Needs promtool (Debian's `prometheus`, scripts/install-deps.sh).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { parse } from 'yaml'
import { alertsOf, ruleFiles, ruleTestFiles, RULES_DIR } from '../../roles/prometheus/rule-files.ts'

interface AlertCase {
  alertname: string
  exp_alerts?: unknown[]
}
interface RuleTestFile {
  tests: { alert_rule_test?: AlertCase[] }[]
}

function promtool(args: string[]) {
  const run = spawnSync('promtool', args, { cwd: RULES_DIR, encoding: 'utf8', timeout: 120_000 })
  if (run.error) throw new Error(`promtool could not run (install Debian's prometheus package): ${run.error.message}`)
  return { code: run.status, output: `${run.stdout}${run.stderr}` }
}

const alerts = ruleFiles().flatMap((file) => alertsOf(file).map((rule) => ({ file, rule })))
const cases = ruleTestFiles().flatMap((file) =>
  (parse(readFileSync(file, 'utf8')) as RuleTestFile).tests.flatMap((test) => test.alert_rule_test ?? []),
)

t.test('promtool check rules accepts every rule file', async (t) => {
  const { code, output } = promtool(['check', 'rules', ...ruleFiles()])
  t.equal(code, 0, output)
})

t.test('promtool test rules passes every unit test file', async (t) => {
  const { code, output } = promtool(['test', 'rules', ...ruleTestFiles()])
  t.equal(code, 0, output)
})

t.test('there are about thirty alerts, each named once', async (t) => {
  t.ok(alerts.length >= 30, `${alerts.length} alerts`)
  const names = alerts.map((a) => a.rule.alert)
  t.same(
    names.filter((n, i) => names.indexOf(n) !== i),
    [],
    'no alert name is used twice',
  )
})

t.test('every alert has a test where it fires and one where it does not', async (t) => {
  for (const { rule } of alerts) {
    const mine = cases.filter((c) => c.alertname === rule.alert)
    t.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `${rule.alert} has a firing case`,
    )
    t.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `${rule.alert} has a silent case`,
    )
  }
})

t.test('every test case names an alert that exists', async (t) => {
  const names = new Set(alerts.map((a) => a.rule.alert))
  for (const c of cases) t.ok(names.has(c.alertname), `${c.alertname} is a rule`)
})

t.test('every alert has a severity, a summary, a description and a runbook line', async (t) => {
  for (const { rule } of alerts) {
    t.match(rule.labels?.severity, /^(critical|warning|info)$/, `${rule.alert} severity`)
    for (const key of ['summary', 'description', 'runbook'])
      t.ok(rule.annotations?.[key]?.trim(), `${rule.alert} ${key}`)
  }
})
