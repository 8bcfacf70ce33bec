/**
 * The typed contracts between the engine's parts: inventory, connection, tasks,
 * roles, plays and reporting. Every module of the engine, the roles and the playbooks talks
 * through these interfaces and nothing else.
 */

// ───────────────────────────── inventory ─────────────────────────────

/** Where a value came from: a file and a 1-based line, for error messages. */
export interface Origin {
  file: string
  line: number
  column?: number
  /** The key path inside that file, for example `all.children.db.vars.patroni_ttl`. */
  key?: string
}

/** Variables of one host after every layer of precedence is merged. */
export type Vars = Record<string, unknown>

/**
 * How to reach a host. Read from the host's variables:
 * `address` (required; the cluster address), `ssh_host` (where SSH connects, default
 * `address`), `ssh_user` (default `root`), `ssh_port` (default 22),
 * `ssh_key` (private key path; the SSH agent when absent), `ssh_jump`
 * (`user@host:port` of a jump host), `become` (sudo; default true when
 * `ssh_user` is not root), `ssh_connect_timeout` (seconds, default 10).
 */
export interface ConnectionSpec {
  host: string
  address: string
  user: string
  port: number
  key?: string
  jump?: { host: string; port: number; user: string; key?: string }
  become: boolean
  connectTimeoutMs: number
  /**
   * Pinned host keys (OpenSSH known_hosts) for the target and its jump host, and whether an
   * unknown host's key is recorded (`accept-new`) or refused (`strict`). Absent: keys are
   * pinned in memory for the life of the process only.
   */
  knownHosts?: { file: string; checking: 'accept-new' | 'strict' }
  /**
   * Run sudo commands through one long-lived privileged session per connection (one sudo start
   * per host per run) instead of a `sudo` per command. Absent: on.
   */
  persistentSession?: boolean
}

export interface InventoryHost {
  name: string
  /** Every group the host belongs to, `all` first, parents before children. */
  groups: string[]
  /** Merged variables (inventory layers and extra vars; role defaults are added per play). */
  vars: Vars
  /** Where each variable's winning value was set. */
  origins: Record<string, Origin>
  connection: ConnectionSpec
}

export interface InventoryGroup {
  name: string
  /** Hosts directly in this group. */
  hosts: string[]
  children: string[]
  parents: string[]
  vars: Vars
}

export interface Inventory {
  /** Absolute path of the inventory file. */
  file: string
  /** Hosts in the order the inventory first names them. */
  hosts: Map<string, InventoryHost>
  groups: Map<string, InventoryGroup>
  /** Generated and stored secrets, by variable name. */
  secrets: Record<string, string>
  /** All hosts of a group, recursively, in inventory order. */
  groupHosts(group: string): string[]
  /** Hosts matching an Ansible-style pattern (`a:b`, `a:&b`, `a:!b`, `*`, `all`). */
  select(pattern: string): string[]
}

// ───────────────────────────── connection ─────────────────────────────

export interface RunOptions {
  /** Run as root through `sudo -n` (default: the host's `become`). */
  sudo?: boolean
  /** Run as this user instead of root when escalating. */
  user?: string
  env?: Record<string, string>
  cwd?: string
  /** Kill the command after this many milliseconds (default 300 000). */
  timeoutMs?: number
  /** Data written to the command's standard input. */
  stdin?: string | Buffer
  /** Throw a CommandError on a non-zero exit (default false: the caller looks at `code`). */
  check?: boolean
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
  durationMs: number
}

export interface PutOptions {
  /** Octal string such as `0640`. */
  mode?: string
  owner?: string
  group?: string
  /**
   * A command that checks the new content before it replaces the file, `%s`
   * standing for the temp file (`haproxy -c -f %s`); failing leaves the file as it was.
   */
  validate?: string
}

