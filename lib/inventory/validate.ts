/**
 * Validation of everything the user wrote, before anything else happens: the
 * inventory file's structure, every variable of every layer against the engine's
 * and roles' schemas (unknown names get a "did you mean"), duplicate addresses,
 * role defaults declared twice, and the roles' own cross-host checks. Each
 * problem is an InputError pointing at the line where the value was set.
 */
import type { ErrorObject } from 'ajv'
import { InputError, type Inventory, type Origin, type Role, type VarSchema } from '../types.ts'
import { nestedOrigin, type VarLayer } from './layers.ts'
import { findControlCharacters } from './formats.ts'
import { describe, expectation, pointerKeys, validateStructure, valueAt, varValidator } from './schema.ts'
import { originOf, type YamlSource } from './yaml-source.ts'

/** Every problem of an inventory at once; `errors` holds each one. */
export class InventoryErrors extends InputError {
  constructor(public readonly errors: InputError[]) {
    super(
      errors.length === 1
        ? `invalid inventory: ${errors[0].message}`
        : `invalid inventory, ${errors.length} problems:\n${errors.map((e) => `  - ${e.message}`).join('\n')}`,
    )
    this.name = 'InventoryErrors'
  }
}

const nameKinds: Record<string, string> = { hosts: 'host name', children: 'group name' }
const nameRules: Record<string, string> = {
  'variable name': '[A-Za-z_][A-Za-z0-9_]*',
  'host name': 'a host name (letters, digits and `-` in dot-separated labels, not starting with `-`)',
  'group name': '[A-Za-z0-9_.-]+',
}

/** Check the inventory file's structure with inventory.schema.json. */
export function checkStructure(source: YamlSource): InputError[] {
  if (validateStructure(source.value)) return []
  const errors: InputError[] = []
  const seen = new Set<string>()
  for (const e of validateStructure.errors ?? []) {
    const keys = pointerKeys(e.instancePath)
    const parentKey = keys[keys.length - 1]
    const p = e.params as Record<string, any>
    let at = keys
    let message: string
    if (e.keyword === 'propertyNames') continue
    if (e.propertyName !== undefined) {
      at = [...keys, e.propertyName]
      const kind = nameKinds[String(parentKey)] ?? 'variable name'
      const rule = nameRules[kind]!
      const verb = kind === 'host name' ? 'be' : 'match'
      message = `invalid ${kind} ${JSON.stringify(e.propertyName)}: must ${verb} ${rule}`
    } else if (e.keyword === 'additionalProperties') {
      at = [...keys, p.additionalProperty]
      message =
        keys.length === 0
          ? `unknown top-level key ${JSON.stringify(p.additionalProperty)}: an inventory holds only the group "all"`
          : `unknown key ${JSON.stringify(p.additionalProperty)}: a group holds only hosts, children and vars`
    } else if (e.keyword === 'required') {
      message = 'an inventory must start with the group "all"'
    } else if (e.keyword === 'type') {
      const what = keys[keys.length - 2] === 'hosts' ? 'a host entry ' : ''
      message = `${what}${expectation(e)}, got ${describe(valueAt(source.value, e.instancePath))}`
    } else {
      message = `${expectation(e)}`
    }
    const origin = originOf(source, at)
    const id = `${origin.line}:${message}`
    if (!seen.has(id)) {
      errors.push(new InputError(message, origin))
      seen.add(id)
    }
  }
  return errors
}

/** Levenshtein distance. */
export function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = cur
  }
  return prev[b.length]
}

