/**
 * Where hastack's alert rules live (monitoring/rules/*.yml, their promtool unit tests in
 * monitoring/rules/tests/*.test.yml) and what they contain, for the prometheus role that
 * deploys them and for the test that checks every rule is tested.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { parse } from 'yaml'

export const RULES_DIR = fileURLToPath(new URL('../../monitoring/rules/', import.meta.url))
export const RULE_TESTS_DIR = join(RULES_DIR, 'tests')

export interface AlertRule {
  alert: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

/** Absolute paths of the rule files, sorted. */
export function ruleFiles(): string[] {
  return readdirSync(RULES_DIR)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => join(RULES_DIR, f))
}

/** Absolute paths of the promtool unit test files, sorted. */
export function ruleTestFiles(): string[] {
  return readdirSync(RULE_TESTS_DIR)
    .filter((f) => f.endsWith('.test.yml'))
    .sort()
    .map((f) => join(RULE_TESTS_DIR, f))
}

/** The alerting rules of one rule file, in order. */
export function alertsOf(file: string): AlertRule[] {
  const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: (AlertRule | { record: string })[] }[] }
  return doc.groups.flatMap((g) => g.rules.filter((r): r is AlertRule => 'alert' in r))
}
