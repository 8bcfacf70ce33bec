/**
 * Renders EJS templates from templates/<role>/ locally, with the host's
 * variables, facts and a few helpers. Logic stays in roles; templates loop
 * over structured variables.
 */
import ejs from 'ejs'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isAbsolute, join, resolve } from 'node:path'
import type { HostView, Vars } from './types.ts'

export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url))

/** The data a template sees: every variable at top level, plus `host`, `facts`, `groups` and helpers. */
export function templateData(host: HostView, extra: Vars = {}): Vars {
  return {
    ...host.vars,
    ...extra,
    vars: host.vars,
    host,
    facts: host.facts,
    hostname: host.name,
    /** Hosts of a group in inventory order ([] when the group does not exist). */
    groupHosts: (group: string) => (host.inventory.groups.has(group) ? host.inventory.groupHosts(group) : []),
    hostvars: (name: string) => host.hostvars(name),
    /** The first line of every managed file. */
    managed: (comment = '#') => `${comment} Managed by hastack: local changes are overwritten on the next run.`,
  }
}

/** Render templates/<src> (for example `patroni/patroni.yml.ejs`), or an absolute path, for one host. */
export function renderTemplate(src: string, host: HostView, extra: Vars = {}): string {
  const filename = isAbsolute(src) ? src : resolve(TEMPLATES_DIR, src)
  if (!isAbsolute(src) && !filename.startsWith(TEMPLATES_DIR)) throw new Error(`template path escapes templates/: ${src}`)
  const text = readFileSync(filename, 'utf8')
  return ejs.render(text, templateData(host, extra), { filename, async: false, root: TEMPLATES_DIR, views: [join(TEMPLATES_DIR)] })
}