/** One open connection to a host, reused for every command of a run. */
export interface Connection {
  readonly host: string
  /** A string is passed to `sh -c` as is; an array is quoted word by word. */
  run(command: string | string[], options?: RunOptions): Promise<RunResult>
  /** Write a file atomically (temp file in the same directory, length and sha256 checked, validated, renamed). */
  put(remotePath: string, content: string | Buffer, options?: PutOptions): Promise<void>
  /** Read a remote file (as root when becoming). Throws when absent. */
  get(remotePath: string): Promise<Buffer>
  close(): Promise<void>
  /** Number of commands sent so far (for benchmarks and tests). */
  readonly commandCount: number
  /**
   * Start a command that keeps running until released or the connection closes (a lock held for the
   * whole run), and wait for its first line of output. Rejects with a CommandError when it exits first.
   */
  hold(command: string | string[], options?: RunOptions): Promise<HeldCommand>
  /**
   * Take a lock file as root in what the privileged commands run through (the persistent session), held until
   * that ends with the connection: first line `locked`, or `held <holder>` when another process has it (see
   * lib/connection/session-helper.ts). Undefined where nothing can hold it so: the caller then holds a command.
   */
  holdLock?(request: LockRequest): Promise<HeldCommand | undefined>
  /**
   * Answer several read-only probes in one round trip, in order (see lib/facts/probes.ts). Absent: the
   * connection cannot batch, and each task's check runs its own commands.
   */
  runProbes?(probes: readonly Probe[]): Promise<ProbeAnswer[]>
  /**
   * Start, without waiting, what the privileged commands to come will run through (a persistent session), so
   * it is ready when the first one comes; that one waits for it. Absent: nothing to start ahead.
   */
  startPrivileged?(): void
}

/**
 * A read-only question a task's check asks the host, declared as data so the runner can gather the probes of many
 * tasks in one round trip (lib/facts/probes.ts): a command the check runs as `conn.run(command)` (or with
 * `check: true`; with `stdin`, as `conn.run(command, { stdin })`: a secret it needs travels there, and the probe
 * plan keeps that secret's name, never its value), the path state it reads with `pathState`, the package states it
 * reads with `packageStateCommand`, a unit's state it reads with `unitStateCommand`, whether a TCP port accepts a
 * connection as `portStateCommand` tells (an IPv4 address), a group's or a user's account as `groupLookupCommand`
 * and `userLookupCommand` print it (lib/facts/accounts.ts), a path's `test`, the digest of some files' contents,
 * whether a file holds a line, a file's bytes, a directory's listing or whether a directory holds an entry matching
 * a pattern as `pathTestCommand`, `contentDigestCommand`, `lineInFileCommand`, `fileContentCommand`,
 * `listingCommand` and `entryMatchCommand` answer (lib/facts/files.ts), whether the running host name or a sysctl is
 * a value as `hostnameIsCommand` and `sysctlIsCommand` answer (lib/facts/kernel.ts), the serials of a certificate on
 * disk and of the one a TLS service presents as `serialsCommand` prints them (lib/facts/served.ts), a GET's body and
 * status, whether a URL answers 2xx or whether etcd members say healthy as `httpGetCommand`, `urlReadyCommand` and
 * `healthyCommand` answer (lib/facts/http.ts), or a file it reads with `conn.get(path)`.
 */
export type Probe =
  | { kind: 'run'; command: string; stdin?: string }
  | { kind: 'path'; path: string }
  | { kind: 'packages'; names: string[] }
  | { kind: 'unit'; name: string }
  | { kind: 'port'; address: string; port: number }
  | { kind: 'group'; name: string }
  | { kind: 'user'; name: string }
  | { kind: 'test'; test: PathTest; path: string }
  | { kind: 'digest'; paths: string[] }
  | { kind: 'line'; line: string; path: string }
  | { kind: 'content'; path: string }
  | { kind: 'listing'; dir: string }
  | { kind: 'entry'; dir: string; pattern: string }
  | { kind: 'hostname'; name: string }
  | { kind: 'sysctl'; key: string; value: string }
  | { kind: 'served'; address: string; port: number; starttls?: 'postgres'; certFile: string }
  | { kind: 'get'; url: string; caFile?: string }
  | { kind: 'url'; url: string; caFile?: string }
  | { kind: 'health'; urls: string[]; caFile?: string; certFile?: string; keyFile?: string }
  | { kind: 'read'; path: string }

/** What `test` asks of a path: `-e` (exists, following links) or `-d` (a directory, following links). */
export type PathTest = 'exists' | 'directory'

/** A probe answered as a command's output (every kind but a file read): what `HostRun.queryAll` may ask. */
export type CommandProbe = Exclude<Probe, { kind: 'read' }>

/** A probe's answer: the command's exit code and output, or a read's bytes (code 0) or its failure (non-zero). */
export interface ProbeAnswer {
  code: number
  stdout: Buffer
}

/** A host lock for Connection.holdLock: the state directory, the lock file in it, the holder file, this run's line. */
export interface LockRequest {
  dir: string
  lock: string
  holder: string
  line: string
}

