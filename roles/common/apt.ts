/**
 * Installing packages whose services must not start on their own: Debian starts
 * a daemon as soon as its package is installed (etcd with a one-member cluster,
 * PostgreSQL's `main` cluster, Patroni). A `policy-rc.d` that denies every start
 * is in place for the duration of the install only; the roles then start the
 * services once their configuration is written.
 */
import type { HostRun } from '../../lib/types.ts'
import { absent, file, packages } from '../../lib/tasks/index.ts'
import { quoteArgs } from '../../lib/connection/quote.ts'

const POLICY = '/usr/sbin/policy-rc.d'

/** Install packages with service starts denied; a no-op when they are all present. */
export async function installWithoutStarting(h: HostRun, names: string[], what: string): Promise<boolean> {
  const probe = await h.query(`dpkg-query -W -f '\${db:Status-Status}\\n' ${quoteArgs(names)} 2>/dev/null | grep -cx installed; true`)
  const missing = Number(probe.stdout.trim() || 0) < names.length
  if (!missing) {
    // Never leave a stale deny-all policy behind (an earlier run that failed mid-install).
    await h.do(absent({ path: POLICY, name: 'Ensure no package start policy is left behind' }))
    return false
  }
  await h.do(file({ path: POLICY, content: '#!/bin/sh\n# hastack: services do not start while packages install\nexit 101\n', mode: '0755', name: `Deny service starts while ${what} installs` }))
  try {
    const outcome = await h.do(packages({ install: names, name: `Ensure ${what} is installed` }))
    return outcome.changed
  } finally {
    await h.do(absent({ path: POLICY, name: `Allow service starts again after ${what} is installed` }))
  }
}
