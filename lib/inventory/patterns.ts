/**
 * Ansible host patterns: a host, a group, `all` or `*`, globs (`db*`, `web?`,
 * `[ab]*`), joined by `:` or `,` as union `a:b`, intersection `a:&b` and exclusion
 * `a:!b`. As Ansible: unions first, then intersections, then exclusions; the
 * result is in inventory order. A name matching no host or group is an error.
 */
import { InputError, type Inventory } from '../types.ts'

/** A shell-style glob as a RegExp (`*`, `?`, `[...]`). */
function globRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '*') re += '.*'
    else if (c === '?') re += '.'
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end < 0) re += '\\['
      else {
        const set = glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')
        re += `[${set}]`
        i = end
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** Hosts one term names: all, a host, a group (recursively), or a glob over host and group names. */
function resolveTerm(inv: Inventory, term: string, pattern: string): Set<string> {
  if (term === 'all' || term === '*') return new Set(inv.hosts.keys())
  const out = new Set<string>()
  if (/[*?[]/.test(term)) {
    const re = globRegExp(term)
    for (const group of inv.groups.keys()) if (re.test(group)) for (const h of inv.groupHosts(group)) out.add(h)
    for (const host of inv.hosts.keys()) if (re.test(host)) out.add(host)
  } else if (inv.groups.has(term)) {
    for (const h of inv.groupHosts(term)) out.add(h)
  } else if (inv.hosts.has(term)) {
    out.add(term)
  }
  if (out.size === 0 && !inv.groups.has(term)) {
    const within = term === pattern ? '' : ` (in pattern ${JSON.stringify(pattern)})`
    throw new InputError(`pattern ${JSON.stringify(term)} matches no host or group${within}`)
  }
  return out
}

/** The hosts matching an Ansible-style pattern, in inventory order. */
export function selectHosts(inv: Inventory, pattern: string): string[] {
  const terms = pattern
    .split(/[:,]/)
    .map((t) => t.trim())
    .filter(Boolean)
  if (terms.length === 0) throw new InputError(`empty host pattern ${JSON.stringify(pattern)}`)
  const union = new Set<string>()
  const intersections: Set<string>[] = []
  const exclusions: Set<string>[] = []
  let sawUnion = false
  for (const term of terms) {
    if (term.startsWith('&')) intersections.push(resolveTerm(inv, term.slice(1), pattern))
    else if (term.startsWith('!')) exclusions.push(resolveTerm(inv, term.slice(1), pattern))
    else {
      sawUnion = true
      for (const h of resolveTerm(inv, term, pattern)) union.add(h)
    }
  }
  // A pattern of only `&`/`!` terms starts from all hosts, as Ansible does.
  const base = sawUnion ? union : new Set(inv.hosts.keys())
  return [...inv.hosts.keys()].filter(
    (h) => base.has(h) && intersections.every((s) => s.has(h)) && !exclusions.some((s) => s.has(h)),
  )
}
