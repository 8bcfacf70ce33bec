/**
 * Installing packages whose services must not start on their own: Debian starts
 * a daemon as soon as its package is installed (etcd with a one-member cluster,
 * PostgreSQL's `main` cluster, Patroni). A deny-all `policy-rc.d` exists only
 * during the install, placed and removed by the same remote command (see
 * `denyServiceStarts` in lib/tasks/apt.ts), so an interrupted run does not leave
 * it behind; the roles then start the services once their configuration is written.
 */
import type { CommandProbe, HostRun, RunResult, Task } from '../../lib/types.ts'
import { defineTask, noChange, packages } from '../../lib/tasks/index.ts'
import { POLICY_RC_D, isOwnPolicy, parseInstalled } from '../../lib/tasks/apt.ts'
import { sh } from '../../lib/connection/quote.ts'

/**
 * A deny-all policy-rc.d of hastack's that an install killed outright (SIGKILL, a reboot) left
 * behind is removed; a policy-rc.d of the host's own (no hastack marker) is never touched.
 * `policy` is the file's content read just before (undefined: there is none), when the caller read it.
 */
export function noLeftoverStartPolicy(policy?: { text: string | undefined }): Task {
  return defineTask('Ensure no package start policy is left behind', {}, async (ctx) => {
    const read = () =>
      ctx.conn.get(POLICY_RC_D).then(
        (b) => b.toString(),
        () => undefined,
      )
    const text = policy ? policy.text : await read()
    if (text === undefined) return noChange('no policy-rc.d')
    if (!isOwnPolicy(text)) return noChange("the host's own policy-rc.d: left alone")
    return {
      change: true,
      reason: "hastack's deny-all policy-rc.d was left by an interrupted install",
      apply: async () => void (await ctx.conn.run(sh`rm -f -- ${POLICY_RC_D}`, { check: true })),
    }
  })
}

/** Whether every one of these packages is installed, from the packages probe's answer (`packageStateCommand`). */
function everyInstalled(names: string[], states: RunResult): boolean {
  const installed = parseInstalled(states.stdout)
  return names.every((name) => installed.has(name))
}

/** Whether every one of these packages is installed (a read-only query, also in check mode). */
export async function allInstalled(h: HostRun, names: string[]): Promise<boolean> {
  const [states] = await h.queryAll([{ kind: 'packages', names }])
  return everyInstalled(names, states!)
}

/**
 * Install packages with service starts denied; a no-op when they are all present. `ask`: read-only
 * commands a role needs next (a service's state, a marker in a file), answered in the same round trip
 * when nothing is installed, and asked again after an install; their results are returned in order.
 */
export async function installWithoutStarting(
  h: HostRun,
  names: string[],
  what: string,
  ask: ReadonlyArray<string | CommandProbe> = [],
): Promise<RunResult[]> {
  // One round trip: the packages' states (one dpkg-query for all in a batch), a policy-rc.d left behind if any,
  // and the caller's questions.
  const questions = [{ kind: 'packages' as const, names }, { kind: 'content' as const, path: POLICY_RC_D }, ...ask]
  const [states, policy, ...answers] = await h.queryAll(questions)
  const missing = !everyInstalled(names, states!)
  if (!missing) {
    // A policy killed with its install (SIGKILL, a reboot) must not keep denying starts.
    await h.do(noLeftoverStartPolicy({ text: policy!.code === 0 ? policy!.stdout : undefined }))
    return answers
  }
  await h.do(packages({ install: names, denyServiceStarts: true, name: `Ensure ${what} is installed` }))
  return ask.length ? h.queryAll(ask) : []
}
