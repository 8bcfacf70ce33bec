/**
 * Operations on an existing secrets file for the `secrets` command: encrypt it with
 * the key the inventory names, decrypt it back to plain YAML, or rekey it to a new
 * key. Each writes atomically with mode 0600 and prints no secret; each problem is
 * bad input (InputError) and leaves the file as it was.
 */
import { readFile, stat } from 'node:fs/promises'
import { InputError } from '../types.ts'
import { buildGroups } from './groups.ts'
import { loadSources, type Problems } from './load.ts'
import { decryptBytes, isEncrypted, keyLayers, secretsKeyOf, type SecretsKey } from './secrets-key.ts'
import { readSecrets, secretsFilePath, writeSecrets } from './secrets.ts'
import { checkStructure, InventoryErrors } from './validate.ts'
import { displayPath } from './yaml-source.ts'

export interface VaultTarget {
  file: string
  /** The key the inventory names (secrets_key_file or secrets_key_env), if any. */
  key?: SecretsKey
}

/** The secrets file of an inventory and the key it names; only what that needs is read and checked. */
export async function vaultTarget(
  inventoryFile: string,
  extraVars: string[] = [],
  secretsFile?: string,
): Promise<VaultTarget> {
  const problems: Problems = { errors: [], unreadable: false }
  const sources = await loadSources(inventoryFile, extraVars, problems)
  if (!sources.inventory || problems.unreadable) throw new InventoryErrors(problems.errors)
  const errors = [...problems.errors, ...checkStructure(sources.inventory)]
  if (errors.length) throw new InventoryErrors(errors)
  const places = keyLayers(sources, buildGroups(sources.inventory, errors))
  const key = await secretsKeyOf(places.global, places.others, sources.dir, errors)
  if (errors.length) throw new InventoryErrors(errors)
  return { file: secretsFilePath(sources.file, secretsFile), key }
}

/** The plain text of an existing secrets file, checked to be a valid one (mode, YAML, values). */
async function plainText(target: VaultTarget): Promise<string> {
  const shown = displayPath(target.file)
  if (!(await stat(target.file).catch(() => null))) throw new InputError(`there is no secrets file ${shown} yet`)
  const errors: InputError[] = []
  await readSecrets(target.file, errors, target.key)
  if (errors.length) throw new InventoryErrors(errors)
  const bytes = await readFile(target.file)
  return isEncrypted(bytes) ? decryptBytes(bytes, target.key!, target.file) : bytes.toString('utf8')
}

const needKey = (file: string) =>
  new InputError(
    `name the key of ${displayPath(file)} first: ` +
      'secrets_key_file or secrets_key_env in all.vars, group_vars/all.yml or -e',
  )

/** Encrypt the secrets file with the inventory's key; returns what was done, in words. */
export async function encryptSecretsFile(target: VaultTarget): Promise<string> {
  if (!target.key) throw needKey(target.file)
  const text = await plainText(target)
  const shown = displayPath(target.file)
  if (isEncrypted(await readFile(target.file))) return `${shown} is already encrypted with the ${target.key.source}`
  await writeSecrets(target.file, text, target.key)
  return `${shown} is now encrypted with the ${target.key.source}`
}

/** Decrypt the secrets file to plain YAML (mode 0600). */
export async function decryptSecretsFile(target: VaultTarget): Promise<string> {
  const shown = displayPath(target.file)
  if (!(await stat(target.file).catch(() => null))) throw new InputError(`there is no secrets file ${shown} yet`)
  if (!isEncrypted(await readFile(target.file))) return `${shown} is not encrypted`
  const text = await plainText(target)
  await writeSecrets(target.file, text)
  const named = target.key?.source.startsWith('key file') ? 'secrets_key_file' : 'secrets_key_env'
  const again = 'from the inventory, or the next run that generates a secret encrypts it again'
  const hint = target.key ? `; remove ${named} ${again}` : ''
  return `${shown} is now plain YAML (mode 0600)${hint}`
}

/** Re-encrypt the secrets file (encrypted or plain) with a new key. */
export async function rekeySecretsFile(target: VaultTarget, newKey: SecretsKey): Promise<string> {
  const text = await plainText(target)
  await writeSecrets(target.file, text, newKey)
  const next = 'point secrets_key_file or secrets_key_env at it in the inventory'
  return `${displayPath(target.file)} is now encrypted with the ${newKey.source}: ${next}`
}
