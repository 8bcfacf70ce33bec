/**
 * Port facts: whether a TCP port accepts a connection, as the command `timeout 2 bash -c 'exec
 * 3<>/dev/tcp/ADDRESS/PORT'` answers it (exit 0 when it connects, 1 when refused or unreachable, 124 when
 * not answered in 2 s). waitFor asks it; batched probes answer it for an IPv4 address with a non-blocking
 * connect inside the evaluator (lib/facts/probes.ts), bounded by the same 2 s, instead of a process each.
 */
import { quote } from '../connection/quote.ts'

/** A connect attempt gives up after this many seconds (the command's `timeout`). */
export const PORT_CONNECT_SECONDS = 2

/** The command that exits 0 when ADDRESS:PORT accepts a TCP connection. */
export function portStateCommand(address: string, port: number): string {
  return `timeout ${PORT_CONNECT_SECONDS} bash -c ${quote(`exec 3<>/dev/tcp/${address}/${port}`)} 2>/dev/null`
}

/** A dotted IPv4 address, each part 0-255 without a leading zero: the only addresses a batch connects to itself. */
export function isIpv4Address(address: string): boolean {
  const parts = address.split('.')
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)
}

/** Whether the port number is a valid TCP port. */
export function isTcpPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535
}
