/**
 * The scripted world of the monitoring role tests: the stack inventory plus one
 * monitoring host, and answers for what the monitoring roles ask their hosts beyond
 * the engine's own commands: the waits for an exporter's port or a server's /-/ready
 * (answered only on the cluster address, while the unit behind the port runs), the
 * checkers `promtool check config` / `amtool check-config` on a candidate file, and
 * `ls -1` of a directory. A pretend Patroni leader for postgres_exporter lives in
 * its own test file.
 */
import type { ScriptedConnection, ScriptedLab } from '../fixtures/scripted.ts'
import { scriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

export const MONITORING_HOST = 'mon1'
export const MONITORING_ADDRESS = '10.0.0.40'

/** The unit that listens on the port each variable names. */
const UNIT_OF_PORT_VAR: Record<string, string> = {
  node_exporter_port: 'prometheus-node-exporter',
  postgres_exporter_port: 'prometheus-postgres-exporter',
  redis_exporter_port: 'prometheus-redis-exporter',
  redis_exporter_sentinel_port: 'prometheus-redis-exporter-sentinel',
  prometheus_port: 'prometheus',
  alertmanager_port: 'prometheus-alertmanager',
  journal_remote_port: 'systemd-journal-remote.socket',
}

/** The stack inventory with a monitoring group of one host; `vars` apply to every host. */
export function monitoringInventory(vars: Record<string, unknown> = {}): Record<string, unknown> {
  const doc = stackInventory(vars) as { all: { children: Record<string, unknown> } }
  doc.all.children.monitoring = { hosts: { [MONITORING_HOST]: { address: MONITORING_ADDRESS } } }
  return doc
}

/** One run of a checker on a candidate file: the command and the content it judged. */
export interface CheckerRun {
  command: string
  content: string
}

export interface MonitoringWorld {
  lab: ScriptedLab
  /** Every checker run, on every host, oldest first. */
  checks: CheckerRun[]
  /** Make the checkers reject (exit 1 with this message) or accept (undefined) the files. */
  rejectWith(message: string | undefined): void
}

/** Whether a unit listens on this port (as the host's variables say) and on this host's cluster address. */
function listening(lab: ScriptedLab, conn: ScriptedConnection, address: string, port: number): boolean {
  const vars = lab.inventory.hosts.get(conn.host)!.vars
  const unit = Object.entries(UNIT_OF_PORT_VAR).find(([portVar]) => vars[portVar] === port)?.[1]
  return address === conn.address && unit !== undefined && conn.service(unit).active
}

/** A scripted lab of this inventory whose hosts answer the monitoring roles' probes and checkers. */
export async function monitoringWorld(
  document: Record<string, unknown> = monitoringInventory(),
): Promise<MonitoringWorld> {
  const lab = await scriptedLab(document)
  const checks: CheckerRun[] = []
  let rejection: string | undefined
  for (const name of lab.inventory.hosts.keys()) {
    const conn = lab.host(name)
    conn.on(/\/dev\/tcp\/[\d.]+\/\d+/, (command) => {
      const [, address = '', port = ''] = /\/dev\/tcp\/([\d.]+)\/(\d+)/.exec(command)!
      return { code: listening(lab, conn, address, Number(port)) ? 0 : 1 }
    })
    conn.on(/urlopen\("http:\/\/[\d.]+:\d+\/-\/ready"/, (command) => {
      const [, address = '', port = ''] = /http:\/\/([\d.]+):(\d+)\//.exec(command)!
      return { code: listening(lab, conn, address, Number(port)) ? 0 : 1 }
    })
    // The file task's `validate`: the checker runs on the candidate beside the destination.
    conn.on(/^(promtool check config|amtool check-config) \S+$/, (command, _o, c) => {
      const candidate = /^(?:promtool check config|amtool check-config) (\S+)$/.exec(command)![1]!
      checks.push({ command, content: c.readFile(candidate) ?? '' })
      return rejection === undefined ? { code: 0, stdout: 'SUCCESS\n' } : { code: 1, stderr: `FAILED: ${rejection}\n` }
    })
    conn.on(/^ls -1 \S+$/, (command, _o, c) => {
      const dir = command.slice('ls -1 '.length)
      const names = [...c.fs.keys()].filter((p) => p.startsWith(`${dir}/`)).map((p) => p.slice(dir.length + 1))
      return {
        code: 0,
        stdout: names
          .filter((n) => !n.includes('/'))
          .map((n) => `${n}\n`)
          .join(''),
      }
    })
  }
  return {
    lab,
    checks,
    rejectWith: (message) => void (rejection = message),
  }
}