/** The known name closest to `name`, when it is close enough to be a typo. */
export function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(name, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

const showsValue = new Set([
  'type',
  'enum',
  'const',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'multipleOf',
])

/**
 * Check one layer's variables against the known schemas. Unknown names are errors
 * only when `checkUnknown` (roles were given: without them the vocabulary is unknown).
 */
export function checkLayer(layer: VarLayer, known: Map<string, VarSchema>, checkUnknown: boolean): InputError[] {
  const errors: InputError[] = []
  for (const [name, value] of Object.entries(layer.values)) {
    // A value with a control character gets that one error: its format errors would only repeat it.
    const multiLine = checkOneLine(layer, name, value)
    errors.push(...multiLine)
    const schema = known.get(name)
    if (!schema) {
      if (!checkUnknown) continue
      const hint = closest(name, known.keys())
      const message = `unknown variable ${name}${hint ? ` — did you mean ${hint}?` : ' (no role nor the engine declares it)'}`
      errors.push(new InputError(message, layer.origins[name]))
      continue
    }
    const validate = varValidator(schema)
    if (multiLine.length || validate(value)) continue
    for (const e of validate.errors ?? ([] as ErrorObject[])) {
      if (e.keyword === 'if') continue
      const inner = pointerKeys(e.instancePath)
      const got = showsValue.has(e.keyword)
        ? `, got ${describe(valueAt(value, e.instancePath), schema.secret === true)}`
        : ''
      errors.push(new InputError(`${expectation(e, schema)}${got}`, nestedOrigin(layer, name, inner)))
    }
  }
  return errors
}

/**
 * Every string of a variable, nested ones and map keys included, must be one line of
 * printable characters, whatever its schema (and for unknown variables too).
 */
export function checkOneLine(layer: VarLayer, name: string, value: unknown): InputError[] {
  return findControlCharacters(value).map((found) => {
    const where = found.inKey ? 'a key' : 'the value'
    const message = `${where} contains ${found.character}: values must be one line of printable characters`
    return new InputError(message, nestedOrigin(layer, name, found.keys))
  })
}

/** Hosts sharing an address: one error per address, at the second host's line, naming every host and its line. */
export function checkDuplicateAddresses(hosts: { name: string; address: unknown; origin?: Origin }[]): InputError[] {
  const byAddress = new Map<string, { name: string; origin?: Origin }[]>()
  for (const host of hosts) {
    if (typeof host.address !== 'string' || !host.address) continue
    if (!byAddress.has(host.address)) byAddress.set(host.address, [])
    byAddress.get(host.address)!.push(host)
  }
  const errors: InputError[] = []
  for (const [address, same] of byAddress) {
    if (same.length < 2) continue
    const at = same[1].origin
    const named = same.map((h, i) => (i !== 1 && h.origin ? `${h.name} (${h.origin.file}:${h.origin.line})` : h.name))
    const list = `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`
    errors.push(new InputError(`hosts ${list} have the same address ${address}`, at))
  }
  return errors
}

/** A variable whose default differs between roles is a bug in the roles. */
export function checkRoleDefaults(roles: Role[]): InputError[] {
  const errors: InputError[] = []
  const seen = new Map<string, { role: string; json: string }>()
  for (const role of roles) {
    for (const [name, value] of Object.entries(role.defaults ?? {})) {
      const json = JSON.stringify(value)
      const previous = seen.get(name)
      if (!previous) seen.set(name, { role: role.name, json })
      else if (previous.json !== json)
        errors.push(
          new InputError(
            `roles ${previous.role} and ${role.name} declare different defaults for ${name} (a bug in the roles)`,
          ),
        )
    }
    for (const [selector, sets] of Object.entries(role.profiles ?? {})) {
      const undeclared = [selector, ...Object.values(sets).flatMap((set) => Object.keys(set))].filter(
        (name) => !(name in role.schema),
      )
      for (const name of new Set(undeclared))
        errors.push(
          new InputError(`role ${role.name}: its profiles by ${selector} use ${name}, which it does not declare`),
        )
    }
  }
  return errors
}

/** Run each role's cross-host checks; their messages (and crashes) become errors. */
export function runRoleValidators(roles: Role[], inventory: Inventory): InputError[] {
  const errors: InputError[] = []
  for (const role of roles) {
    if (!role.validate) continue
    try {
      for (const message of role.validate(inventory)) errors.push(new InputError(`role ${role.name}: ${message}`))
    } catch (err) {
      errors.push(new InputError(`role ${role.name}: its inventory check failed: ${(err as Error).message}`))
    }
  }
  return errors
}
