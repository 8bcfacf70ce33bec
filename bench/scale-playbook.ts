#!/usr/bin/env -S npx zx
/**
 * The playbook of the scale bench (`npm run bench -- scale`): what every host of the stack runs
 * and no more — the common role and node_exporter — so that a no-op run on 1 to 50 light lab hosts
 * shows how the engine's cost grows with the host count.
 * `npx zx bench/scale-playbook.ts -i INVENTORY [-l first10]`
 */
import { playbook } from '../lib/index.ts'
import { allRoles, nodeExporterRole } from '../roles/index.ts'
import { preparePlay } from '../playbooks/plays/shared.ts'

await playbook({
  name: 'scale',
  script: import.meta.url,
  roles: allRoles,
  plays: [
    preparePlay('all', 'Prepare every host'),
    { name: 'Export host metrics everywhere', hosts: 'all', roles: [nodeExporterRole] },
  ],
})
