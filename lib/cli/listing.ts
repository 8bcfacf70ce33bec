/**
 * --list-hosts, --list-tasks and --list-tags: what a playbook would do, printed
 * without connecting to any host and without writing anything.
 */
import type { Inventory, Play } from '../types.ts'
import type { Reporter } from '../output/reporter.ts'
import { listPlays, playHosts } from '../play/task-list.ts'
import type { CliOptions } from './args.ts'

export type ListKind = 'hosts' | 'tasks' | 'tags'

/** Which list the options ask for, if any. */
export function listKind(options: CliOptions): ListKind | undefined {
  if (options.listHosts) return 'hosts'
  if (options.listTasks) return 'tasks'
  if (options.listTags) return 'tags'
  return undefined
}

const tagList = (tags: Iterable<string>) => `[${[...tags].sort().join(', ')}]`

export async function printListing(
  kind: ListKind,
  name: string,
  plays: Play[],
  inventory: Inventory,
  options: CliOptions,
  reporter: Reporter,
) {
  reporter.line(`playbook: ${name}`)
  if (kind === 'hosts') {
    plays.forEach((play, i) => {
      const hosts = playHosts(inventory, play, options.limit)
      reporter.line(
        `\n  play #${i + 1} (${play.hosts}): ${play.name}\n    hosts (${hosts.length}): ${hosts.join(', ')}`,
      )
    })
    return
  }
  const listed = await listPlays(plays, inventory, {
    limit: options.limit,
    tags: options.tags,
    skipTags: options.skipTags,
  })
  listed.forEach((play, i) => {
    reporter.line(`\n  play #${i + 1} (${plays[i]!.hosts}): ${play.name}`)
    if (kind === 'tasks') {
      reporter.line('    tasks:')
      const width = Math.max(0, ...play.tasks.map((t) => t.name.length))
      for (const task of play.tasks) reporter.line(`      ${task.name.padEnd(width)}  TAGS: ${tagList(task.tags)}`)
    } else {
      reporter.line(`    TASK TAGS: ${tagList(new Set(play.tasks.flatMap((t) => t.tags)))}`)
    }
    for (const problem of play.problems) reporter.line(`    (${problem})`)
  })
  if (kind === 'tags')
    reporter.line(`\n  ALL TAGS: ${tagList(new Set(listed.flatMap((p) => p.tasks.flatMap((t) => t.tags))))}`)
}
