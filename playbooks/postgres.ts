#!/usr/bin/env -S npx zx
/**
 * The PostgreSQL HA part of the stack: base settings on every host, an etcd
 * cluster, PostgreSQL under Patroni on the postgres group, HAProxy in front.
 * `npx zx playbooks/postgres.ts -i inventory/lab.yml [--check --diff --json FILE]`
 */
import { playbook } from '../lib/index.ts'
import { allRoles } from '../roles/index.ts'
import { POSTGRES_HOSTS, postgresPlays } from './plays/postgres.ts'
import { preparePlay, routeClientsPlay } from './plays/shared.ts'

await playbook({
  name: 'postgres',
  script: import.meta.url,
  roles: allRoles,
  plays: [preparePlay(POSTGRES_HOSTS, 'Prepare the hosts of the PostgreSQL stack'), ...postgresPlays, routeClientsPlay],
})
