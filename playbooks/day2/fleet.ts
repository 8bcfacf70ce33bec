/**
 * What every day-2 playbook (status, switchover, rolling-restart) starts from: its command line read
 * by the one parser (lib/cli/parse.ts), the inventory loaded and validated before any connection
 * (stored secrets are read, never generated: a day-2 run writes no secrets file), and one SSH
 * connection per host, opened on first use and reused. A playbook that changes the stack also takes
 * the inventory's run lock and each host's lock, as a converge does, so the two never overlap.
 * `--json FILE` writes the playbook's outcome as one JSON document (`-`: standard output).
 * Exit codes: 0 done (or healthy), 1 bad input (nothing touched), 2 refused, stopped or unhealthy.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Connection, Inventory, Vars } from '../../lib/types.ts'
import { InputError } from '../../lib/types.ts'
import { ENGINE_OPTIONS, scriptArgs } from '../../lib/cli/args.ts'
import { HelpRequested, parseCommandLine, type OptionSpecs, type OptionValue } from '../../lib/cli/parse.ts'
import { InventoryErrors, loadInventory, secretValues } from '../../lib/inventory/index.ts'
import { checkConnectionFiles } from '../../lib/inventory/connection-spec.ts'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { mask, registerSecrets } from '../../lib/output/mask.ts'
import { takeHostLock } from '../../lib/play/host-lock.ts'
import { acquireRunLock, type RunLock } from '../../lib/play/run-lock.ts'
import { stateDir } from '../../lib/play/secret-guard.ts'
import { allRoles } from '../../roles/index.ts'
import { STACK_DEFAULTS } from '../../roles/stack.ts'

/** The stack as the day-2 modules reach it: the inventory, each host's variables, one connection per host. */
export interface Fleet {
  inventory: Inventory
  /** The members of a group, in inventory order (none when the inventory lacks the group). */
  members(group: string): string[]
  /** A host's variables: shared and role defaults, stored secrets and the inventory's layers. */
  vars(host: string): Vars
  /** The host's one connection (opened, and locked when the playbook changes the stack, on first use). */
  conn(host: string): Promise<Connection>
  /** Drop the host's connection (its host rebooted) and open a new one. */
  reconnect(host: string): Promise<Connection>
  /** Print one line for the operator. */
  say(line: string): void
}

/** Options every day-2 playbook takes, before its own. */
const COMMON_OPTIONS: OptionSpecs = {
  inventory: ENGINE_OPTIONS.inventory!,
  'extra-vars': ENGINE_OPTIONS['extra-vars']!,
  json: { type: 'string', valueName: 'FILE', description: 'write the outcome as JSON to FILE (- for standard output)' },
}

/** What a day-2 playbook ends with: its exit code and the document --json writes. */
export interface Day2Outcome {
  code: number
  report: unknown
}

export interface Day2Spec {
  name: string
  /** The playbook's import.meta.url, to find its own arguments in argv. */
  script: string
  /** Its own options, after -i and -e. */
  options: OptionSpecs
  /** True when it changes the stack: the run lock and the host locks are taken. */
  changes: boolean
  /** Check the option values (throw InputError) before anything is loaded or connected. */
  validate?(values: Record<string, OptionValue>, inventory: Inventory): void
  /** The work; resolves to the exit code and the JSON document. */
  run(fleet: Fleet, values: Record<string, OptionValue>): Promise<Day2Outcome>
  /** Arguments instead of process.argv (tests). */
  argv?: string[]
}

