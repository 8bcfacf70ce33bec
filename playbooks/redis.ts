#!/usr/bin/env -S npx zx
/**
 * Redis HA: Redis primary and replicas, three Sentinels and the client endpoint
 * on the haproxy hosts (lb1:6379, rendered into haproxy.cfg from
 * templates/haproxy/redis.cfg.ejs). `npx tsx playbooks/redis.ts -i test/stack/redis/hosts.yml`
 * Converges from bare Debian 12 hosts; later runs follow the primary the
 * Sentinels elected and change nothing, also after a failover.
 */
import { playbook } from '../lib/index.ts'
import { allRoles } from '../roles/index.ts'
import { REDIS_HOSTS, redisPlays } from './plays/redis.ts'
import { preparePlay, routeClientsPlay } from './plays/shared.ts'

await playbook({
  name: 'redis',
  script: import.meta.url,
  roles: allRoles,
  plays: [
    // The base settings and, with tls_enabled, the host certificates Redis, Sentinel and HAProxy read.
    preparePlay(REDIS_HOSTS, 'Prepare the Redis and endpoint hosts'),
    ...redisPlays,
    routeClientsPlay,
  ],
})
