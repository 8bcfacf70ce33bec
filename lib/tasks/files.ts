/**
 * File tasks: a file with given content, a rendered template, a directory, a
 * symbolic link, a line in a file, a path that must be absent. Each compares
 * the host with the wanted state (checksum, mode, owner) and changes only what
 * differs; under --diff it shows a unified diff of the content. Content is
 * written atomically on the host (see `putScript`) and, with `validate`,
 * checked by the host's own tool before it replaces the live file.
 */
import { createHash } from 'node:crypto'
import type { Plan, Probe, TaskContext, Vars } from '../types.ts'
import { sh } from '../connection/quote.ts'
import { pathState, pathStateProbe, type PathState } from '../facts/files.ts'
import { isBinary, unifiedDiff } from '../output/diff.ts'
import { renderTemplate } from '../template.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'

export interface Ownership {
  /** Octal mode, e.g. "0640" (default 0644 for files, 0755 for directories). */
  mode?: string
  owner?: string
  group?: string
}

/** A checker run on the new content before it replaces the file. */
export interface Validated {
  /**
   * Command with `%s` for the new content's temp file, like Ansible's `validate:`
   * (`haproxy -c -f %s`). A failing check fails the task with the checker's output
   * and leaves the live file untouched.
   */
  validate?: string
}

export interface FileArgs extends TaskOptions, Ownership, Validated {
  path: string
  content: string | Buffer
}

const MAX_DIFF_BYTES = 256 * 1024

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex')
}

/** The differences in mode, owner and group between the state and the wanted ownership. */
function ownershipChanges(state: PathState, want: Required<Ownership>): string[] {
  const changes: string[] = []
  if (state.mode !== want.mode) changes.push(`mode ${state.mode} → ${want.mode}`)
  if (state.owner !== want.owner) changes.push(`owner ${state.owner} → ${want.owner}`)
  if (state.group !== want.group) changes.push(`group ${state.group} → ${want.group}`)
  return changes
}

function withDefaults(o: Ownership, mode: string): Required<Ownership> {
  return { mode: o.mode ?? mode, owner: o.owner ?? 'root', group: o.group ?? o.owner ?? 'root' }
}

/** Check and plan one file's content and ownership; shared by file(), template() and lineInFile(). */
async function planFile(
  ctx: TaskContext,
  path: string,
  content: string | Buffer,
  options: Ownership & Validated,
): Promise<Plan> {
  const want = withDefaults(options, '0644')
  const state = await pathState(ctx.conn, path)
  if (state.type === 'directory' || state.type === 'other') {
    throw new Error(`${path} exists and is not a regular file (${state.type})`)
  }
  const putOptions = options.validate ? { ...want, validate: options.validate } : want
  const put = async () => ctx.conn.put(path, content, putOptions)
  if (state.type === 'absent' || state.type === 'link') {
    const diff = ctx.diff && !isBinary(content) ? unifiedDiff(path, undefined, content.toString()) : undefined
    return {
      change: true,
      reason: state.type === 'absent' ? 'file is missing' : 'a link stands where the file belongs',
      diff,
      apply: put,
    }
  }
  if (state.sha256 !== sha256(content)) {
    let diff: string | undefined
    if (ctx.diff && !isBinary(content) && (state.size ?? 0) <= MAX_DIFF_BYTES) {
      const current = (await ctx.conn.get(path)).toString()
      diff = isBinary(current) ? undefined : unifiedDiff(path, current, content.toString())
    }
    return { change: true, reason: 'content differs', diff, apply: put }
  }
  const changes = ownershipChanges(state, want)
  if (changes.length === 0) return noChange()
  return {
    change: true,
    reason: changes.join(', '),
    apply: async () => {
      await ctx.conn.run(sh`chown ${`${want.owner}:${want.group}`} -- ${path} && chmod ${want.mode} -- ${path}`, {
        check: true,
      })
    },
  }
}

/** Ensure a file has exactly this content, mode and owner. */
export function file(args: FileArgs) {
  const probes = [pathStateProbe(args.path)]
  return defineTask(`Ensure ${args.path} is current`, { ...args, probes }, (ctx) =>
    planFile(ctx, args.path, args.content, args),
  )
}

export interface TemplateArgs extends TaskOptions, Ownership, Validated {
  /** Path below templates/, e.g. "patroni/patroni.yml.ejs". */
  src: string
  dest: string
  /** Extra variables for this template only. */
  vars?: Vars
}

/** Render an EJS template for the host and ensure the destination matches it. */
export function template(args: TemplateArgs) {
  const probes = [pathStateProbe(args.dest)]
  return defineTask(`Ensure ${args.dest} is current`, { ...args, probes }, async (ctx) => {
    const content = renderTemplate(args.src, ctx.host, args.vars)
    return planFile(ctx, args.dest, content, args)
  })
}

