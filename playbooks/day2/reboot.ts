/**
 * Rebooting one host for `rolling-restart --reboot`: the host's own `systemctl reboot` over SSH, then
 * a bounded wait until it answers SSH again with a new boot id (so an answer from before the reboot
 * never counts) and systemd reports every unit started (`systemctl is-system-running --wait`:
 * `running`; `degraded` names the failed units and stops the roll).
 */
import { delay, waitUntil } from '../../lib/tasks/wait.ts'
import type { Fleet } from './fleet.ts'

const BOOT_ID = ['cat', '/proc/sys/kernel/random/boot_id']

/** Reboot the host and wait until it is back with every unit started; the seconds it took. */
export async function rebootHost(fleet: Fleet, host: string, timeoutMs: number): Promise<number> {
  const started = Date.now()
  const before = (await (await fleet.conn(host)).run(BOOT_ID, { sudo: false, timeoutMs: 10_000 })).stdout.trim()
  if (!before) throw new Error(`${host} gave no boot id`)
  // The connection drops while the command runs: its outcome says nothing, the boot id will.
  await (await fleet.conn(host)).run(['systemctl', 'reboot'], { timeoutMs: 15_000 }).catch(() => undefined)
  await delay(1000)
  const back = async () => {
    const conn = await fleet.reconnect(host)
    const id = (await conn.run(BOOT_ID, { sudo: false, timeoutMs: 10_000 })).stdout.trim()
    return id && id !== before ? conn : undefined
  }
  const conn = await waitUntil(`${host} to answer SSH after its reboot`, back, { timeoutMs, intervalMs: 2000 })
  const left = Math.max(10, Math.round((started + timeoutMs - Date.now()) / 1000))
  const state = await conn.run(`timeout ${left} systemctl is-system-running --wait`, {
    sudo: false,
    timeoutMs: (left + 10) * 1000,
  })
  const said = state.stdout.trim()
  if (said !== 'running') {
    const failed = await conn.run('systemctl --failed --no-legend --plain | cut -d" " -f1', { sudo: false })
    const units = failed.stdout.trim().split('\n').filter(Boolean).join(', ')
    throw new Error(`${host} came back ${said || 'without a state'}${units ? ` (failed: ${units})` : ''}`)
  }
  return (Date.now() - started) / 1000
}
