/**
 * The plays of the central logs, for site.ts: the store on the logging group first, then every
 * host's journal shipped to it. Left out when the inventory has no logging host.
 */
import type { Inventory, Play } from '../../lib/types.ts'
import { journalRemoteRole, journalUploadRole } from '../../roles/index.ts'
import { LOGGING_GROUP } from '../../roles/journal_remote/index.ts'
import { groupMembers } from '../../roles/stack.ts'

export const loggingPlays: Play[] = [
  { name: 'Store the journals centrally', hosts: LOGGING_GROUP, roles: [journalRemoteRole] },
  { name: 'Ship every journal to the logging host', hosts: 'all', roles: [journalUploadRole] },
]

/** Whether the inventory has a logging host: without one, site.ts leaves the central logs out. */
export function hasLogging(inventory: Inventory): boolean {
  return groupMembers(inventory, LOGGING_GROUP).length > 0
}
