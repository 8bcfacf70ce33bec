#!/usr/bin/env -S npx zx
/**
 * The load generator: votes at a bounded rate for a bounded time through the inventory's HAProxy
 * (or VIP), then every acknowledged vote reconciled against PostgreSQL.
 * `npx zx playbooks/load.ts -i inventory/lab-small.yml --rate 50 --duration 30 --json reports/load.json`
 * Exit codes: 0 nothing lost or duplicated, 1 bad input, 2 votes lost or duplicated, 3 PostgreSQL
 * could not be read.
 */
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { scriptArgs } from '../lib/cli/args.ts'
import { parseCommandLineOrExit, type OptionSpecs } from '../lib/cli/parse.ts'
import { mask } from '../lib/output/mask.ts'
import { InputError } from '../lib/types.ts'
import { exitCodeOf, reportText } from './load/report.ts'
import { runLoad } from './load/run.ts'

const OPTIONS: OptionSpecs = {
  inventory: { type: 'string', short: 'i', valueName: 'FILE', description: 'inventory YAML file (required)' },
  rate: { type: 'number', valueName: 'N', description: 'votes per second (default 20, at most 1000)' },
  duration: { type: 'number', valueName: 'S', description: 'seconds of sending (default 10, at most 3600)' },
  json: { type: 'string', valueName: 'FILE', description: 'write the report as JSON' },
  target: { type: 'string', valueName: 'HOST:PORT', description: "send votes here instead of the inventory's HAProxy" },
  timeout: { type: 'number', valueName: 'MS', description: 'end each request after this long (default 5000)' },
  'max-in-flight': { type: 'number', valueName: 'N', description: 'requests open at once (default 200)' },
  drain: { type: 'number', valueName: 'S', description: 'wait this long for the worker to store votes (default 60)' },
}

const { values } = parseCommandLineOrExit(
  scriptArgs(process.argv, fileURLToPath(import.meta.url)),
  OPTIONS,
  'usage: npx zx playbooks/load.ts -i INVENTORY [options]',
)

try {
  if (typeof values.inventory !== 'string') throw new InputError('-i INVENTORY is required')
  const report = await runLoad({
    inventory: values.inventory,
    rate: (values.rate as number | undefined) ?? 20,
    durationS: (values.duration as number | undefined) ?? 10,
    target: values.target as string | undefined,
    timeoutMs: (values.timeout as number | undefined) ?? 5000,
    maxInFlight: (values['max-in-flight'] as number | undefined) ?? 200,
    drainTimeoutS: (values.drain as number | undefined) ?? 60,
  })
  process.stdout.write(mask(reportText(report)) + '\n')
  if (typeof values.json === 'string') await writeFile(values.json, mask(JSON.stringify(report, null, 2)) + '\n')
  process.exitCode = exitCodeOf(report)
} catch (error) {
  process.stderr.write(`ERROR: ${mask(error instanceof Error ? error.message : String(error))}\n`)
  process.exitCode = 1
}
