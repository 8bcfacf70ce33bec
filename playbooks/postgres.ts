#!/usr/bin/env -S npx zx
/**
 * The PostgreSQL HA part of the stack: base settings on every host, an etcd
 * cluster, PostgreSQL under Patroni on the postgres group, HAProxy in front.
 * `npx zx playbooks/postgres.ts -i inventory/lab.yml [--check --diff --json FILE]`
 */
import { playbook } from '../lib/index.ts'
import { postgresPlays } from './plays/postgres.ts'

await playbook({ name: 'postgres', script: import.meta.url, plays: postgresPlays })
