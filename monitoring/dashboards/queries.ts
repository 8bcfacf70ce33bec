/**
 * PromQL expressions more than one dashboard shows, written once (the alert rules in
 * monitoring/rules use the same forms).
 */

/** Replay lag of each Patroni replica behind its leader, in bytes (as in the PatroniReplicaLagHigh alert). */
export const PG_REPLICA_LAG = `max by (scope) (patroni_xlog_location and on (instance) patroni_primary == 1)
  - on (scope) group_right ()
  (patroni_xlog_replayed_location and on (instance) patroni_replica == 1)`
