#!/usr/bin/env -S npx zx
/**
 * The side-by-side bench's play in hastack's form (its Ansible form is play.yml, with the same vars.yml):
 * on every host of the group `bench`, 40 each of a directory, a file's content, a line in a file, a
 * service started and enabled, and a package present, in that order: 200 tasks, their checks gathered
 * in one round trip (h.doAll). `npm run bench -- ansible` runs it against a lab host of its own.
 */
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { playbook } from '../../lib/index.ts'
import { FORMATS } from '../../lib/inventory/formats.ts'
import { directory, file, lineInFile, packages, service } from '../../lib/tasks/index.ts'
import type { Task } from '../../lib/types.ts'
import { allRoles } from '../../roles/index.ts'

const COUNT = 40
const vars = parse(readFileSync(new URL('./vars.yml', import.meta.url), 'utf8')) as {
  bench_root: string
  bench_packages: string[]
}
if (!FORMATS['absolute-path']!.test(vars.bench_root)) throw new Error(`bench_root: not an absolute path`)
const badPackage = vars.bench_packages.find((p) => !FORMATS['debian-package']!.test(p))
if (badPackage !== undefined || vars.bench_packages.length !== COUNT)
  throw new Error(`bench_packages: ${COUNT} Debian package names expected`)

const root = vars.bench_root
const numbers = Array.from({ length: COUNT }, (_, i) => i + 1)
const tasks: Task[] = [
  ...numbers.map((n) => directory({ path: `${root}/dir${n}` })),
  ...numbers.map((n) => file({ path: `${root}/file${n}.conf`, content: `setting_${n} = ${n}\n` })),
  ...numbers.map((n) =>
    lineInFile({ path: `${root}/lines.conf`, line: `line_${n} = ${n}`, name: `Ensure line_${n} is in lines.conf` }),
  ),
  ...numbers.map((n) => service({ service: `hastack-bench@${n}.service`, enabled: true, state: 'started' })),
  ...vars.bench_packages.map((p) => packages({ install: [p] })),
]

await playbook({
  name: 'bench-200',
  script: import.meta.url,
  roles: allRoles,
  plays: [{ name: 'The 200-task bench play', hosts: 'bench', tasks: async (h) => void (await h.doAll(tasks)) }],
})
