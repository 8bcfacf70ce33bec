/**
 * Renders EJS templates from templates/<role>/ locally, with the host's
 * variables, facts and the quoting helpers. Templates only print: the roles
 * prepare every decision (which hosts, which ports, which lines) as plain values.
 * `<%= x %>` prints x as it is (no HTML escaping: these are config files) and
 * refuses a value holding a line break or another control character; each
 * template says in its header how it quotes for its own format.
 */
import ejs from 'ejs'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isAbsolute, join, resolve } from 'node:path'
import type { HostView, Vars } from './types.ts'
import { haproxyWord, systemdEnvValue, yamlString } from './config-quote.ts'
import { quote as shellWord } from './connection/quote.ts'

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
    yamlString,
    haproxyWord,
    shellWord,
    systemdEnvValue,
  }
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

/** What `<%= %>` does with a value: print it verbatim, unless it would break its line. */
function printed(filename: string) {
  return (value: unknown): string => {
    if (value === undefined || value === null) return ''
    const text = String(value)
    if (CONTROL.test(text)) {
      throw new Error(`template ${filename}: a printed value holds a line break or control character`)
    }
    return text
  }
}

/** Render templates/<src> (for example `patroni/patroni.yml.ejs`), or an absolute path, for one host. */
export function renderTemplate(src: string, host: HostView, extra: Vars = {}): string {
  const filename = isAbsolute(src) ? src : resolve(TEMPLATES_DIR, src)
  if (!isAbsolute(src) && !filename.startsWith(TEMPLATES_DIR))
    throw new Error(`template path escapes templates/: ${src}`)
  const text = readFileSync(filename, 'utf8')
  return compiled(src, filename, text)(templateData(host, extra))
}

/** Compiled templates of this process, by their name and text (a template renders for many hosts). */
const COMPILED = new Map<string, ejs.TemplateFunction>()

/** The template compiled once per process for this name (its file follows from it) and text (an edit recompiles). */
function compiled(src: string, filename: string, text: string): ejs.TemplateFunction {
  const key = `${src}\0${text}`
  let render = COMPILED.get(key)
  if (!render) {
    const options = { filename, root: TEMPLATES_DIR, views: [join(TEMPLATES_DIR)], escape: printed(src) }
    COMPILED.set(key, (render = ejs.compile(text, { ...options, async: false })))
  }
  return render
}
