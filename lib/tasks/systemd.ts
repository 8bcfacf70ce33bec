/**
 * systemd: unit files (daemon-reload only when one changed) and services
 * (enabled, started, stopped, restarted, reloaded). Restart and reload always
 * act: they are meant for handlers.
 */
import type { Plan, Probe, Vars } from '../types.ts'
import { sh } from '../connection/quote.ts'
import { renderTemplate } from '../template.ts'
import { defineTask, noChange, type TaskOptions } from './common.ts'
import { file, type Validated } from './files.ts'
import { pathStateProbe } from '../facts/files.ts'
import { unitStateCommand, unitStateWords } from '../facts/units.ts'

export interface UnitArgs extends TaskOptions, Validated {
  /** Unit name, e.g. "patroni.service"; a drop-in when `dropIn` is set. */
  unit: string
  /** Drop-in file name (e.g. "hastack.conf") under /etc/systemd/system/<unit>.d/. */
  dropIn?: string
  content?: string
  /** Template below templates/ instead of content. */
  src?: string
  /** Extra variables for the template only. */
  vars?: Vars
}

/** Ensure a unit file (or drop-in) is current; daemon-reload follows a change. */
export function systemdUnit(args: UnitArgs) {
  const path = args.dropIn ? `/etc/systemd/system/${args.unit}.d/${args.dropIn}` : `/etc/systemd/system/${args.unit}`
  return defineTask(
    `Ensure the systemd unit ${args.dropIn ? `drop-in ${args.unit}.d/${args.dropIn}` : args.unit} is current`,
    { ...args, probes: [pathStateProbe(path)] },
    async (ctx): Promise<Plan> => {
      const content = args.src ? renderTemplate(args.src, ctx.host, args.vars) : (args.content ?? '')
      const inner = await file({ path, content, mode: '0644', validate: args.validate }).check(ctx)
      if (!inner.change) return inner
      return {
        ...inner,
        apply: async () => {
          if (args.dropIn) await ctx.conn.run(sh`mkdir -p -- ${`/etc/systemd/system/${args.unit}.d`}`, { check: true })
          await inner.apply()
          await ctx.conn.run('systemctl daemon-reload', { check: true })
        },
      }
    },
  )
}

export interface ServiceArgs extends TaskOptions {
  service: string
  enabled?: boolean
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded'
  /**
   * Queue the start, stop, restart or reload and return at once (`systemctl --no-block`, Ansible's `no_block`):
   * for a unit whose start waits on its peers, as an etcd member's on a majority of the cluster.
   */
  noBlock?: boolean
}

/** Parse the two lines of `systemctl is-enabled; systemctl is-active`. */
export function parseServiceState(stdout: string): { enabled: boolean; active: boolean } {
  const { enabled, active } = unitStateWords(stdout)
  return {
    enabled: enabled === 'enabled' || enabled === 'enabled-runtime' || enabled === 'alias',
    active: active === 'active' || active === 'reloading' || active === 'activating',
  }
}

/** Ensure a service is enabled and in the wanted state. */
export function service(args: ServiceArgs) {
  const what = [args.enabled === undefined ? '' : args.enabled ? 'enabled' : 'disabled', args.state ?? '']
    .filter(Boolean)
    .join(' and ')
  const probes: Probe[] = [{ kind: 'unit', name: args.service }]
  return defineTask(`Ensure ${args.service} is ${what}`, { ...args, probes }, async (ctx): Promise<Plan> => {
    const { stdout } = await ctx.conn.run(unitStateCommand(args.service))
    const now = parseServiceState(stdout)
    const steps: string[] = []
    const why: string[] = []
    const step = (command: string, reason: string) => {
      steps.push(command)
      why.push(reason)
    }
    if (args.enabled === true && !now.enabled) step(sh`systemctl enable ${args.service}`, 'not enabled')
    if (args.enabled === false && now.enabled) step(sh`systemctl disable ${args.service}`, 'enabled')
    const noBlock = args.noBlock ? ['--no-block'] : []
    const act = (verb: string) => sh`systemctl ${[verb, ...noBlock]} ${args.service}`
    switch (args.state) {
      case 'started':
        if (!now.active) step(act('start'), 'not running')
        break
      case 'stopped':
        if (now.active) step(act('stop'), 'running')
        break
      case 'restarted':
        step(act('restart'), 'restart requested')
        break
      case 'reloaded':
        step(now.active ? act('reload') : act('start'), 'reload requested')
        break
    }
    if (steps.length === 0) return noChange()
    return {
      change: true,
      reason: why.join(', '),
      apply: async () => {
        const result = await ctx.conn.run(steps.join(' && '), { timeoutMs: 300_000 })
        if (result.code !== 0) {
          // Say why the unit failed, not only that it did.
          const journal = await ctx.conn.run(sh`journalctl -u ${args.service} -n 15 --no-pager -o cat 2>/dev/null`)
          throw new Error(
            `${steps.join(' && ')} failed (exit ${result.code}): ${result.stderr.trim()}\n${journal.stdout.trim()}`,
          )
        }
      },
    }
  })
}
