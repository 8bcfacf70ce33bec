/**
 * Secrets never leave the engine in any form: a play on a real host (sshd on
 * loopback) writes, rewrites, prints and fails on a file holding a user-supplied
 * secret in many encodings, run with --diff -vv --json; neither the captured
 * output nor the JSON report holds the secret in any of those forms.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loopbackHosts, type Lab } from './harness.ts'
import { playbook } from '../../lib/playbook.ts'
import { Reporter } from '../../lib/output/reporter.ts'
import { base64Cores, clearSecrets } from '../../lib/output/mask.ts'
import { haproxyWord, yamlString } from '../../lib/config-quote.ts'
import { quote as shellWord } from '../../lib/connection/quote.ts'
import type { Play, Role } from '../../lib/types.ts'
import { command, file } from '../../lib/tasks/index.ts'

const SECRET = `p&ss"word$ x'#1/é+=`

/** The secret as config files, URLs and headers hold it, one per line. */
function encodedLines(secret: string, label: string): string {
  return [
    `raw=${secret}`,
    `json=${JSON.stringify(secret)}`,
    `yaml: ${yamlString(secret)}`,
    `yaml_single: '${secret.replaceAll("'", "''")}'`,
    `shell=${shellWord(secret)}`,
    `user admin insecure-password ${haproxyWord(secret)}`,
    `url=postgres://app:${encodeURIComponent(secret)}@127.0.0.1:5000/app`,
    `base64=${Buffer.from(secret).toString('base64')}`,
    `Authorization: Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`,
    `label=${label}`,
    '',
  ].join('\n')
}

/** Pieces of the secret that must not appear: the secret and its distinctive encoded parts. */
const NEEDLES = [
  SECRET,
  JSON.stringify(SECRET).slice(1, -1),
  encodeURIComponent(SECRET),
  shellWord(SECRET).slice(1, -1),
  ...base64Cores(SECRET),
  'word$ x',
  'ss\\"word',
  'p%26ss',
]

let lab: Lab
let work: string
t.before(async () => {
  lab = await loopbackHosts(1, { vars: { masked_password: SECRET } })
  work = mkdtempSync('/tmp/hastack-masking-')
})
t.teardown(async () => {
  await lab.stop()
  rmSync(work, { recursive: true, force: true })
  clearSecrets()
})

t.test('--diff -vv --json shows no form of a secret written, rewritten, printed and failed on', async (t) => {
  const target = `${work}/secret.conf`
  const report = `${work}/report.json`
  const role: Role = {
    name: 'masked',
    description: 'writes a secret in many encodings',
    defaults: {},
    schema: { masked_password: { type: 'string', format: 'one-line', secret: true, description: 'user-supplied' } },
    tasks: async (h) => {
      const secret = String(h.vars.masked_password)
      await h.do(file({ path: target, content: encodedLines(secret, 'first'), name: 'Write the encodings' }))
      await h.do(file({ path: target, content: encodedLines(secret, 'second'), name: 'Rewrite the encodings' }))
      await h.do(command({ cmd: ['cat', target], name: 'Print the encodings' }))
      await h.do(command({ cmd: `cat ${target} >&2; echo ${shellWord(secret)} >&2; exit 3`, name: 'Fail with them' }))
    },
  }
  const lines: string[] = []
  const reporter = new Reporter({ verbosity: 2, diff: true, color: false, write: (l) => lines.push(l) })
  const plays: Play[] = [{ name: 'masking', hosts: 'h1', roles: [role] }]
  const argv = ['-i', lab.inventory, '--diff', '-vv', '--json', report]
  const result = await playbook({ name: 'masking', plays, argv, embedded: true, reporter })

  t.equal(result.exitCode, 2, 'the last task fails as planned')
  t.equal(readFileSync(target, 'utf8'), encodedLines(SECRET, 'second'), 'the host holds the real values')
  const output = lines.join('\n')
  const json = readFileSync(report, 'utf8')
  t.match(output, /\+raw=\*\*\*/, 'the diff was printed, masked')
  t.match(output, /label=second/, 'the command output was printed (-vv)')
  t.match(output, /Authorization: Basic /, 'the encoded lines were printed')
  for (const needle of NEEDLES) {
    t.notOk(output.includes(needle), `output holds no ${JSON.stringify(needle)}`)
    t.notOk(json.includes(needle), `the JSON report holds no ${JSON.stringify(needle)}`)
  }
})
