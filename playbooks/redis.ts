#!/usr/bin/env -S npx zx
/**
 * Redis HA: Redis primary and replicas, three Sentinels and the client endpoint
 * on the haproxy hosts (lb1:6379, rendered into haproxy.cfg from
 * templates/haproxy/redis.cfg.ejs). `npx tsx playbooks/redis.ts -i test/stack/redis/hosts.yml`
 * Converges from bare Debian 12 hosts; later runs follow the primary the
 * Sentinels elected and change nothing, also after a failover.
 */
import { playbook } from '../lib/index.ts'
import { commonRole } from '../roles/common/index.ts'
import { haproxyRole } from '../roles/haproxy/index.ts'
import { redisRole } from '../roles/redis/index.ts'
import { sentinelRole } from '../roles/sentinel/index.ts'

await playbook({
  name: 'redis',
  script: import.meta.url,
  plays: [
    { name: 'Prepare the Redis and endpoint hosts', hosts: 'redis:sentinel:haproxy', roles: [commonRole] },
    { name: 'Converge Redis primary and replicas', hosts: 'redis', roles: [redisRole] },
    { name: 'Converge the Sentinels', hosts: 'sentinel', roles: [sentinelRole] },
    { name: 'Converge the client endpoint', hosts: 'haproxy', roles: [haproxyRole] },
  ],
})
