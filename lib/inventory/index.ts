/**
 * The inventory loader: read the inventory file, its group_vars/host_vars and the
 * `-e` extra vars; validate all of it (every problem reported together, before
 * anything connects); merge each host's variables by precedence (see merge.ts);
 * fill in generated secrets; build each host's ConnectionSpec.
 */
import { readFile } from 'node:fs/promises'
import { InputError, type Inventory, type InventoryGroup, type InventoryHost, type Role } from '../types.ts'
import { secretForms } from '../output/mask.ts'
import { buildConnectionSpec } from './connection-spec.ts'
import { buildGroups, hostsOf } from './groups.ts'
import type { VarLayer } from './layers.ts'
import { loadSources, type Problems } from './load.ts'
import { groupVars, mergeLayers, profileLayer, roleDefaultsLayer, userLayers } from './merge.ts'
import { selectHosts } from './patterns.ts'
import { knownVars } from './schema.ts'
import {
  checkSecretLengths,
  generateSecret,
  generatedSecretLength,
  readSecrets,
  registerSecretNames,
  registerSecretsOfRun,
  restoreSecrets,
  renderedOrigins,
  renderSecrets,
  secretsFilePath,
  writeSecrets,
} from './secrets.ts'
import { keyLayers, secretsKeyOf } from './secrets-key.ts'
import {
  checkDuplicateAddresses,
  checkLayer,
  checkRoleDefaults,
  checkStructure,
  InventoryErrors,
  runRoleValidators,
} from './validate.ts'

export { InventoryErrors } from './validate.ts'
export { selectHosts } from './patterns.ts'
export { secretValues, secretsFilePath, secretsOfRun } from './secrets.ts'
export { ENGINE_VARS } from './schema.ts'

export interface LoadOptions {
  /** Raw `-e` arguments: `key=value` (value read as a YAML scalar) or `@file.yml`. */
  extraVars?: string[]
  /**
   * Roles whose defaults, schemas, secrets and cross-host checks apply. Without roles, unknown
   * variables are not reported.
   */
  roles?: Role[]
  /** Where generated secrets are kept (default `<inventory dir>/<inventory name>.secrets.yml`). */
  secretsFile?: string
  /** False: missing secrets are generated in memory only and the secrets file is never written (check mode). */
  writeSecrets?: boolean
  /**
   * For --list-*: nothing is written, and the checks that only matter to a run that connects (every host
   * has an address, the roles' cross-host checks) are left out, so a lab that is not up can be listed.
   */
  listing?: boolean
}

/** Order problems by file and line (those without a place last), hide every secret in every form, throw them all. */
function fail(errors: InputError[], secrets: Iterable<string>): never {
  const hidden = [...new Set([...secrets].flatMap(secretForms))].sort((a, b) => b.length - a.length)
  for (const err of errors) for (const s of hidden) err.message = err.message.split(s).join('***')
  const place = (e: InputError) =>
    (e.origin ? [0, e.origin.file, e.origin.line] : [1, '', 0]) as [number, string, number]
  const sorted = errors
    .map((e, i) => ({ e, i, p: place(e) }))
    .sort((a, b) => a.p[0] - b.p[0] || (a.p[1] < b.p[1] ? -1 : a.p[1] > b.p[1] ? 1 : 0) || a.p[2] - b.p[2] || a.i - b.i)
  throw new InventoryErrors(sorted.map((x) => x.e))
}

