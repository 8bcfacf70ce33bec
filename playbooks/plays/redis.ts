/**
 * The service plays of the Redis HA part, for playbooks/redis.ts and site.ts: the Redis primary
 * and replicas, then the Sentinels. `REDIS_HOSTS` are the hosts the part prepares.
 */
import type { Play } from '../../lib/types.ts'
import { redisRole, sentinelRole } from '../../roles/index.ts'

export const REDIS_HOSTS = 'redis:sentinel:haproxy'

export const redisPlays: Play[] = [
  { name: 'Converge Redis primary and replicas', hosts: 'redis', roles: [redisRole] },
  { name: 'Converge the Sentinels', hosts: 'sentinel', roles: [sentinelRole] },
]
