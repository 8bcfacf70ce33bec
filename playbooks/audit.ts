#!/usr/bin/env -S npx zx
/**
 * The security audit, read-only, every host in parallel: each listening socket not expected for the
 * host's groups (the same inventory → ports table the firewall is built from), each file holding a
 * secret that others may read, each certificate expiring within `tls_renew_margin_days`, and each
 * service answering a client without credentials. One line per finding, naming host and port.
 * Exit 0 when nothing is found, 2 when something is (or a host cannot be read), 1 on bad input.
 * `npx zx playbooks/audit.ts -i inventory/lab-small.yml [--json FILE]`
 */
import { day2 } from './day2/fleet.ts'
import { auditFleet } from './audit/run.ts'

await day2({ name: 'audit', script: import.meta.url, changes: false, options: {}, run: (fleet) => auditFleet(fleet) })
