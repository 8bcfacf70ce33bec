/**
 * The one command-line parser of every hastack CLI (playbooks, the lab, scripts):
 * node:util parseArgs in strict mode, driven by a table of options that also
 * prints the usage. Unknown options are refused by name with a did-you-mean,
 * short flags combine (`-CD`, `-vvv`), `--help`/`-h` asks for the usage.
 */
import { parseArgs as nodeParseArgs } from 'node:util'
import { InputError } from '../types.ts'

export interface OptionSpec {
  /** `number` is read as a string and must be a finite number. */
  type: 'string' | 'boolean' | 'number'
  short?: string
  /** Repeatable: the values come back as an array (a count for repeated booleans such as -vvv). */
  multiple?: boolean
  /** One line for the usage text. */
  description: string
  /** Shown after the option in the usage text, e.g. FILE. */
  valueName?: string
}

export type OptionSpecs = Record<string, OptionSpec>

/** Asked for with --help or -h: the caller prints `usage` and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super(usage)
    this.name = 'HelpRequested'
  }
}

export type OptionValue = string | boolean | number | string[] | number[] | boolean[] | undefined

export interface ParsedCommandLine {
  values: Record<string, OptionValue>
  positionals: string[]
}

/** The usage text: a head line, then one line per option. */
export function usageText(head: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const short = s.short ? `-${s.short}, ` : '    '
    const value = s.type === 'boolean' ? '' : ` ${s.valueName ?? 'VALUE'}`
    return [`  ${short}--${name}${value}`, s.description] as const
  })
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return [
    head,
    ...rows.map(([left, text]) => left.padEnd(width) + text),
    '  -h, --help'.padEnd(width) + 'print this help and exit',
  ].join('\n')
}

/** Edit distance, for did-you-mean (option names are short: the quadratic table is fine). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length]!
}

/** The closest long option to a mistyped one, when it is close enough to be a typo. */
export function closestOption(given: string, names: string[]): string | undefined {
  const bare = given.replace(/^-+/, '').split('=')[0]!
  let best: { name: string; d: number } | undefined
  for (const name of names) {
    const d = distance(bare, name)
    if (!best || d < best.d) best = { name, d }
  }
  return best && best.d <= Math.max(1, Math.floor(bare.length / 3)) ? `--${best.name}` : undefined
}

/** Turn node's parse errors into an InputError naming the option. */
function explain(error: Error & { code?: string }, names: string[], usage: string): InputError {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? ''
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const guess = quoted.startsWith('--') ? closestOption(quoted, names) : undefined
    return new InputError(`unknown option ${quoted}${guess ? ` (did you mean ${guess}?)` : ''}\n${usage}`)
  }
  if (error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
    return new InputError(`unexpected argument ${quoted}\n${usage}`)
  const option = /--[a-z0-9-]+/.exec(quoted)?.[0] ?? quoted
  if (/argument missing/.test(error.message)) return new InputError(`option ${option} needs a value\n${usage}`)
  if (/ambiguous/.test(error.message))
    return new InputError(`option ${option} needs a value (got another option)\n${usage}`)
  if (/does not take an argument/.test(error.message))
    return new InputError(`option ${option} takes no value\n${usage}`)
  return new InputError(`${error.message}\n${usage}`)
}

function toNumber(name: string, raw: string): number {
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n))
    throw new InputError(`option --${name} must be a number, got ${JSON.stringify(raw)}`)
  return n
}

/**
 * Parse argv strictly against the specs. Throws HelpRequested for --help/-h and InputError
 * for anything unknown or malformed. Repeated booleans come back as a count.
 */
export function parseCommandLine(
  argv: string[],
  specs: OptionSpecs,
  usageHead: string,
  allowPositionals = false,
): ParsedCommandLine {
  const usage = usageText(usageHead, specs)
  const names = Object.keys(specs)
  if (argv.includes('--help') || (argv.includes('-h') && !Object.values(specs).some((s) => s.short === 'h'))) {
    const end = argv.indexOf('--')
    const at = Math.max(argv.indexOf('--help'), argv.indexOf('-h'))
    if (end < 0 || at < end) throw new HelpRequested(usage)
  }
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, s]) => {
      const type = s.type === 'boolean' ? ('boolean' as const) : ('string' as const)
      return [name, { type, multiple: Boolean(s.multiple), ...(s.short ? { short: s.short } : {}) }]
    }),
  )
  let parsed: { values: Record<string, unknown>; positionals: string[] }
  try {
    parsed = nodeParseArgs({ args: argv, options, strict: true, allowPositionals })
  } catch (error) {
    throw explain(error as Error & { code?: string }, names, usage)
  }
  const values: Record<string, OptionValue> = {}
  for (const [name, s] of Object.entries(specs)) {
    const raw = parsed.values[name]
    if (raw === undefined) continue
    if (s.type === 'boolean') {
      const list = Array.isArray(raw) ? (raw as boolean[]) : [raw as boolean]
      values[name] = s.multiple ? list.length : list.length > 0
    } else if (s.type === 'number') {
      const list = (Array.isArray(raw) ? raw : [raw]) as string[]
      const numbers = list.map((v) => toNumber(name, v))
      values[name] = s.multiple ? numbers : numbers[numbers.length - 1]
    } else {
      values[name] = raw as string | string[]
    }
  }
  return { values, positionals: parsed.positionals }
}

/** For small scripts: parse, or print the usage and exit 0 on --help, or print the problem and exit 1. */
export function parseCommandLineOrExit(
  argv: string[],
  specs: OptionSpecs,
  usageHead: string,
  allowPositionals = false,
) {
  try {
    return parseCommandLine(argv, specs, usageHead, allowPositionals)
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.usage + '\n')
      process.exit(0)
    }
    process.stderr.write(`ERROR: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
}