/** A long-lived command started by Connection.hold. */
export interface HeldCommand {
  /** The first line the command printed. */
  firstLine: string
  /** Close the command's input and wait (bounded) for it to exit. */
  release(): Promise<void>
}

// ───────────────────────────── facts ─────────────────────────────

export interface Facts {
  hostname: string
  fqdn: string
  os: { id: string; versionId: string; codename: string; prettyName: string }
  arch: string
  cpus: number
  memoryMb: number
  /** Global IPv4 addresses by interface. */
  ipv4: Record<string, string[]>
  /** The address used to reach the host. */
  defaultIpv4?: string
  /** The IPv4 address this run's SSH connection comes from, as the host sees it (sshd's SSH_CONNECTION). */
  controlAddress?: string
  kernel: string
  /** Whether systemd runs as PID 1. */
  systemd: boolean
}

// ───────────────────────────── tasks ─────────────────────────────

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped'

/** What a task's check found: nothing to do, or a change with its reason and an apply step. */
export type Plan =
  | {
      change: false
      reason?: string
      data?: unknown
      /** Nothing to check here (for example waiting in check mode). */ skip?: boolean
    }
  | {
      change: true
      /** Why the host differs from the wanted state, one short sentence. */
      reason: string
      /** Unified diff shown under --diff (secrets are masked by the engine). */
      diff?: string
      /** Make the change. Never called in check mode. */
      apply(): Promise<ApplyResult | void>
    }

export interface ApplyResult {
  /** Data for the caller, for example a command's output. */
  data?: unknown
  /** A task may decide after the fact that nothing changed (a command's changed rule). */
  changed?: boolean
  stdout?: string
  stderr?: string
}

export interface TaskContext {
  conn: Connection
  host: HostView
  check: boolean
  diff: boolean
  /**
   * True while nothing has changed or failed on any host of the run so far and no handler is pending on
   * this host: a verification of earlier changes (a health gate, `pgbackrest check`) may then read a cheap
   * batched probe instead of its full check (lib/tasks/verify.ts). Absent: false.
   */
  settled?: boolean
  /**
   * Register work that undoes a half-done step if the run is interrupted (SIGINT, SIGTERM), for
   * example removing a policy-rc.d placed for an install. Call the returned function once the step is done.
   */
  onInterrupt?(label: string, cleanup: () => Promise<void>): () => void
}

export interface Task {
  /** A sentence: "Ensure the Patroni configuration is current". */
  name: string
  tags?: string[]
  /** Handler names to notify when the task changed something. */
  notify?: string | string[]
  /** A failure is reported but does not stop the host. */
  ignoreErrors?: boolean
  /** Read the host (read-only!) and say what would change. */
  check(ctx: TaskContext): Promise<Plan>
  /**
   * The read-only commands and reads `check` starts with, exactly as it issues them: `HostRun.doAll` gathers
   * them for a run of tasks in one round trip. A check that asks anything else simply asks it live.
   */
  probes?: Probe[]
}

export interface TaskOutcome {
  task: string
  status: TaskStatus
  changed: boolean
  reason?: string
  durationMs: number
  diff?: string
  data?: unknown
  stdout?: string
  stderr?: string
  error?: string
}

// ───────────────────────────── hosts during a play ─────────────────────────────

/** What templates and tasks may read about the host they run on. */
export interface HostView {
  name: string
  vars: Vars
  facts: Facts
  groups: string[]
  inventory: Inventory
  /** Variables of another host (with role defaults applied), for templates that list peers. */
  hostvars(name: string): Vars
}

