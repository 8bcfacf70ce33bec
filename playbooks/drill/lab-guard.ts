/**
 * drill.ts injects its faults through the lab, so it works only against an inventory the lab runs:
 * a lab instance up for this very inventory file, with every inventory host one of its hosts at the
 * same address. Anything else is refused (InputError: exit 1) before any connection or fault.
 */
import { resolve } from 'node:path'
import { Lab } from '../../lab/lab.ts'
import { InputError, type Inventory } from '../../lib/types.ts'

export function labFor(inventory: Inventory, labName?: string): Lab {
  const refuse = (why: string): never => {
    throw new InputError(`drill.ts breaks hosts through the lab and runs only against a lab inventory: ${why}`)
  }
  let lab: Lab
  try {
    lab = new Lab({ inventory: inventory.file, name: labName })
  } catch (error) {
    return refuse(error instanceof Error ? error.message : String(error))
  }
  const instance = lab.instance
  if (!instance) return refuse(`no lab "${lab.name}" is up (npm run lab -- up -i ${inventory.file})`)
  if (resolve(instance.inventory) !== resolve(inventory.file))
    refuse(`lab "${lab.name}" runs ${instance.inventory}, not ${inventory.file}`)
  for (const [name, host] of inventory.hosts) {
    const labHost = instance.hosts.find((h) => h.name === name)
    if (!labHost) refuse(`${name} is not a host of lab "${lab.name}"`)
    else if (labHost.address !== host.vars.address)
      refuse(`${name} is at ${String(host.vars.address)} in the inventory but ${labHost.address} in lab "${lab.name}"`)
  }
  return lab
}