export interface DirectoryArgs extends TaskOptions, Ownership {
  path: string
}

/** Ensure a directory exists with this mode and owner (parents are created as root). */
export function directory(args: DirectoryArgs) {
  const probes = [pathStateProbe(args.path)]
  return defineTask(`Ensure directory ${args.path} exists`, { ...args, probes }, async (ctx) => {
    const want = withDefaults(args, '0755')
    const state = await pathState(ctx.conn, args.path)
    const fix = sh`chown ${`${want.owner}:${want.group}`} -- ${args.path} && chmod ${want.mode} -- ${args.path}`
    if (state.type === 'absent') {
      return {
        change: true,
        reason: 'directory is missing',
        apply: async () => {
          await ctx.conn.run(sh`mkdir -p -- ${args.path}` + ` && ${fix}`, { check: true })
        },
      }
    }
    if (state.type !== 'directory') throw new Error(`${args.path} exists and is not a directory (${state.type})`)
    const changes = ownershipChanges(state, want)
    if (changes.length === 0) return noChange()
    return {
      change: true,
      reason: changes.join(', '),
      apply: async () => void (await ctx.conn.run(fix, { check: true })),
    }
  })
}

export interface LinkArgs extends TaskOptions {
  path: string
  target: string
}

/** Ensure a symbolic link points at its target. */
export function link(args: LinkArgs) {
  const probes = [pathStateProbe(args.path)]
  return defineTask(`Ensure link ${args.path} → ${args.target}`, { ...args, probes }, async (ctx) => {
    const state = await pathState(ctx.conn, args.path)
    if (state.type === 'link' && state.linkTarget === args.target) return noChange()
    if (state.type === 'directory') throw new Error(`${args.path} is a directory, not a link`)
    return {
      change: true,
      reason: state.type === 'absent' ? 'link is missing' : `points at ${state.linkTarget ?? `a ${state.type}`}`,
      apply: async () => void (await ctx.conn.run(sh`ln -sfn -- ${args.target} ${args.path}`, { check: true })),
    }
  })
}

export interface AbsentArgs extends TaskOptions {
  path: string
}

/** Ensure a path does not exist (files, links and directories alike). */
export function absent(args: AbsentArgs) {
  const probes = [pathStateProbe(args.path)]
  return defineTask(`Ensure ${args.path} is absent`, { ...args, probes }, async (ctx) => {
    const state = await pathState(ctx.conn, args.path)
    if (state.type === 'absent') return noChange()
    return {
      change: true,
      reason: `${state.type} exists`,
      apply: async () => void (await ctx.conn.run(sh`rm -rf -- ${args.path}`, { check: true })),
    }
  })
}

export interface LineInFileArgs extends TaskOptions, Ownership, Validated {
  path: string
  /** The wanted line (without newline). */
  line: string
  /** Lines matching this are replaced by `line` (or removed when state is absent). */
  regexp?: RegExp
  state?: 'present' | 'absent'
  /** Create the file when missing (default true for present). */
  create?: boolean
}

/** The file's new text with the line ensured present or absent (pure, for tests). */
export function editLines(text: string, args: Pick<LineInFileArgs, 'line' | 'regexp' | 'state'>): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n')
  const matches = (l: string) => (args.regexp ? args.regexp.test(l) : l === args.line)
  let out: string[]
  if ((args.state ?? 'present') === 'absent') {
    out = lines.filter((l) => !matches(l))
  } else {
    const at = lines.findIndex(matches)
    out = [...lines]
    if (at >= 0) {
      out[at] = args.line
      // Later duplicates of a regexp match are removed so the setting appears once.
      out = out.filter((l, i) => i <= at || !matches(l))
    } else out.push(args.line)
  }
  return out.length ? out.join('\n') + '\n' : ''
}

/** Ensure one line is present in (or absent from) a file, keeping everything else. */
export function lineInFile(args: LineInFileArgs) {
  const probes: Probe[] = [pathStateProbe(args.path), { kind: 'read', path: args.path }]
  return defineTask(`Ensure a line in ${args.path} is ${args.state ?? 'present'}`, { ...args, probes }, async (ctx) => {
    const state = await pathState(ctx.conn, args.path)
    if (state.type === 'absent') {
      if ((args.state ?? 'present') === 'absent' || args.create === false) return noChange('file is absent')
      return planFile(ctx, args.path, editLines('', args), args)
    }
    const current = (await ctx.conn.get(args.path)).toString()
    const wanted = editLines(current, args)
    // Keep the file's current ownership unless the caller asked for another.
    return planFile(ctx, args.path, wanted, {
      mode: args.mode ?? state.mode,
      owner: args.owner ?? state.owner,
      group: args.group ?? state.group,
      validate: args.validate,
    })
  })
}
