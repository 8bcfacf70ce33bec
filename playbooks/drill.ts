#!/usr/bin/env -S npx zx
/**
 * A failure drill under load, against a lab inventory only: the load generator votes through HAProxy
 * while a PostgreSQL probe writes through its write port; the target's host, read from the live stack
 * (the Patroni leader, the Redis primary, the VIP holder, an etcd member, an app host), is killed,
 * stopped, frozen or partitioned through the lab at t+5 s; at the load's end the lab is restored and
 * the stack must be healthy again (bounded). Writes `--out` (reports/): a JSON report (time to detect,
 * time to recover = the write gap clients saw, failed requests, lost and duplicated writes, per
 * repetition with the median and worst) and one SVG picture per repetition.
 * `npx zx playbooks/drill.ts -i inventory/lab-small.yml --fault kill --target redis-primary --repeat 3`
 * Exit codes: 0 recovered with nothing lost or duplicated, 1 bad input (nothing touched; also any
 * inventory the lab does not run), 2 a repetition lost or duplicated writes, did not recover, or failed.
 */
import { day2 } from './day2/fleet.ts'
import { labFor } from './drill/lab-guard.ts'
import { DRILL_OPTIONS, drillOptions } from './drill/options.ts'
import { drillExitCode, drillText } from './drill/report.ts'
import { runDrill } from './drill/run.ts'
import { InputError } from '../lib/types.ts'

await day2({
  name: 'drill',
  script: import.meta.url,
  // The lab, not a converge, changes the hosts: no host lock (a killed host would take its lock with it).
  changes: false,
  options: DRILL_OPTIONS,
  validate(values, inventory) {
    const options = drillOptions(values)
    if (options.on !== undefined && !inventory.hosts.has(options.on))
      throw new InputError(`--on ${options.on} is not a host of the inventory`)
    labFor(inventory, options.labName)
  },
  async run(fleet, values) {
    const options = drillOptions(values)
    const lab = labFor(fleet.inventory, options.labName)
    lab.log = (line) => fleet.say(`lab: ${line}`)
    const { report, file } = await runDrill({ inventory: fleet.inventory, lab, options, say: fleet.say })
    fleet.say(drillText(report))
    fleet.say(`report: ${file}; pictures: ${report.repetitions.map((r) => r.picture).join(', ')} beside it`)
    return { code: drillExitCode(report), report }
  },
})
