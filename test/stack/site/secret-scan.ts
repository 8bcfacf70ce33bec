/**
 * The site suite's last check: no generated secret and no line of the CA key appears in anything the run
 * produced: every playbook's output (diffs included) and every report file written under reports/ since
 * the suite started (the playbooks' --json reports, the drills' JSON and pictures). A finding names the
 * secret's variable and the file, never the value.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { caFiles } from '../../../roles/certificates/ca.ts'
import { runOutputs } from '../playbook-run.ts'
import type { SiteContext } from './context.ts'

/** Files under `dir` (recursively) changed since `sinceMs`. */
function filesSince(dir: string, sinceMs: number): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names.flatMap((name) => {
    const path = join(dir, name)
    const stat = statSync(path)
    if (stat.isDirectory()) return filesSince(path, sinceMs)
    return stat.mtimeMs >= sinceMs ? [path] : []
  })
}

/** The values to look for, by name: each generated secret, and each base64 line of the CA key. */
export function secretsToFind(secrets: Record<string, unknown>, caKeyPem: string | undefined): Map<string, string> {
  const wanted = new Map<string, string>()
  for (const [name, value] of Object.entries(secrets))
    if (typeof value === 'string' && value.length >= 8) wanted.set(name, value)
  const lines = (caKeyPem ?? '').split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'))
  lines.forEach((line, i) => wanted.set(`the CA key (line ${i + 2})`, line))
  return wanted
}

export async function secretScan(t: Test, ctx: SiteContext, sinceMs: number): Promise<void> {
  const vars = ctx.stackVars()
  let caKey: string | undefined
  try {
    caKey = readFileSync(caFiles(ctx.inventory, vars).key, 'utf8')
  } catch {
    caKey = undefined
  }
  const wanted = secretsToFind(ctx.secrets(), caKey)
  t.ok(wanted.size > 0, `${wanted.size} secret values to look for`)
  const texts = [
    ...runOutputs.map((o) => ({ source: `the output of ${o.source}`, text: o.text })),
    ...filesSince(join(ctx.repo, 'reports'), sinceMs).map((f) => ({ source: f, text: readFileSync(f, 'latin1') })),
  ]
  const found = texts.flatMap(({ source, text }) =>
    [...wanted].filter(([, value]) => text.includes(value)).map(([name]) => `${name} in ${source}`),
  )
  t.ok(texts.length > 0, `${texts.length} outputs and reports to scan (the converge's at least)`)
  t.comment(`scanned ${texts.length} outputs and reports for ${wanted.size} secret values`)
  t.same(found, [], 'no secret in any output or report of the run')
}
