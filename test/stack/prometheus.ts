/**
 * What the lab tests expect of Prometheus, and how they ask it: the scrape targets an inventory
 * implies (derived from its groups, independently of roles/prometheus/scrape.ts, so the test
 * checks the generator rather than repeating it), and a bounded GET of Prometheus' HTTP API.
 */
import { parse } from 'yaml'

/** The scrape jobs each group's hosts carry (`all`: every host), as docs/monitoring.md lists them. */
const JOBS_OF_GROUP: Record<string, string[]> = {
  all: ['node'],
  postgres: ['postgres', 'patroni'],
  etcd: ['etcd'],
  redis: ['redis'],
  sentinel: ['sentinel'],
  haproxy: ['haproxy'],
  monitoring: ['prometheus', 'alertmanager'],
}

interface GroupNode {
  hosts?: Record<string, unknown> | null
  children?: Record<string, GroupNode | null> | null
}

/** Every group of an inventory file with its hosts (a group's children's hosts included). */
export function inventoryGroups(inventoryText: string): Map<string, Set<string>> {
  const groups = new Map<string, Set<string>>()
  const walk = (name: string, node: GroupNode | null | undefined): Set<string> => {
    const hosts = new Set(Object.keys(node?.hosts ?? {}))
    for (const [child, sub] of Object.entries(node?.children ?? {})) walk(child, sub).forEach((h) => hosts.add(h))
    groups.set(name, new Set([...(groups.get(name) ?? []), ...hosts]))
    return hosts
  }
  walk('all', (parse(inventoryText) as { all: GroupNode }).all)
  return groups
}

/** `job@host` of every target Prometheus should scrape for this inventory, sorted. */
export function expectedTargets(inventoryText: string): string[] {
  const groups = inventoryGroups(inventoryText)
  const targets = new Set<string>()
  for (const [group, jobs] of Object.entries(JOBS_OF_GROUP))
    for (const host of groups.get(group) ?? []) for (const job of jobs) targets.add(`${job}@${host}`)
  return [...targets].sort()
}

export interface ActiveTarget {
  labels: Record<string, string>
  scrapeUrl: string
  health: 'up' | 'down' | 'unknown'
  lastError: string
}

export interface Alert {
  labels: Record<string, string>
  state: 'pending' | 'firing'
  activeAt: string
}

export interface RuleGroup {
  name: string
  lastEvaluation: string
}

/** GET `/api/v1/<path>` of the Prometheus at `base` (http://address:port), its `data`; 5 s at most. */
export async function prometheusGet<T>(base: string, path: string): Promise<T> {
  const response = await fetch(`${base}/api/v1/${path}`, { signal: AbortSignal.timeout(5000) })
  const body = (await response.json()) as { status: string; data: T; error?: string }
  if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? response.status}`)
  return body.data
}
