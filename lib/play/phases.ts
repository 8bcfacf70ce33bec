/**
 * Where a run's time goes outside its tasks (issue 15): each host's set-up (SSH login, host lock, facts,
 * the probe plan's early batch) and the run's own steps before its first task and after its last (reading
 * the plan, the secret guard's wait for every host, the secret fingerprints, closing, writing the plan).
 * The play runner fills them; the --json report carries them (`phases`, `hosts.<host>.phases`) and
 * bench/site-profile.ts prints them. Milliseconds, measured with the monotonic clock.
 */

/** One host's set-up, each step's own duration. */
export interface HostPhases {
  /** Opening the SSH connection (TCP, key exchange, login). */
  connectMs?: number
  /** Taking the host lock, from the connection being open. */
  lockMs?: number
  /** Gathering the facts (one command; runs beside the lock). */
  factsMs?: number
  /** The probe plan's early batch, from the lock being held to its answers. */
  planBatchMs?: number
  /** From the run's start until the host's connection and lock were ready. */
  readyAtMs?: number
}

/** The run's own steps, in the order they happen, and where its tasks began and ended. */
export interface RunPhases {
  /** Reading the probe plan file. */
  planReadMs: number
  /** Connecting and locking every host whose roles use secrets and reading its fingerprints (the secret guard). */
  hostsReadyMs: number
  /** The plays, one after another (tasks, role logic between them, handlers). */
  playsMs: number
  /** Recording the secret fingerprints after the plays. */
  fingerprintsMs: number
  /** Releasing the host locks and closing the connections (while the probe plan is written). */
  closeMs: number
  /** Writing the probe plan for the next run. */
  planWriteMs: number
  /** From the run's start to the first task's start (0 when no task ran). */
  firstTaskAtMs: number
  /** From the first task's start to the last task's end, over every host. */
  tasksMs: number
  /** From the last task's end to the end of the run (handlers' trailing work, fingerprints, closing, plan). */
  afterLastTaskMs: number
}

/** Milliseconds since `since` (a `performance.now()` reading), rounded. */
export const elapsedMs = (since: number): number => Math.round(performance.now() - since)

/** Await `work`, then hand its duration (also when it failed) to `record`. */
export async function timed<T>(work: () => Promise<T>, record: (ms: number) => void): Promise<T> {
  const started = performance.now()
  try {
    return await work()
  } finally {
    record(elapsedMs(started))
  }
}

/** The first task start and last task end of a run (epoch ms), from the tasks' ISO stamps; undefined: none ran. */
export function taskBounds(tasks: Iterable<{ startedAt?: string; endedAt?: string }>): [number, number] | undefined {
  let first = Infinity
  let last = -Infinity
  for (const task of tasks) {
    if (!task.startedAt || !task.endedAt) continue
    first = Math.min(first, Date.parse(task.startedAt))
    last = Math.max(last, Date.parse(task.endedAt))
  }
  return first === Infinity ? undefined : [first, last]
}
