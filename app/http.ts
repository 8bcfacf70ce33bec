/**
 * The HTTP plumbing the vote and result programs share: JSON and HTML answers, a size-bounded
 * request body, and a server that drains on SIGTERM/SIGINT (stops accepting, lets requests in
 * flight finish, then runs the program's own cleanup) within a bounded time.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

/** Longest a drain may take before the program exits anyway. */
const DRAIN_LIMIT_MS = 10_000
/** Largest request body read, bytes. */
export const BODY_LIMIT = 4096

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(text)
}

export function sendHtml(res: ServerResponse, html: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
  res.end(html)
}

export class BodyTooLarge extends Error {}

/**
 * The request body as text; rejects with BodyTooLarge past `limit` bytes (the rest is read and
 * dropped, so the 413 answer still reaches the client; the server's request timeout bounds it).
 */
export function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) reject(new BodyTooLarge(`body over ${limit} bytes`))
      else chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** The request's path without its query string. */
export function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!
}

/** A server running `handler`; an unexpected error becomes a 500 without details. */
export function httpServer(handler: Handler): Server {
  const server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      console.error(`unexpected error on ${req.method} ${pathOf(req)}: ${(error as Error).message}`)
      if (!res.headersSent) sendJson(res, 500, { ok: false, error: 'internal error' })
      else res.destroy()
    })
  })
  server.keepAliveTimeout = 5000
  server.requestTimeout = 15_000
  return server
}

export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/**
 * On SIGTERM or SIGINT: stop accepting connections, let the requests in flight finish, run
 * `cleanup`, exit 0; exit 1 if that takes longer than DRAIN_LIMIT_MS. A second signal exits at once.
 */
export function drainOnSignal(program: string, servers: Server[], cleanup: () => Promise<void>): void {
  let draining = false
  const drain = (signal: string) => {
    if (draining) process.exit(1)
    draining = true
    console.log(`${program}: ${signal}, draining`)
    setTimeout(() => process.exit(1), DRAIN_LIMIT_MS).unref()
    const closed = servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve())
          s.closeIdleConnections()
        }),
    )
    Promise.all(closed)
      .then(cleanup)
      .then(
        () => process.exit(0),
        () => process.exit(1),
      )
  }
  process.on('SIGTERM', () => drain('SIGTERM'))
  process.on('SIGINT', () => drain('SIGINT'))
}
