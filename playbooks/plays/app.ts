/**
 * The play of the demo vote app, for site.ts: the vote, worker and result programs on the `app`
 * group. It runs after HAProxy, whose write port the worker stores the votes through.
 */
import type { Play } from '../../lib/types.ts'
import { appRole } from '../../roles/index.ts'

export const appPlays: Play[] = [{ name: 'Run the vote app', hosts: 'app', roles: [appRole] }]
