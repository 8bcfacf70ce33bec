/**
 * Schemas: the inventory file's structure (inventory.schema.json), the engine-wide
 * variables every host may set, the union of the roles' variable schemas, and the
 * translation of ajv errors into plain sentences ("must be integer, got "thirty"").
 */
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { Role, VarSchema } from '../types.ts'
import { CONNECTION_VARS } from './connection-spec.ts'
import { addFormats, FORMATS } from './formats.ts'

/** Structure of an inventory file, shipped beside this module. */
export const INVENTORY_SCHEMA = JSON.parse(readFileSync(new URL('./inventory.schema.json', import.meta.url), 'utf8'))

/** Variables known to the engine itself, whatever the roles: connection and host-wide settings. */
export const ENGINE_VARS: Record<string, VarSchema> = {
  ...CONNECTION_VARS,
  apt_proxy: {
    type: 'string',
    format: 'http-url',
    description: 'HTTP proxy for apt (for example an apt-cacher-ng of the lab); none when absent.',
  },
  timezone: {
    type: 'string',
    format: 'timezone',
    description:
      'Host timezone, for example `Etc/UTC`: a file under /usr/share/zoneinfo (checked here when it exists).',
  },
  secrets_key_file: {
    type: 'string',
    pattern: '^[A-Za-z0-9_./~+-]+$',
    expected: 'a file path (letters, digits, _ . / ~ + -)',
    description:
      'Encrypt the secrets file at rest (age) with the key in this file, relative to the inventory (mode 0600): ' +
      'an age identity or a passphrase. Set it in `all.vars`, `group_vars/all.yml` or with -e.',
  },
  secrets_key_env: {
    type: 'string',
    pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
    expected: 'an environment variable name',
    description:
      'Encrypt the secrets file at rest (age) with the key in this environment variable: ' +
      'an age identity or a passphrase.',
  },
  hastack_state_dir: {
    type: 'string',
    pattern: '^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$',
    expected: 'an absolute path (no //, no . or .. parts)',
    description:
      "Where the engine keeps its own state on the host: the secrets' fingerprints (default `/var/lib/hastack`).",
  },
}

/**
 * An ajv for this repository's schemas: their own keywords (`secret`, `expected`) and value formats. The run's
 * does not check the schemas against the meta-schema (`validateSchema: false`): they are the repository's own,
 * proven valid JSON Schema by a unit test (test/unit/schemas-valid.test.ts) with one that does, and compiling
 * the meta-schema was a sixth of the start-up's CPU.
 */
export function schemaAjv(options: { validateSchema: boolean }): Ajv {
  const made = new Ajv({ strict: false, allErrors: true, ...options })
  made.addKeyword({ keyword: 'secret', schemaType: 'boolean' })
  made.addKeyword({ keyword: 'expected', schemaType: 'string' })
  addFormats(made)
  return made
}

export const ajv = schemaAjv({ validateSchema: false })

export const validateStructure: ValidateFunction = ajv.compile(INVENTORY_SCHEMA)

/** A variable schema's top-level keywords that only describe it: no validator depends on them. */
const ANNOTATIONS = new Set(['description', 'secret', 'expected', 'default', 'examples', 'title'])

const compiled = new WeakMap<object, ValidateFunction>()
/** Validators by the rules they check (a schema without its top-level annotations, as JSON). */
const byRules = new Map<string, ValidateFunction>()
/**
 * A compiled validator for one variable's schema (cached per schema object). Variables whose schemas differ
 * only in their annotations share one (167 schemas, 73 sets of rules): compiling is most of validating.
 * Error messages read `expected` from the variable's own schema (`expectation`), never from the validator.
 */
export function varValidator(schema: VarSchema): ValidateFunction {
  let fn = compiled.get(schema)
  if (!fn) {
    const rules = Object.fromEntries(Object.entries(schema).filter(([keyword]) => !ANNOTATIONS.has(keyword)))
    const key = JSON.stringify(rules)
    fn = byRules.get(key)
    if (!fn) byRules.set(key, (fn = ajv.compile(rules)))
    compiled.set(schema, fn)
  }
  return fn
}

/** Every known variable: engine variables, then each role's schema (first declaration wins). */
export function knownVars(roles: Role[] = []): Map<string, VarSchema> {
  const known = new Map<string, VarSchema>(Object.entries(ENGINE_VARS))
  for (const role of roles)
    for (const [name, schema] of Object.entries(role.schema ?? {})) if (!known.has(name)) known.set(name, schema)
  return known
}

/** A value as shown in an error message; secrets print as `***`. */
export function describe(value: unknown, secret = false): string {
  if (secret) return '***'
  if (value === null || value === undefined) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a map'
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const typeWords: Record<string, string> = { object: 'a map', array: 'a list', null: 'null' }

/** What an ajv error says was expected, in the user's words. */
export function expectation(error: ErrorObject, rootSchema?: VarSchema): string {
  const p = error.params as Record<string, any>
  switch (error.keyword) {
    case 'type': {
      const types: string[] = Array.isArray(p.type) ? p.type : String(p.type).split(',')
      return `must be ${types.map((t) => typeWords[t] ?? t).join(' or ')}`
    }
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`
    case 'pattern':
      return error.instancePath === '' && rootSchema?.expected
        ? `must be ${rootSchema.expected}`
        : (error.message ?? 'is invalid')
    case 'format': {
      const known = FORMATS[String(p.format)]
      if (error.instancePath === '' && rootSchema?.expected) return `must be ${rootSchema.expected}`
      return known ? `must be ${known.expected}` : (error.message ?? 'is invalid')
    }
    default:
      return error.message ?? 'is invalid'
  }
}

/** Read the value at an ajv instancePath (`/a/0/b`). */
export function valueAt(root: unknown, instancePath: string): unknown {
  let value: any = root
  for (const seg of pointerKeys(instancePath)) value = value?.[seg]
  return value
}

/** Split an ajv instancePath into keys (numbers for sequence indexes). */
export function pointerKeys(instancePath: string): (string | number)[] {
  if (!instancePath) return []
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}
