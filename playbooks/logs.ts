#!/usr/bin/env -S npx zx
/**
 * Lines from the central log store (the logging host's systemd-journal-remote): every option is
 * checked before any connection, then one journalctl runs over /var/log/journal/remote there.
 * `npx zx playbooks/logs.ts -i inventory/lab-small.yml [--host node2] [--unit patroni]
 *  [--since -1h] [--grep TEXT] [--lines 200]`
 */
import { InputError, playbook, type Inventory } from '../lib/index.ts'
import type { CliOptions } from '../lib/cli/args.ts'
import type { OptionSpecs } from '../lib/cli/parse.ts'
import { allRoles } from '../roles/index.ts'
import { LOGGING_GROUP } from '../roles/journal_remote/index.ts'
import {
  DEFAULT_LINES,
  journalctlCommand,
  logQueryErrors,
  matchingLines,
  type LogQuery,
} from '../roles/journal_remote/query.ts'
import { groupMembers } from '../roles/stack.ts'

const options: OptionSpecs = {
  host: { type: 'string', valueName: 'HOST', description: 'only lines of this inventory host' },
  unit: { type: 'string', valueName: 'UNIT', description: 'only lines of this systemd unit' },
  since: { type: 'string', valueName: 'TIME', description: 'only lines since TIME ("2026-11-30 05:00", -1h)' },
  grep: { type: 'string', valueName: 'PATTERN', description: 'only messages matching PATTERN (PCRE2)' },
  lines: { type: 'number', valueName: 'N', description: `at most the N newest lines (default ${DEFAULT_LINES})` },
}

/** The query the command line asks for, refused (exit 1, nothing connected) when any option is wrong. */
function queryOf(inventory: Inventory, cli: CliOptions): LogQuery {
  const o = cli.playbookOptions
  const query: LogQuery = {
    host: o.host as string | undefined,
    unit: o.unit as string | undefined,
    since: o.since as string | undefined,
    grep: o.grep as string | undefined,
    lines: (o.lines as number | undefined) ?? DEFAULT_LINES,
  }
  const errors = logQueryErrors(query, inventory)
  if (errors.length) throw new InputError(errors.join('\n'))
  return query
}

await playbook({
  name: 'logs',
  script: import.meta.url,
  roles: allRoles,
  options,
  plays: (inventory, cli) => {
    const query = queryOf(inventory, cli)
    const [store] = groupMembers(inventory, LOGGING_GROUP)
    if (store === undefined) throw new InputError(`the inventory has no ${LOGGING_GROUP} host: no central logs`)
    return [
      {
        name: 'Read the central logs',
        hosts: store,
        gatherFacts: false,
        tasks: async (h) => {
          const lines = matchingLines(await h.query(journalctlCommand(query), { timeoutMs: 120_000 }))
          for (const line of lines) h.log(line)
          h.log(`${lines.length} line${lines.length === 1 ? '' : 's'} from ${store}'s central store`)
        },
      },
    ]
  },
})
