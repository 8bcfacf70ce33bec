/**
 * Served-certificate facts: the serial of a host certificate on disk and the serial a TLS service presents
 * on its port, as `serialsCommand` prints them (`openssl x509 -serial` of the file, `openssl s_client` to the
 * port piped into `openssl x509 -serial`). A batch answers every such question of a host from one python3
 * process (lib/facts/tls-reader.ts, started by the evaluator in lib/facts/probes.ts) where that answer is
 * provably the command's, else it runs the command.
 */
import { sh } from '../connection/quote.ts'

/** Where a service presents its certificate, and the file it was configured with. */
export interface ServedCertificate {
  address: string
  port: number
  /** A protocol whose TLS starts inside it (`openssl s_client -starttls postgres`). */
  starttls?: 'postgres'
  /** The host certificate (every service's copy is made from it). */
  certFile: string
}

/** Prints the presented certificate's serial (`serial=...`); nothing when no TLS answer came. */
export function presentedSerialCommand(e: ServedCertificate): string {
  const starttls = e.starttls ? sh` -starttls ${e.starttls}` : ''
  const connect = sh`${`${e.address}:${String(e.port)}`}`
  return (
    `timeout 5 openssl s_client -connect ${connect}${starttls} </dev/null 2>/dev/null` +
    ' | openssl x509 -noout -serial 2>/dev/null'
  )
}

/** The serial of the certificate on disk (`serial=...`). */
export const onDiskSerialCommand = (e: ServedCertificate) =>
  `openssl x509 -noout -serial -in ${sh`${e.certFile}`} 2>/dev/null`

/** Prints the serials on disk and presented, one line each (empty when unknown); exits 0. */
export function serialsCommand(e: ServedCertificate): string {
  return `printf '%s\\n%s\\n' "$(${onDiskSerialCommand(e)})" "$(${presentedSerialCommand(e)})"`
}

/** The serials `serialsCommand` printed: on disk, presented. */
export function parseSerials(stdout: string): { onDisk: string; presented: string } {
  const [onDisk = '', presented = ''] = stdout.split('\n').map((l) => l.trim().replace(/^serial=/, ''))
  return { onDisk, presented }
}
