/**
 * System users and groups: created when missing, with the wanted home,
 * shell and supplementary groups; existing accounts are adjusted, never
 * recreated. The lookups are probes (a run of tasks reads them with the others in one round trip).
 */
import { sh } from '../connection/quote.ts'
import { groupLookupCommand, userLookupCommand } from '../facts/accounts.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'

export interface GroupArgs extends TaskOptions {
  group: string
  system?: boolean
}

/** Ensure a group exists. */
export function group(args: GroupArgs) {
  const lookup = groupLookupCommand(args.group)
  return defineTask(
    `Ensure group ${args.group} exists`,
    { ...args, probes: [{ kind: 'group', name: args.group }] },
    async (ctx) => {
      const found = await ctx.conn.run(lookup)
      if (found.code === 0) return noChange()
      return {
        change: true,
        reason: 'group is missing',
        apply: async () =>
          void (await ctx.conn.run(sh`groupadd ${args.system ? ['--system'] : []} ${args.group}`, { check: true })),
      }
    },
  )
}

export interface UserArgs extends TaskOptions {
  user: string
  system?: boolean
  home?: string
  shell?: string
  /** Supplementary groups the user must belong to (others are kept). */
  groups?: string[]
}

/** Parse `getent passwd` and `id -nG` output into home, shell and groups. */
export function parseUser(passwd: string, groups: string): { home: string; shell: string; groups: string[] } {
  const fields = passwd.trim().split(':')
  return { home: fields[5] ?? '', shell: fields[6] ?? '', groups: groups.trim().split(/\s+/).filter(Boolean) }
}

/** Ensure a user exists with the given home, shell and supplementary groups. */
export function user(args: UserArgs) {
  const lookup = userLookupCommand(args.user)
  return defineTask(
    `Ensure user ${args.user} exists`,
    { ...args, probes: [{ kind: 'user', name: args.user }] },
    async (ctx) => {
      const found = await ctx.conn.run(lookup)
      if (found.code !== 0) {
        const opts = [
          ...(args.system ? ['--system'] : []),
          ...(args.home ? ['--home-dir', args.home, '--create-home'] : []),
          ...(args.shell ? ['--shell', args.shell] : []),
          ...(args.groups?.length ? ['--groups', args.groups.join(',')] : []),
        ]
        return {
          change: true,
          reason: 'user is missing',
          apply: async () => void (await ctx.conn.run(sh`useradd ${opts} ${args.user}`, { check: true })),
        }
      }
      const [passwd = '', ids = ''] = found.stdout.split('\n')
      const current = parseUser(passwd, ids)
      const mod: string[] = []
      const why: string[] = []
      const change = (reason: string, ...flags: string[]) => {
        mod.push(...flags)
        why.push(reason)
      }
      if (args.home && current.home !== args.home) change(`home ${current.home} → ${args.home}`, '--home', args.home)
      if (args.shell && current.shell !== args.shell)
        change(`shell ${current.shell} → ${args.shell}`, '--shell', args.shell)
      const missing = (args.groups ?? []).filter((g) => !current.groups.includes(g))
      if (missing.length) change(`add to ${missing.join(', ')}`, '--append', '--groups', missing.join(','))
      if (mod.length === 0) return noChange()
      return {
        change: true,
        reason: why.join(', '),
        apply: async () => void (await ctx.conn.run(sh`usermod ${mod} ${args.user}`, { check: true })),
      }
    },
  )
}
