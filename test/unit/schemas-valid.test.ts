/**
 * Every schema a run compiles is valid JSON Schema: the inventory file's structure, the engine's
 * variables and every role's variables, each checked against ajv's meta-schema here, because the run
 * itself compiles them without that check (lib/inventory/schema.ts, for a faster start-up).
 */
import t from 'tap'
import type { Ajv } from 'ajv'
import { ENGINE_VARS, INVENTORY_SCHEMA, schemaAjv } from '../../lib/inventory/schema.ts'
import { allRoles } from '../../roles/index.ts'

/** An ajv as the run's, but one that checks each schema against the meta-schema before compiling it. */
const checkingAjv = () => schemaAjv({ validateSchema: true })

/** The meta-schema's complaints about a schema ('' when it is valid). */
function complaints(ajv: Ajv, schema: object): string {
  return ajv.validateSchema(schema) ? '' : ajv.errorsText(ajv.errors)
}

t.test('the inventory structure schema is valid JSON Schema', async (t) => {
  t.equal(complaints(checkingAjv(), INVENTORY_SCHEMA), '')
})

t.test("every engine variable's schema is valid JSON Schema", async (t) => {
  const ajv = checkingAjv()
  for (const [name, schema] of Object.entries(ENGINE_VARS)) t.equal(complaints(ajv, schema), '', name)
})

t.test("every role variable's schema is valid JSON Schema and compiles", async (t) => {
  const ajv = checkingAjv()
  let checked = 0
  for (const role of allRoles)
    for (const [name, schema] of Object.entries(role.schema ?? {})) {
      t.equal(complaints(ajv, schema), '', `${role.name}: ${name}`)
      t.doesNotThrow(() => ajv.compile(schema), `${role.name}: ${name} compiles`)
      checked++
    }
  t.ok(checked > 100, `${checked} role variables checked`)
})

t.test('the check refuses a schema the meta-schema does not allow', async (t) => {
  const ajv = checkingAjv()
  t.match(complaints(ajv, { type: 'strin' }), /type/)
  t.match(complaints(ajv, { minimum: 'one' }), /minimum/)
})
