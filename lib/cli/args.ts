/**
 * Command-line options of every playbook, as Ansible users know them:
 * -i, -l/--limit, -e, -C/--check, -D/--diff, -t/--tags, --skip-tags,
 * -f/--forks, -v, --json, --force-handlers, --list-hosts.
 */
import { InputError } from '../types.ts'

export interface CliOptions {
  inventory: string
  limit?: string
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
  /** Arguments the engine does not know, left for the playbook (e.g. a drill's --duration). */
  rest: string[]
}

export const USAGE = `usage: npx zx playbooks/<name>.ts -i INVENTORY [options]
  -i, --inventory FILE   inventory YAML file (required)
  -l, --limit PATTERN    only hosts matching the pattern (a, a:b, a:&b, a:!b)
  -e, --extra-vars K=V   extra variable (or @file.yml); highest precedence; repeatable
  -C, --check            touch nothing; report what would change
  -D, --diff             show file differences
  -t, --tags T1,T2       only tasks with these tags (role names are tags)
      --skip-tags T1,T2  skip tasks with these tags
  -f, --forks N          hosts in parallel (default 10)
  -v, -vv                more output
      --json FILE        write a machine-readable report
      --force-handlers   run notified handlers even after a failure
      --list-hosts       list the hosts each play would run on, and stop`

export function parseArgs(argv: string[]): CliOptions {
  const o: CliOptions = {
    inventory: '',
    extraVars: [],
    check: false,
    diff: false,
    tags: [],
    skipTags: [],
    forks: 10,
    verbosity: 0,
    forceHandlers: false,
    listHosts: false,
    rest: [],
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const flag = eq > 0 ? arg.slice(0, eq) : arg
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined || (inline === undefined && v.startsWith('-') && v.length > 1)) {
        throw new InputError(`option ${flag} needs a value\n${USAGE}`)
      }
      return v
    }
    const list = () =>
      value()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    switch (flag) {
      case '-i':
      case '--inventory':
        o.inventory = value()
        break
      case '-l':
      case '--limit':
        o.limit = value()
        break
      case '-e':
      case '--extra-vars':
        o.extraVars.push(value())
        break
      case '-C':
      case '--check':
        o.check = true
        break
      case '-D':
      case '--diff':
        o.diff = true
        break
      case '-t':
      case '--tags':
        o.tags.push(...list())
        break
      case '--skip-tags':
        o.skipTags.push(...list())
        break
      case '-f':
      case '--forks': {
        const n = Number(value())
        if (!Number.isInteger(n) || n < 1) throw new InputError('--forks must be a positive whole number')
        o.forks = n
        break
      }
      case '-v':
      case '-vv':
      case '-vvv':
        o.verbosity += flag.length - 1
        break
      case '--json':
        o.json = value()
        break
      case '--force-handlers':
        o.forceHandlers = true
        break
      case '--list-hosts':
        o.listHosts = true
        break
      case '-h':
      case '--help':
        throw new InputError(USAGE)
      default:
        o.rest.push(arg)
    }
  }
  if (!o.inventory) throw new InputError(`an inventory is required (-i FILE)\n${USAGE}`)
  return o
}

/** The arguments meant for the playbook script: everything after the script's own path in argv. */
export function scriptArgs(argv: string[], scriptPath?: string): string[] {
  if (scriptPath) {
    const at = argv.findIndex((a, i) => i > 0 && a.endsWith('.ts') && scriptPath.endsWith(a.replace(/^\.\//, '')))
    if (at >= 0) return argv.slice(at + 1)
  }
  return argv.slice(2)
}
