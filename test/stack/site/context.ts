/**
 * What every check of the site suite gets: the converged lab-small (booted and converged once by
 * test/stack/site.test.ts), its inventory copy and generated secrets, and a way to run a playbook
 * against it. Each check module under test/stack/site/ exports `name`, `destructive` (it breaks
 * and restores hosts, so it runs after the non-destructive ones) and `run(t, ctx)`, and must leave
 * the stack as healthy as it found it. With `tls_enabled` in the inventory (the default; HASTACK_SITE_TLS=off:
 * plaintext), the checks' own clients connect over TLS (`redisTls()`, `pgTls()`, `patroniApi()`), checking
 * the stack's CA.
 */
import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import type pg from 'pg'
import type { Test } from 'tap'
import { parse } from 'yaml'
import type { Lab } from '../../../lab/lab.ts'
import type { Vars } from '../../../lib/types.ts'
import { pgTls } from '../../../app/db.ts'
import { caFiles } from '../../../roles/certificates/ca.ts'
import { STACK_DEFAULTS, tlsOn } from '../../../roles/stack.ts'
import { controllerPgCaFile } from '../../../roles/tls.ts'
import type { Member } from '../pg/cluster.ts'
import { inventoryGroups } from '../prometheus.ts'
import { runPlaybook, type PlaybookRun } from '../playbook-run.ts'

export type Tap = Test

export interface SiteContext {
  repo: string
  /** The directory of the inventory copy (its host_vars, secrets and known_hosts live there). */
  dir: string
  inventory: string
  lab: Lab
  /** The hosts of an inventory group, in inventory order. */
  hosts(group: string): string[]
  /** Where clients connect: the lab's VIP (lab-small has two haproxy hosts), else the first haproxy host. */
  clientAddress(): string
  /** The inventory copy's generated secrets (`<inventory>.secrets.yml`), read afresh. */
  secrets(): Record<string, string>
  /** A PostgreSQL client's TLS settings as the app's (the stack's CA, verify-ca); undefined in plaintext. */
  pgTls(): pg.ConnectionConfig['ssl']
  /**
   * Call a lab host's Patroni REST API from this machine (`GET /cluster`, `POST /switchover`): over HTTPS
   * verified with the stack's CA when the inventory has `patroni_api_tls`. Status 0: no answer.
   */
  patroniApi(host: string, path: string, options?: PatroniCall): Promise<{ status: number; body: unknown }>
  /** The parsed JSON of a GET answered with 2xx; undefined otherwise. */
  patroniGet(host: string, path: string, timeoutMs?: number): Promise<unknown>
  /** Patroni's members as `GET /cluster` lists them, from the first member that answers. */
  patroniCluster(): Promise<Member[] | undefined>
  /** Runs a playbook (relative to the repository) against the lab with --json, bounded in time. */
  playbook(playbook: string, label: string, extra?: string[], timeoutMs?: number): Promise<PlaybookRun>
  /** The shared variables as the inventory copy's `all.vars` sets them over their defaults (TLS switches, ports). */
  stackVars(): Vars
  /** ioredis options for this stack's Redis and Sentinels: `{ tls: { ca } }` (the stack's CA) with TLS on. */
  redisTls(): { tls?: { ca: Buffer } }
}

export interface PatroniCall {
  method?: string
  /** Sent as JSON. */
  body?: unknown
  /** Basic auth (the API's user and password). */
  auth?: string
  timeoutMs?: number
}

export interface SiteCheck {
  name: string
  destructive: boolean
  run(t: Tap, ctx: SiteContext): Promise<void>
}

export function siteContext(repo: string, dir: string, inventory: string, lab: Lab): SiteContext {
  return {
    repo,
    dir,
    inventory,
    lab,
    hosts: (group) => [...(inventoryGroups(readFileSync(inventory, 'utf8')).get(group) ?? [])],
    clientAddress() {
      const [balancer] = this.hosts('haproxy')
      return lab.need().vip ?? lab.host(balancer!).address
    },
    secrets: () => parse(readFileSync(inventory.replace(/\.yml$/, '.secrets.yml'), 'utf8')),
    stackVars: () => ({ ...STACK_DEFAULTS, ...(parse(readFileSync(inventory, 'utf8'))?.all?.vars ?? {}) }),
    redisTls() {
      const vars = this.stackVars()
      return tlsOn(vars, 'redis') ? { tls: { ca: readFileSync(caFiles(inventory, vars).cert) } } : {}
    },
    pgTls() {
      const vars = this.stackVars()
      return tlsOn(vars, 'postgresql') ? pgTls(controllerPgCaFile(inventory, vars)) : undefined
    },
    patroniApi(host, path, { method = 'GET', body, auth, timeoutMs = 5000 } = {}) {
      const vars = this.stackVars()
      const tls = tlsOn(vars, 'patroni_api')
      const url = `${tls ? 'https' : 'http'}://${lab.host(host).address}:${STACK_DEFAULTS.patroni_restapi_port}${path}`
      const ca = tls ? readFileSync(caFiles(inventory, vars).cert) : undefined
      const headers = body === undefined ? {} : { 'content-type': 'application/json' }
      return new Promise((resolve) => {
        const call = (tls ? httpsRequest : httpRequest)(
          url,
          { method, ca, auth, headers, timeout: timeoutMs },
          (answer) => {
            let text = ''
            answer.on('data', (chunk: Buffer) => (text += chunk.toString()))
            answer.on('end', () => {
              let parsed: unknown = text
              try {
                parsed = JSON.parse(text)
              } catch {}
              resolve({ status: answer.statusCode ?? 0, body: parsed })
            })
          },
        )
        call.on('timeout', () => call.destroy())
        call.on('error', () => resolve({ status: 0, body: undefined }))
        call.end(body === undefined ? undefined : JSON.stringify(body))
      })
    },
    async patroniGet(host, path, timeoutMs) {
      const answer = await this.patroniApi(host, path, { timeoutMs })
      return answer.status >= 200 && answer.status < 300 ? answer.body : undefined
    },
    async patroniCluster() {
      for (const host of this.hosts('postgres')) {
        const answer = (await this.patroniGet(host, '/cluster', 2000)) as { members: Member[] } | undefined
        if (answer) return answer.members
      }
      return undefined
    },
    playbook: (playbook, label, extra = [], timeoutMs = 600_000) =>
      runPlaybook({
        cwd: repo,
        launcher: 'zx',
        playbook,
        inventory,
        json: join(repo, `reports/site-${label}.json`),
        extra,
        timeoutMs,
      }),
  }
}
