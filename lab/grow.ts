/**
 * Booting a host into a lab that is already up: one the inventory names now but did not when `up`
 * ran (a node being added to the stack). It gets the next free address of the instance's /24, its
 * own root, network namespace and host_vars like every other host, and is recorded in the
 * instance, so `down` removes it with the rest. The running hosts are not touched.
 */
import type { LabHost } from './instance.ts'
import type { Lab } from './lab.ts'
import * as hosts from './hosts.ts'
import { createNetwork } from './network.ts'
import { addedHostOctet, loadTopology } from './topology.ts'

const octetOf = (address: string) => Number(address.split('.')[3])

/** Boot `name` (named by the lab's inventory, not running yet); resolves to its systemd state once SSH answers. */
export async function addHost(lab: Lab, name: string, timeoutMs: number): Promise<string> {
  const inst = lab.need()
  if (inst.hosts.some((h) => h.name === name)) throw new Error(`lab "${lab.name}" already runs ${name}`)
  const entry = loadTopology(inst.inventory).hosts.find((h) => h.name === name)
  if (!entry) throw new Error(`${inst.inventory} does not name a host ${name}: add it to the inventory first`)
  const used = [...inst.hosts.map((h) => octetOf(h.address)), ...(inst.vip ? [octetOf(inst.vip)] : [])]
  const octet = addedHostOctet(
    inst.hosts.map((h) => h.name),
    used,
    name,
  )
  const index = Math.max(-1, ...inst.hosts.map((h) => h.index)) + 1
  const host: LabHost = {
    name,
    index,
    groups: entry.groups,
    address: `${inst.subnet.split('.').slice(0, 3).join('.')}.${octet}`,
    netns: `hs-${lab.name}-${name}`,
    veth: `hs${lab.sid}-${index}`,
    machine: `hs-${lab.name}-${name}`,
  }
  // Recorded first: a boot that fails half-way is still removed by `down`.
  inst.hosts.push(host)
  lab.save(inst)
  const t0 = Date.now()
  await createNetwork(inst, host)
  await hosts.createRoot(lab, inst, host)
  const pid = await hosts.launch(lab, inst, host)
  const state = await hosts.waitReady(lab, host, pid, timeoutMs)
  hosts.writeHostVars(lab, inst, [host])
  lab.log(`${name.padEnd(10)} ${host.address.padEnd(14)} ${state.padEnd(9)} added in ${Date.now() - t0} ms`)
  return state
}