/** Load, validate and merge an inventory. Throws InventoryErrors listing every problem. */
export async function loadInventory(file: string, options: LoadOptions = {}): Promise<Inventory> {
  const roles = options.roles ?? []
  const problems: Problems = { errors: [], unreadable: false }
  const sources = await loadSources(file, options.extraVars ?? [], problems)
  const errors = problems.errors
  if (!sources.inventory) fail(errors, [])
  const structure = checkStructure(sources.inventory)
  errors.push(...structure)
  // A broken file or structure would only cause misleading follow-up errors: stop here.
  if (problems.unreadable || structure.length) fail(errors, [])

  const graph = buildGroups(sources.inventory, errors)
  const known = knownVars(roles)
  const secretSchemas = new Map([...known].filter(([, s]) => s.secret === true))
  const secretVarNames = [...secretSchemas.keys()]

  // Every layer the user wrote, each checked once against the schemas.
  const layers: VarLayer[] = [...sources.extraVars]
  for (const [name, g] of graph.groups) layers.push(...g.layers, ...(sources.groupVars.get(name) ?? []))
  for (const host of graph.hostOrder)
    layers.push(...(graph.hostLayers.get(host) ?? []), ...(sources.hostVars.get(host) ?? []))
  for (const layer of layers) errors.push(...checkLayer(layer, known, options.roles !== undefined))
  errors.push(...checkRoleDefaults(roles))
  errors.push(...checkSecretLengths(layers, secretSchemas))
  const userSecrets = layers.flatMap((l) => secretVarNames.filter((n) => n in l.values).map((n) => String(l.values[n])))

  // Secrets: stored ones reused, missing ones generated (written only once everything is valid).
  const secretsFile = secretsFilePath(sources.file, options.secretsFile)
  const keyPlaces = keyLayers(sources, graph)
  const key = await secretsKeyOf(keyPlaces.global, keyPlaces.others, sources.dir, errors)
  const stored = await readSecrets(secretsFile, errors, key)
  const membership = new Map(graph.order.map((g) => [g, new Set(hostsOf(graph, g))]))
  const hostGroups = new Map(graph.hostOrder.map((h) => [h, graph.order.filter((g) => membership.get(g)!.has(h))]))
  const hostUserLayers = new Map(graph.hostOrder.map((h) => [h, userLayers(h, hostGroups.get(h)!, graph, sources)]))
  const secrets = { ...stored.values }
  const generatedNames = new Set<string>()
  for (const name of secretVarNames) {
    if (name in secrets) continue
    const unset = graph.hostOrder.some((h) => !hostUserLayers.get(h)!.some((l) => name in l.values))
    if (unset) {
      secrets[name] = generateSecret(generatedSecretLength(secretSchemas.get(name)!))
      generatedNames.add(name)
    }
  }
  const generated = generatedNames.size > 0
  const secretsText = generated ? renderSecrets(secrets) : ''
  const secretOrigins = generated ? renderedOrigins(secretsFile, secretsText) : stored.origins
  const secretsLayer: VarLayer = { label: 'secrets', values: {}, origins: {} }
  for (const name of secretVarNames) {
    if (!(name in secrets)) continue
    secretsLayer.values[name] = secrets[name]
    secretsLayer.origins[name] = secretOrigins[name]
  }
  // Stored secrets obey their variables' formats like any value (a hand-edited file included), at their lines.
  errors.push(...checkLayer({ label: 'secrets', values: stored.values, origins: stored.origins }, known, false))

  // Merge each host and build how to reach it.
  const defaults = roleDefaultsLayer(roles)
  const hosts = new Map<string, InventoryHost>()
  for (const name of graph.hostOrder) {
    const own = hostUserLayers.get(name)!
    const profiles = profileLayer(roles, mergeLayers([defaults, ...own]).vars)
    const merged = mergeLayers([defaults, profiles, secretsLayer, ...own])
    if (!options.listing && (merged.vars.address === undefined || merged.vars.address === null))
      errors.push(
        new InputError(
          `host ${name} has no address (set address in its entry or in host_vars/${name}.yml)`,
          graph.hostOrigins.get(name),
        ),
      )
    hosts.set(name, {
      name,
      groups: hostGroups.get(name)!,
      vars: merged.vars,
      origins: merged.origins,
      connection: buildConnectionSpec(name, merged.vars, sources.file),
    })
  }
  errors.push(
    ...checkDuplicateAddresses(
      [...hosts.values()].map((h) => ({ name: h.name, address: h.vars.address, origin: h.origins.address })),
    ),
  )

  const groups = new Map<string, InventoryGroup>()
  for (const name of graph.order) {
    const g = graph.groups.get(name)!
    groups.set(name, {
      name,
      hosts: [...g.hosts],
      children: [...g.children],
      parents: [...g.parents],
      vars: groupVars(name, graph, sources),
    })
  }
  const inventory: Inventory = {
    file: sources.file,
    hosts,
    groups,
    secrets,
    groupHosts: (group) => hostsOf(graph, group),
    select: (pattern) => selectHosts(inventory, pattern),
  }
  registerSecretNames(inventory, secretVarNames)
  const before = generated ? await readFile(secretsFile).catch(() => undefined) : undefined
  const restore = async () => (generated ? restoreSecrets(secretsFile, before) : undefined)
  registerSecretsOfRun(inventory, { file: secretsFile, generated: generatedNames, restore })
  if (!options.listing) errors.push(...runRoleValidators(roles, inventory))

  if (errors.length) fail(errors, [...Object.values(secrets), ...userSecrets])
  if (generated && options.writeSecrets !== false && !options.listing) await writeSecrets(secretsFile, secretsText, key)
  return inventory
}
