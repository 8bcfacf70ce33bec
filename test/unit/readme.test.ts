/**
 * The README stays true: its role-variable tables match the roles' schemas,
 * and every playbook it names exists.
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { README, updatedReadme } from '../../scripts/role-docs.ts'

const readme = readFileSync(README, 'utf8')

t.test('the role variable tables match the roles (run `npx tsx scripts/role-docs.ts --write`)', async (t) => {
  t.equal(readme, updatedReadme(readme))
})

t.test('every playbook the README names exists', async (t) => {
  const named = new Set([...readme.matchAll(/playbooks\/([a-z0-9-]+)\.ts/g)].map((m) => m[1]!))
  t.ok(named.size >= 3)
  for (const name of named)
    t.ok(existsSync(new URL(`../../playbooks/${name}.ts`, import.meta.url)), `playbooks/${name}.ts`)
})
