/**
 * The redis role's variables: defaults and their schema, documented once here
 * (docs/redis.md lists them). The `redis_haproxy_*` variables shape the client
 * endpoint rendered by templates/haproxy/redis.cfg.ejs on the haproxy hosts.
 */
import type { VarSchema, Vars } from '../../lib/types.ts'
import { REDIS_CLIENT_VARS, REDIS_ENDPOINT_VARS, TLS_VARS, sharedVars, type StackVars } from '../stack.ts'

const shared = sharedVars(...REDIS_CLIENT_VARS, ...REDIS_ENDPOINT_VARS, ...TLS_VARS)

export interface RedisVars extends Vars, Pick<StackVars, keyof typeof shared.schema> {
  redis_initial_primary: string
  redis_maxmemory: string
  redis_maxmemory_policy: string
  redis_appendfsync: string
  redis_save: string
  redis_min_replicas_to_write: number
  redis_min_replicas_max_lag: number
  redis_replica_priority: number
}

export const defaults: RedisVars = {
  ...shared.defaults,
  redis_initial_primary: '',
  redis_maxmemory: '256mb',
  redis_maxmemory_policy: 'noeviction',
  redis_appendfsync: 'everysec',
  redis_save: '3600 1 300 100 60 10000',
  redis_min_replicas_to_write: 1,
  redis_min_replicas_max_lag: 10,
  redis_replica_priority: 100,
}

const POLICIES = [
  'noeviction',
  'allkeys-lru',
  'allkeys-lfu',
  'allkeys-random',
  'volatile-lru',
  'volatile-lfu',
  'volatile-random',
  'volatile-ttl',
]

export const schema: Record<string, VarSchema> = {
  ...shared.schema,
  redis_initial_primary: {
    type: 'string',
    description:
      'Host made primary on the first deploy; empty: the first host of the `redis` group. Ignored once Sentinels run.',
  },
  redis_maxmemory: {
    type: ['string', 'integer'],
    pattern: '^\\d+([kKmMgG][bB]?)?$',
    description: 'Memory limit (`maxmemory`), Redis notation: `256mb`, `1gb`, bytes.',
  },
  redis_maxmemory_policy: {
    type: 'string',
    enum: POLICIES,
    description: 'What Redis does at the memory limit (`maxmemory-policy`); `noeviction` refuses writes.',
  },
  redis_appendfsync: {
    type: 'string',
    enum: ['always', 'everysec', 'no'],
    description: 'How often the append-only file is synced to disk.',
  },
  redis_save: {
    type: 'string',
    pattern: '^(\\s*\\d+\\s+\\d+)*\\s*$',
    description: 'RDB snapshot rules (`save`): pairs of seconds and changes; empty disables snapshots.',
  },
  redis_min_replicas_to_write: {
    type: 'integer',
    minimum: 0,
    description: 'Replicas that must be connected for the primary to accept writes (0: no bound).',
  },
  redis_min_replicas_max_lag: {
    type: 'integer',
    minimum: 1,
    description:
      'Seconds after which a silent replica no longer counts: a primary cut off from its replicas stops accepting writes within this time.',
  },
  redis_replica_priority: {
    type: 'integer',
    minimum: 0,
    description: 'Promotion priority of this host (lower first; 0: never promoted).',
  },
}
