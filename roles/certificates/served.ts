/**
 * A renewed certificate reaches a running service only when the service reads its files again. Each TLS
 * service's role ends with `servesCurrentCertificate`: it compares the serial the service presents (openssl
 * s_client on the host, to the service's own port) with the serial of the host certificate on disk, and
 * when they differ runs the service's own way of picking it up (a reload where the service re-reads its
 * files, a restart where it does not, chosen by the role), then waits until the service presents the new
 * certificate. After that nothing differs, so a second run changes nothing. etcd is not in the list: it
 * loads its certificate on each TLS handshake.
 */
import type { Task } from '../../lib/types.ts'
import { defineTask, noChange } from '../../lib/tasks/index.ts'
import { quote } from '../../lib/connection/quote.ts'
import {
  type ServedCertificate,
  onDiskSerialCommand,
  parseSerials,
  presentedSerialCommand,
  serialsCommand,
} from '../../lib/facts/served.ts'

/** Where a service presents its certificate, and the file it was configured with. */
export interface TlsEndpoint extends ServedCertificate {
  /** The service, as task names and reasons name it. */
  service: string
}

/** Longest wait for a service to present the renewed certificate after its reload or restart. */
const PICKED_UP_MS = 90_000
const POLL_SECONDS = 1

/** A bounded shell loop until the service presents the certificate on disk. */
function waitPresentedScript(e: TlsEndpoint): string {
  const tries = Math.ceil(PICKED_UP_MS / 1000 / POLL_SECONDS)
  const same = `[ "$(${presentedSerialCommand(e)})" = "$(${onDiskSerialCommand(e)})" ]`
  return `i=0; while [ $i -lt ${tries} ]; do if ${same}; then exit 0; fi; i=$((i+1)); sleep ${POLL_SECONDS}; done; exit 1`
}

/**
 * Ensure the service presents the certificate on disk: when it presents another one (the certificate was
 * renewed since it started), `pickUp` (the role's reload or one-at-a-time restart), then wait until it does.
 * A service that does not answer TLS (not started yet) reads the file when it starts: nothing to do.
 */
export function servesCurrentCertificate(e: TlsEndpoint, how: string, pickUp: () => Promise<void>): Task {
  // The read is a probe: a settled run answers it with the role's other reads, in one round trip or none.
  const { address, port, starttls, certFile } = e
  const probes = [{ kind: 'served' as const, address, port, ...(starttls ? { starttls } : {}), certFile }]
  return defineTask(`Ensure ${e.service} presents the current host certificate`, { probes }, async (ctx) => {
    const { onDisk, presented } = parseSerials((await ctx.conn.run(serialsCommand(e))).stdout)
    if (onDisk === '' || presented === '' || presented === onDisk) return noChange()
    return {
      change: true,
      reason: `it presents certificate ${presented}, the renewed one on disk is ${onDisk}: ${how}`,
      apply: async () => {
        await pickUp()
        const waited = await ctx.conn.run(`sh -c ${quote(waitPresentedScript(e))}`, {
          timeoutMs: PICKED_UP_MS + 30_000,
        })
        if (waited.code !== 0)
          throw new Error(`${e.service} still presents another certificate ${PICKED_UP_MS / 1000} s after: ${how}`)
      },
    }
  })
}
