/**
 * The redis role's variables: defaults and their schema, documented once here
 * (docs/redis.md lists them). The `redis_haproxy_*` variables shape the client
 * endpoint rendered by templates/haproxy/redis.cfg.ejs on the haproxy hosts.
 */
import type { VarSchema, Vars } from '../../lib/types.ts'

export interface RedisVars extends Vars {
  redis_port: number
  redis_master_name: string
  redis_initial_primary: string
  redis_maxmemory: string
  redis_maxmemory_policy: string
  redis_appendfsync: string
  redis_save: string
  redis_min_replicas_to_write: number
  redis_min_replicas_max_lag: number
  redis_replica_priority: number
  redis_haproxy_port: number
  redis_haproxy_check_interval_ms: number
  redis_haproxy_check_timeout_ms: number
  redis_haproxy_rise: number
  redis_haproxy_fall: number
  redis_haproxy_idle_timeout: string
}

export const defaults: RedisVars = {
  redis_port: 6379,
  redis_master_name: 'hastack-redis',
  redis_initial_primary: '',
  redis_maxmemory: '256mb',
  redis_maxmemory_policy: 'noeviction',
  redis_appendfsync: 'everysec',
  redis_save: '3600 1 300 100 60 10000',
  redis_min_replicas_to_write: 1,
  redis_min_replicas_max_lag: 10,
  redis_replica_priority: 100,
  redis_haproxy_port: 6379,
  redis_haproxy_check_interval_ms: 1000,
  redis_haproxy_check_timeout_ms: 500,
  redis_haproxy_rise: 3,
  redis_haproxy_fall: 1,
  redis_haproxy_idle_timeout: '1h',
}

const POLICIES = ['noeviction', 'allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl']

export const schema: Record<string, VarSchema> = {
  redis_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Port Redis listens on (cluster address and loopback).' },
  redis_password: { type: 'string', minLength: 16, format: 'redis-config-string', secret: true, description: 'Password of Redis clients and replicas (`requirepass`, `masterauth`, Sentinel `auth-pass`). Generated once.' },
  redis_master_name: { type: 'string', format: 'word', description: 'Name the Sentinels monitor the primary under (clients ask for it).' },
  redis_initial_primary: { type: 'string', description: 'Host made primary on the first deploy; empty: the first host of the `redis` group. Ignored once Sentinels run.' },
  redis_maxmemory: { type: ['string', 'integer'], pattern: '^\\d+([kKmMgG][bB]?)?$', description: 'Memory limit (`maxmemory`), Redis notation: `256mb`, `1gb`, bytes.' },
  redis_maxmemory_policy: { type: 'string', enum: POLICIES, description: 'What Redis does at the memory limit (`maxmemory-policy`); `noeviction` refuses writes.' },
  redis_appendfsync: { type: 'string', enum: ['always', 'everysec', 'no'], description: 'How often the append-only file is synced to disk.' },
  redis_save: { type: 'string', pattern: '^(\\s*\\d+\\s+\\d+)*\\s*$', description: 'RDB snapshot rules (`save`): pairs of seconds and changes; empty disables snapshots.' },
  redis_min_replicas_to_write: { type: 'integer', minimum: 0, description: 'Replicas that must be connected for the primary to accept writes (0: no bound).' },
  redis_min_replicas_max_lag: { type: 'integer', minimum: 1, description: 'Seconds after which a silent replica no longer counts: a primary cut off from its replicas stops accepting writes within this time.' },
  redis_replica_priority: { type: 'integer', minimum: 0, description: 'Promotion priority of this host (lower first; 0: never promoted).' },
  redis_haproxy_port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Port of the client endpoint on the haproxy hosts.' },
  redis_haproxy_check_interval_ms: { type: 'integer', minimum: 100, description: 'Interval of the endpoint health checks.' },
  redis_haproxy_check_timeout_ms: { type: 'integer', minimum: 50, description: 'Time a health check step may take.' },
  redis_haproxy_rise: { type: 'integer', minimum: 1, description: 'Successful checks before an entry is up; must outlast the fall of the old primary (validated).' },
  redis_haproxy_fall: { type: 'integer', minimum: 1, description: 'Failed checks before an entry is down.' },
  redis_haproxy_idle_timeout: { type: 'string', pattern: '^\\d+(ms|s|m|h|d)?$', description: 'Idle time after which HAProxy closes a client connection to Redis.' },
}