/** A fleet over given connections (the scripted tests) or over SSH (the playbooks). */
export function fleetOf(
  inventory: Inventory,
  connect: (host: string) => Promise<Connection>,
  say: (line: string) => void,
): Fleet {
  const open = new Map<string, Promise<Connection>>()
  const conn = (host: string) => {
    let opened = open.get(host)
    if (!opened) {
      opened = connect(host)
      opened.catch(() => undefined)
      open.set(host, opened)
    }
    return opened
  }
  return {
    inventory,
    members: (group) => (inventory.groups.has(group) ? inventory.groupHosts(group) : []),
    vars: (host) => {
      const known = inventory.hosts.get(host)
      if (!known) throw new Error(`no host named ${host} in the inventory`)
      return { ...STACK_DEFAULTS, ...known.vars }
    },
    conn,
    reconnect: async (host) => {
      const old = open.get(host)
      open.delete(host)
      await old?.then((c) => c.close()).catch(() => undefined)
      return conn(host)
    },
    say,
  }
}

/** Parse, load, connect on demand, run, close; sets process.exitCode (unless argv was given) and returns it. */
export async function day2(spec: Day2Spec): Promise<number> {
  const argv = spec.argv ?? scriptArgs(process.argv, fileURLToPath(spec.script))
  const head = `usage: npx zx playbooks/${spec.name}.ts -i INVENTORY [options]`
  const connections: Connection[] = []
  const releases: (() => Promise<void>)[] = []
  let lock: RunLock | undefined
  let code: number
  try {
    const { values } = parseCommandLine(argv, { ...COMMON_OPTIONS, ...spec.options }, head)
    if (!values.inventory) throw new InputError('an inventory is required (-i FILE)\nrun with --help for the options')
    const inventory = await loadInventory(resolve(String(values.inventory)), {
      extraVars: (values['extra-vars'] as string[] | undefined) ?? [],
      roles: allRoles,
      writeSecrets: false,
    })
    registerSecrets(secretValues(inventory))
    spec.validate?.(values, inventory)
    const problems = await checkConnectionFiles([...inventory.hosts.values()])
    if (problems.length) throw new InventoryErrors(problems)
    const command = mask(`playbook ${spec.name} ${argv.join(' ')}`.trim())
    if (spec.changes) {
      lock = await acquireRunLock(inventory.file, { command, warn: (m) => process.stderr.write(`WARNING: ${m}\n`) })
    }
    const holder = { runId: randomUUID(), description: `pid ${process.pid} on ${hostname()}: ${command}` }
    const connect = async (host: string) => {
      const conn = await SshConnection.connect(inventory.hosts.get(host)!.connection)
      connections.push(conn)
      if (spec.changes) releases.push((await takeHostLock(conn, holder, stateDir(inventory, host))).release)
      return conn
    }
    const fleet = fleetOf(inventory, connect, (line) => process.stdout.write(mask(line) + '\n'))
    const outcome = await spec.run(fleet, values)
    code = outcome.code
    if (typeof values.json === 'string') await writeJson(values.json, outcome.report)
  } catch (error) {
    code = error instanceof HelpRequested || error instanceof InputError || error instanceof InventoryErrors ? 1 : 2
    if (error instanceof HelpRequested) {
      process.stdout.write(error.usage + '\n')
      code = 0
    } else process.stderr.write(`ERROR: ${mask(error instanceof Error ? error.message : String(error))}\n`)
  } finally {
    await Promise.all(releases.map((release) => release().catch(() => undefined)))
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)))
    lock?.release()
  }
  if (!spec.argv) process.exitCode = code
  return code
}

/** The document, secrets masked, into the file (or standard output for `-`). */
async function writeJson(file: string, report: unknown): Promise<void> {
  const text = mask(JSON.stringify(report, null, 2)) + '\n'
  if (file === '-') process.stdout.write(text)
  else {
    await mkdir(dirname(resolve(file)), { recursive: true })
    await writeFile(file, text)
  }
}

/** A positive whole number of seconds from an option, or its default. */
export function secondsOption(values: Record<string, OptionValue>, name: string, fallback: number): number {
  const value = values[name] === undefined ? fallback : Number(values[name])
  if (!Number.isInteger(value) || value < 1 || value > 3600)
    throw new InputError(`--${name} must be a whole number of seconds between 1 and 3600`)
  return value
}
