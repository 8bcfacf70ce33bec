/**
 * Command-line options of every playbook, as Ansible users know them
 * (-i, -l, -e, -C, -D, -t, --skip-tags, -f, -v, --json, --force-handlers,
 * --list-hosts/-tasks/-tags, --start-at-task, --step), the run lock's
 * --wait-lock, and the options a playbook declares for itself.
 */
import { InputError } from '../types.ts'
import { parseCommandLine, type OptionSpecs, type OptionValue } from './parse.ts'

export interface CliOptions {
  inventory: string
  limit?: string
  /** Raw `-e` arguments: `k=v`, `@file.yml` or a JSON object. */
  extraVars: string[]
  check: boolean
  diff: boolean
  tags: string[]
  skipTags: string[]
  forks: number
  verbosity: number
  json?: string
  forceHandlers: boolean
  listHosts: boolean
  listTasks: boolean
  listTags: boolean
  /** Skip every task before the first whose name matches (exact, or a glob with `*`). */
  startAtTask?: string
  /** Ask before each task. */
  step: boolean
  /** Wait this many seconds for another run's lock on the inventory (default 0: fail at once). */
  waitLockSeconds: number
  /** The playbook's own options (declared in its PlaybookSpec), by name. */
  playbookOptions: Record<string, OptionValue>
}

export const ENGINE_OPTIONS: OptionSpecs = {
  inventory: { type: 'string', short: 'i', valueName: 'FILE', description: 'inventory YAML file (required)' },
  limit: {
    type: 'string',
    short: 'l',
    valueName: 'PATTERN',
    description: 'only hosts matching the pattern (a, a:b, a:&b, a:!b)',
  },
  'extra-vars': {
    type: 'string',
    short: 'e',
    multiple: true,
    valueName: 'VARS',
    description: 'extra variables: k=v, @file.yml or JSON; highest precedence; repeatable',
  },
  check: { type: 'boolean', short: 'C', description: 'touch nothing; report what would change' },
  diff: { type: 'boolean', short: 'D', description: 'show file differences' },
  tags: {
    type: 'string',
    short: 't',
    multiple: true,
    valueName: 'T1,T2',
    description: 'only tasks with these tags (role names are tags)',
  },
  'skip-tags': { type: 'string', multiple: true, valueName: 'T1,T2', description: 'skip tasks with these tags' },
  forks: { type: 'number', short: 'f', valueName: 'N', description: 'hosts in parallel (default 10)' },
  verbose: { type: 'boolean', short: 'v', multiple: true, description: 'more output (-vv, -vvv: more still)' },
  json: { type: 'string', valueName: 'FILE', description: 'write a machine-readable report' },
  'force-handlers': { type: 'boolean', description: 'run notified handlers even after a failure' },
  'list-hosts': { type: 'boolean', description: 'list the hosts of each play and stop (connects to nothing)' },
  'list-tasks': { type: 'boolean', description: 'list the tasks of each play, as on a fresh host, and stop' },
  'list-tags': { type: 'boolean', description: 'list the tags of each play and stop' },
  'start-at-task': {
    type: 'string',
    valueName: 'NAME',
    description: 'skip the tasks before the first one named NAME (* globs)',
  },
  step: { type: 'boolean', description: 'ask before each task: (y)es, (n)o, (c)ontinue' },
  'wait-lock': { type: 'number', valueName: 'SECONDS', description: 'wait for another run on this inventory to end' },
}

export const USAGE_HEAD = 'usage: npx zx playbooks/<name>.ts -i INVENTORY [options]'

/** The usage text of a playbook: the engine's options, then the playbook's own. */
export function playbookOptionSpecs(own: OptionSpecs = {}): OptionSpecs {
  for (const name of Object.keys(own)) {
    if (name in ENGINE_OPTIONS || name === 'help')
      throw new Error(`playbook option --${name} clashes with an engine option`)
  }
  return { ...ENGINE_OPTIONS, ...own }
}

const list = (raw: OptionValue): string[] =>
  ((raw as string[] | undefined) ?? []).flatMap((v) => v.split(',').map((s) => s.trim())).filter(Boolean)

/** Parse a playbook's command line. Throws HelpRequested (--help) or InputError. */
export function parseArgs(argv: string[], own: OptionSpecs = {}): CliOptions {
  const specs = playbookOptionSpecs(own)
  const { values: v } = parseCommandLine(argv, specs, USAGE_HEAD)
  const forks = (v.forks as number | undefined) ?? 10
  if (!Number.isInteger(forks) || forks < 1) throw new InputError('--forks must be a positive whole number')
  const waitLockSeconds = (v['wait-lock'] as number | undefined) ?? 0
  if (waitLockSeconds < 0 || waitLockSeconds > 86_400)
    throw new InputError('--wait-lock must be between 0 and 86400 seconds')
  if (!v.inventory) throw new InputError(`an inventory is required (-i FILE)\nrun with --help for the options`)
  const listing = [v['list-hosts'], v['list-tasks'], v['list-tags']].filter(Boolean).length
  if (listing > 1) throw new InputError('use one of --list-hosts, --list-tasks and --list-tags at a time')
  const startAtTask = v['start-at-task'] as string | undefined
  if (startAtTask !== undefined && startAtTask.trim() === '') throw new InputError('--start-at-task needs a task name')
  return {
    inventory: v.inventory as string,
    limit: v.limit as string | undefined,
    extraVars: (v['extra-vars'] as string[] | undefined) ?? [],
    check: Boolean(v.check),
    diff: Boolean(v.diff),
    tags: list(v.tags),
    skipTags: list(v['skip-tags']),
    forks,
    verbosity: (v.verbose as number | undefined) ?? 0,
    json: v.json as string | undefined,
    forceHandlers: Boolean(v['force-handlers']),
    listHosts: Boolean(v['list-hosts']),
    listTasks: Boolean(v['list-tasks']),
    listTags: Boolean(v['list-tags']),
    startAtTask,
    step: Boolean(v.step),
    waitLockSeconds,
    playbookOptions: Object.fromEntries(Object.keys(own).map((name) => [name, v[name]])),
  }
}

/** The arguments meant for the playbook script: everything after the script's own path in argv. */
export function scriptArgs(argv: string[], scriptPath?: string): string[] {
  if (scriptPath) {
    const at = argv.findIndex((a, i) => i > 0 && a.endsWith('.ts') && scriptPath.endsWith(a.replace(/^\.\//, '')))
    if (at >= 0) return argv.slice(at + 1)
  }
  return argv.slice(2)
}
