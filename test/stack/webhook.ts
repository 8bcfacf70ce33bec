/**
 * A webhook receiver for Alertmanager in the lab tests: an HTTP server on the lab bridge's gateway
 * address (the machine's side of the lab network, which the lab hosts reach) that keeps every
 * notification POSTed to it, with its arrival time. Bodies over 1 MiB and other methods are refused.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One alert of a notification, as Alertmanager's webhook sends it. */
export interface WebhookAlert {
  status: 'firing' | 'resolved'
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
  endsAt: string
}

export interface Notification {
  receivedAt: number
  status: 'firing' | 'resolved'
  receiver: string
  alerts: WebhookAlert[]
}

export interface WebhookReceiver {
  url: string
  notifications: Notification[]
  close(): Promise<void>
}

const MAX_BODY = 1 << 20

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) return reject(new Error('body over 1 MiB'))
      chunks.push(chunk)
    })
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    request.on('error', reject)
  })
}

/** Listen on `address` (a free port) at path /alerts. */
export async function webhookReceiver(address: string): Promise<WebhookReceiver> {
  const notifications: Notification[] = []
  const server = createServer((request, response) => {
    if (request.method !== 'POST' || request.url !== '/alerts') return response.writeHead(404).end()
    readBody(request)
      .then((body) => {
        notifications.push({ ...(JSON.parse(body) as Omit<Notification, 'receivedAt'>), receivedAt: Date.now() })
        response.writeHead(200).end()
      })
      .catch(() => response.writeHead(400).end())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, address, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${address}:${port}/alerts`,
    notifications,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