/** The handle a role's tasks receive: run tasks, read state, notify handlers. */
export interface HostRun extends HostView {
  readonly check: boolean
  readonly diff: boolean
  readonly conn: Connection
  /** Run one task: check, then apply on change (not in check mode). Throws TaskFailed on failure. */
  do(task: Task): Promise<TaskOutcome>
  /**
   * Run tasks in order exactly as `do` one after another (writes one by one, stop at the first failure),
   * with the probes of all of them answered in one round trip first; a write made by one of them makes the
   * later ones ask their probes again, live.
   */
  doAll(tasks: Task[], options?: DoAllOptions): Promise<TaskOutcome[]>
  /** Run a read-only command now, also in check mode (facts a role needs). */
  query(command: string | string[], options?: RunOptions): Promise<RunResult>
  /**
   * Run several read-only shell commands now, also in check mode, in one round trip when the connection
   * batches probes (else one after another); each answer is the command's exit code and stdout, as `query`.
   * A typed probe is asked as its command (`probeCommand`), which a batch may answer without a process.
   */
  queryAll(questions: ReadonlyArray<string | CommandProbe>): Promise<RunResult[]>
  /** True while nothing has changed or failed on any host of the run so far and no handler is pending here. */
  readonly settled: boolean
  notify(handler: string | string[]): void
  /** Run the handlers notified so far, now. */
  flushHandlers(): Promise<void>
  /**
   * Run fn once for all hosts of the batch (the one way to run something once: wrap `h.do(task)`
   * in it for a run-once task); every host gets the same result, and fails when it failed.
   */
  once<T>(key: string, fn: () => Promise<T>): Promise<T>
  /**
   * Run fn while no other host of the batch runs a section with the same key (one host
   * at a time, in arrival order): rolling restarts. Once fn has failed on a host, the
   * hosts still waiting fail without running it: a roll stops at the first failure.
   */
  oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T>
  log(message: string): void
}

export interface DoAllOptions {
  /**
   * Tasks to run after the tasks and then the handlers notified so far (as `flushHandlers()` and `do` each
   * would): their probes are gathered with the others', and asked again only when a handler ran.
   */
  afterHandlers?: Task[]
}

export type Handler = (h: HostRun) => Promise<unknown>

/**
 * A handler that makes others redundant when both are notified in a run: a restart supersedes a
 * reload (the restarted service reads everything a reload would). The superseded ones do not run.
 */
export interface SupersedingHandler {
  run: Handler
  supersedes: string[]
}

export type HandlerSpec = Handler | SupersedingHandler

// ───────────────────────────── roles and plays ─────────────────────────────

/** JSON Schema of one variable, with hastack's `secret` marker and documentation. */
export interface VarSchema {
  type?: string | string[]
  description: string
  secret?: boolean
  [keyword: string]: unknown
}

export interface Role<V extends Vars = Vars> {
  name: string
  /** One line: what the role sets up. */
  description: string
  /** User-facing defaults, each documented in `schema`. */
  defaults: V
  /** JSON Schema of each variable the role reads, by name. */
  schema: Record<string, VarSchema>
  /**
   * Named sets of defaults chosen by a variable, e.g. `{ failover_profile: { fast: { patroni_ttl: 20 } } }`: the set
   * a host's value of the variable names sits above the role defaults and below every layer the user writes.
   */
  profiles?: Record<string, Record<string, Vars>>
  /** Checks across hosts (for example an odd etcd member count). Returns error messages. */
  validate?(inventory: Inventory): string[]
  handlers?: Record<string, HandlerSpec>
  tasks(h: HostRun & { vars: V & Vars }): Promise<void>
}

export interface Play {
  name: string
  /** Host pattern, as for --limit. */
  hosts: string
  roles?: Role<any>[]
  /** Extra tasks after the roles, as an async function. */
  tasks?: (h: HostRun) => Promise<void>
  handlers?: Record<string, HandlerSpec>
  /** Rolling batches: a count or a percentage ("30%"). */
  serial?: number | string
  /** Stop every host of the play at the first failure anywhere. */
  anyErrorsFatal?: boolean
  /** Stop the rolling work when a batch has any failure (default true when serial is set). */
  maxFailPercentage?: number
  gatherFacts?: boolean
  /** Run handlers even when a later task failed. */
  forceHandlers?: boolean
}

// ───────────────────────────── errors ─────────────────────────────

/** An error in the user's input, with where it comes from. */
export class InputError extends Error {
  constructor(
    message: string,
    public readonly origin?: Origin,
  ) {
    super(origin ? `${origin.file}:${origin.line}${origin.key ? ` (${origin.key})` : ''}: ${message}` : message)
    this.name = 'InputError'
  }
}

export class CommandError extends Error {
  constructor(
    public readonly host: string,
    public readonly command: string,
    public readonly result: RunResult,
  ) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n')
    super(`command failed with exit code ${result.code}: ${command}${detail ? `\n${detail}` : ''}`)
    this.name = 'CommandError'
  }
}

export class UnreachableError extends Error {
  constructor(
    public readonly host: string,
    message: string,
  ) {
    super(message)
    this.name = 'UnreachableError'
  }
}

export class TaskFailed extends Error {
  constructor(
    public readonly host: string,
    public readonly task: string,
    message: string,
  ) {
    super(message)
    this.name = 'TaskFailed'
  }
}
