/**
 * The JSON Schema of `postgresql_parameters`: the types of the PostgreSQL
 * settings a stack commonly sets, so a wrong type ("max_connections: lots")
 * fails validation before anything is touched. Unlisted names may be any
 * scalar; PostgreSQL itself checks them when Patroni applies them.
 */
import type { VarSchema } from '../../lib/types.ts'

const integer = { type: 'integer' }
const bool = { type: 'boolean' }
/** A memory or time size: a number (the setting's unit) or a number with a unit ("256MB", "5min"). */
const size = { type: ['integer', 'string'], pattern: '^\\d+\\s*(B|kB|MB|GB|TB|us|ms|s|min|h|d)?$' }
const text = { type: 'string' }

export const PG_PARAMETER_TYPES: Record<string, object> = {
  max_connections: integer,
  superuser_reserved_connections: integer,
  max_wal_senders: integer,
  max_replication_slots: integer,
  max_worker_processes: integer,
  max_parallel_workers: integer,
  max_parallel_workers_per_gather: integer,
  max_locks_per_transaction: integer,
  max_prepared_transactions: integer,
  autovacuum_max_workers: integer,
  effective_io_concurrency: integer,
  default_statistics_target: integer,
  shared_buffers: size,
  effective_cache_size: size,
  work_mem: size,
  maintenance_work_mem: size,
  wal_buffers: size,
  wal_keep_size: size,
  max_wal_size: size,
  min_wal_size: size,
  checkpoint_timeout: size,
  statement_timeout: size,
  idle_in_transaction_session_timeout: size,
  lock_timeout: size,
  wal_sender_timeout: size,
  wal_receiver_timeout: size,
  log_min_duration_statement: { ...size, minimum: -1 },
  checkpoint_completion_target: { type: 'number', minimum: 0, maximum: 1 },
  random_page_cost: { type: 'number', minimum: 0 },
  hot_standby: bool,
  wal_log_hints: bool,
  hot_standby_feedback: bool,
  fsync: bool,
  full_page_writes: bool,
  logging_collector: bool,
  log_checkpoints: bool,
  log_connections: bool,
  log_disconnections: bool,
  track_io_timing: bool,
  wal_compression: { enum: [true, false, 'off', 'on', 'pglz', 'lz4', 'zstd'] },
  wal_level: { enum: ['replica', 'logical'] },
  synchronous_commit: { enum: ['on', 'off', 'local', 'remote_write', 'remote_apply'] },
  password_encryption: { enum: ['scram-sha-256'] },
  log_line_prefix: text,
  shared_preload_libraries: text,
  timezone: text,
  archive_mode: { enum: [true, false, 'on', 'off', 'always'] },
  archive_command: text,
}

export const PG_PARAMETER_SCHEMA: VarSchema = {
  type: 'object',
  description:
    "PostgreSQL settings, applied through Patroni's dynamic configuration (well-known names are type-checked).",
  properties: PG_PARAMETER_TYPES,
  propertyNames: { pattern: '^[a-z_][a-z0-9_.]*$' },
  additionalProperties: { type: ['string', 'number', 'boolean'] },
}
