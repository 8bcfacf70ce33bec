/**
 * --list-tasks and --list-tags without connecting: each play's roles run against
 * a recording HostRun whose do() only notes the task's name and tags, whose
 * queries answer empty and whose facts are placeholders, so the list shows the
 * tasks as on a fresh host. Nothing is connected to and nothing is written.
 */
import type {
  Connection,
  DoAllOptions,
  Facts,
  HeldCommand,
  HostRun,
  Inventory,
  Play,
  RunResult,
  Task,
  TaskOutcome,
  Vars,
} from '../types.ts'
import { selectedByTags } from './host-run.ts'

export interface ListedTask {
  name: string
  tags: string[]
}

export interface ListedPlay {
  name: string
  hosts: string[]
  /** Every task any host of the play would run, in first-seen order. */
  tasks: ListedTask[]
  /** Role code that could not go on without a real host: where the listing of that role stopped. */
  problems: string[]
}

const EMPTY: RunResult = { code: 0, stdout: '', stderr: '', durationMs: 0 }

/** A connection that runs nothing: every command succeeds with no output. */
class NoConnection implements Connection {
  readonly commandCount = 0
  constructor(readonly host: string) {}
  async run(): Promise<RunResult> {
    return EMPTY
  }
  async put(): Promise<void> {}
  async get(): Promise<Buffer> {
    return Buffer.alloc(0)
  }
  async hold(): Promise<HeldCommand> {
    return { firstLine: '', release: async () => {} }
  }
  async close(): Promise<void> {}
}

/** Facts of a fresh Debian 12 host at the inventory address. */
function placeholderFacts(name: string, address: unknown): Facts {
  const ip = typeof address === 'string' ? address : '192.0.2.1'
  return {
    hostname: name,
    fqdn: name,
    os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    arch: 'x86_64',
    cpus: 2,
    memoryMb: 2048,
    ipv4: { eth0: [ip] },
    defaultIpv4: ip,
    kernel: '',
    systemd: true,
  }
}

/** A HostRun that records the tasks it is given instead of running them. */
class RecordingHostRun implements HostRun {
  readonly check = true
  readonly diff = false
  /** As on a fresh host: a listing shows every task a first run would run. */
  readonly settled = false
  readonly conn: Connection
  readonly facts: Facts
  readonly vars: Vars
  readonly groups: string[]
  roleTags: string[] = []
  readonly recorded: ListedTask[] = []
  private readonly onceResults = new Map<string, Promise<unknown>>()

  constructor(
    readonly name: string,
    readonly inventory: Inventory,
  ) {
    const host = inventory.hosts.get(name)!
    this.vars = host.vars
    this.groups = host.groups
    this.conn = new NoConnection(name)
    this.facts = placeholderFacts(name, host.vars.address)
  }

  hostvars(name: string): Vars {
    const host = this.inventory.hosts.get(name)
    if (!host) throw new Error(`no host named ${name} in the inventory`)
    return host.vars
  }

  async do(task: Task): Promise<TaskOutcome> {
    this.recorded.push({ name: task.name, tags: [...new Set([...(task.tags ?? []), ...this.roleTags])] })
    return { task: task.name, status: 'ok', changed: false, durationMs: 0 }
  }

  async doAll(tasks: Task[], options: DoAllOptions = {}): Promise<TaskOutcome[]> {
    const outcomes: TaskOutcome[] = []
    for (const task of [...tasks, ...(options.afterHandlers ?? [])]) outcomes.push(await this.do(task))
    return outcomes
  }

  async query(): Promise<RunResult> {
    return EMPTY
  }

  async queryAll(questions: ReadonlyArray<unknown>): Promise<RunResult[]> {
    return questions.map(() => EMPTY)
  }

  notify(): void {}

  async flushHandlers(): Promise<void> {}

  once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (!this.onceResults.has(key)) this.onceResults.set(key, fn())
    return this.onceResults.get(key) as Promise<T>
  }

  oneAtATime<T>(_key: string, fn: () => Promise<T>): Promise<T> {
    return fn()
  }

  log(): void {}
}

export interface ListOptions {
  limit?: string
  tags?: string[]
  skipTags?: string[]
}

/** The hosts a play would run on: its pattern narrowed by --limit. */
export function playHosts(inventory: Inventory, play: Play, limit?: string): string[] {
  const hosts = inventory.select(play.hosts)
  if (!limit) return hosts
  const allowed = new Set(inventory.select(limit))
  return hosts.filter((h) => allowed.has(h))
}

/** Record what every host of every play would be asked to do, filtered by the tag options. */
export async function listPlays(plays: Play[], inventory: Inventory, options: ListOptions = {}): Promise<ListedPlay[]> {
  const listed: ListedPlay[] = []
  for (const play of plays) {
    const hosts = playHosts(inventory, play, options.limit)
    const tasks = new Map<string, ListedTask>()
    const problems = new Set<string>()
    for (const host of hosts) {
      const h = new RecordingHostRun(host, inventory)
      for (const role of play.roles ?? []) {
        h.roleTags = [role.name]
        await role
          .tasks(h)
          .catch((error: Error) => problems.add(`role ${role.name}: listing stopped (${error.message})`))
      }
      h.roleTags = []
      if (play.tasks)
        await play.tasks(h).catch((error: Error) => problems.add(`play tasks: listing stopped (${error.message})`))
      for (const task of h.recorded) if (!tasks.has(task.name)) tasks.set(task.name, task)
    }
    const selected = [...tasks.values()].filter((t) =>
      selectedByTags(t.tags, options.tags ?? [], options.skipTags ?? []),
    )
    listed.push({ name: play.name, hosts, tasks: selected, problems: [...problems] })
  }
  return listed
}
