#!/usr/bin/env -S npx zx
/**
 * The smallest playbook: connect to every host once, gather its facts, print
 * one line about it and the recap. `npx zx playbooks/ping.ts -i inventory/lab.yml`
 */
import { playbook } from '../lib/index.ts'
import { allRoles } from '../roles/index.ts'

await playbook({
  name: 'ping',
  script: import.meta.url,
  roles: allRoles,
  plays: [
    {
      name: 'Reach every host and gather its facts',
      hosts: 'all',
      tasks: async (h) => {
        const f = h.facts
        h.log(
          `${f.hostname}: ${f.os.prettyName}, ${f.arch}, ${f.cpus} CPU, ${f.memoryMb} MiB, ${Object.values(f.ipv4).flat().join(' ')}`,
        )
      },
    },
  ],
})
