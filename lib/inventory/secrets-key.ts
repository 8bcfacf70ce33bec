/**
 * Encryption at rest of the secrets file, in the age format (age-encryption, the
 * reference TypeScript implementation of age by its author): the file can be read
 * and written with the `age` command line too. The key comes from a file
 * (`secrets_key_file`, relative to the inventory) or an environment variable
 * (`secrets_key_env`), named where every host sees it: the inventory's `all.vars`,
 * `group_vars/all.yml` or `-e`. A key is an age identity (`AGE-SECRET-KEY-1…`, as
 * `age-keygen` writes it; instant) or a passphrase (scrypt; a few seconds per run).
 * Without either variable the file stays plain YAML, mode 0600.
 */
import { stat, readFile } from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../types.ts'
import type { GroupGraph } from './groups.ts'
import type { VarLayer } from './layers.ts'
import type { Sources } from './load.ts'
import { displayPath } from './yaml-source.ts'

export const KEY_VARS = ['secrets_key_file', 'secrets_key_env'] as const
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----'
const BINARY_MAGIC = 'age-encryption.org/v1\n'
const IDENTITY = /^AGE-SECRET-KEY-[0-9A-Z-]+$/
/** A passphrase as short as a user-supplied secret would be refused too. */
const MIN_PASSPHRASE = 16

export interface SecretsKey {
  /** Where the key came from, for messages: `key file inventory/prod.key`, `environment variable HASTACK_KEY`. */
  source: string
  /** An age identity or a passphrase. */
  material: string
}

/** Whether a secrets file's bytes are age-encrypted (armored or binary). */
export function isEncrypted(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 64).toString('latin1')
  return head.trimStart().startsWith(ARMOR_BEGIN) || head.startsWith(BINARY_MAGIC)
}

/** The key in a key file's or variable's text: the identity line of an age-keygen file, else the whole text. */
export function keyMaterial(text: string): string {
  const lines = text.split('\n').map((l) => l.trim())
  return lines.find((l) => IDENTITY.test(l)) ?? text.replace(/\r?\n$/, '')
}

/** Check a key's shape; a message when it cannot be used. */
function keyProblem(material: string): string | undefined {
  if (IDENTITY.test(material)) return undefined
  if (material.length >= MIN_PASSPHRASE) return undefined
  return `is neither an age identity (AGE-SECRET-KEY-…) nor a passphrase of at least ${MIN_PASSPHRASE} characters`
}

/** Read a key file: it must exist and be readable by its owner only. */
export async function readKeyFile(file: string): Promise<SecretsKey> {
  const shown = displayPath(file)
  const info = await stat(file).catch(() => null)
  if (!info?.isFile()) throw new InputError(`secrets key file ${shown} does not exist`)
  if (info.mode & 0o077) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    const message = `secrets key file ${shown} is readable by group or others (mode ${mode}): run chmod 600 ${shown}`
    throw new InputError(message)
  }
  const material = keyMaterial(await readFile(file, 'utf8'))
  const problem = keyProblem(material)
  if (problem) throw new InputError(`secrets key file ${shown} ${problem}`)
  return { source: `key file ${shown}`, material }
}

/** Read a key from an environment variable. */
export function readKeyEnv(name: string, env: NodeJS.ProcessEnv = process.env): SecretsKey {
  const value = env[name]
  if (!value) throw new InputError(`secrets_key_env names the environment variable ${name}, which is not set`)
  const material = keyMaterial(value)
  const problem = keyProblem(material)
  if (problem) throw new InputError(`the environment variable ${name} (secrets_key_env) ${problem}`)
  return { source: `environment variable ${name}`, material }
}

/** The layers every host sees, lowest first (the `all` group's, then `-e`), and all the others. */
export function keyLayers(sources: Sources, graph: GroupGraph): { global: VarLayer[]; others: VarLayer[] } {
  const global = [
    ...(graph.groups.get('all')?.layers ?? []),
    ...(sources.groupVars.get('all') ?? []),
    ...sources.extraVars,
  ]
  const others = [...graph.groups.values()]
    .filter((g) => g.name !== 'all')
    .flatMap((g) => [...g.layers, ...(sources.groupVars.get(g.name) ?? [])])
  for (const host of graph.hostOrder)
    others.push(...(graph.hostLayers.get(host) ?? []), ...(sources.hostVars.get(host) ?? []))
  return { global, others }
}

/**
 * The key the inventory names, if any. Only the layers every host sees may name it
 * (`global`: the `all` group's layers, then `-e`); `others` setting it is an error.
 */
export async function secretsKeyOf(
  global: VarLayer[],
  others: VarLayer[],
  dir: string,
  errors: InputError[],
): Promise<SecretsKey | undefined> {
  const whole = 'must be set for the whole inventory (all.vars, group_vars/all.yml or -e)'
  for (const layer of others)
    for (const name of KEY_VARS)
      if (name in layer.values) errors.push(new InputError(`${name} ${whole}`, layer.origins[name]))
  let chosen: { name: string; value: unknown; layer: VarLayer } | undefined
  for (const layer of global)
    for (const name of KEY_VARS) if (name in layer.values) chosen = { name, value: layer.values[name], layer }
  const both = KEY_VARS.filter((name) => global.some((l) => name in l.values))
  if (both.length > 1) {
    const origin = chosen!.layer.origins[chosen!.name]
    errors.push(new InputError('set only one of secrets_key_file and secrets_key_env', origin))
    return undefined
  }
  if (!chosen || typeof chosen.value !== 'string' || !chosen.value) return undefined
  try {
    if (chosen.name === 'secrets_key_env') return readKeyEnv(chosen.value)
    return await readKeyFile(path.resolve(dir, chosen.value))
  } catch (err) {
    const origin = chosen.layer.origins[chosen.name]
    errors.push(err instanceof InputError && origin ? new InputError(err.message, origin) : (err as InputError))
    return undefined
  }
}

/** The age library, loaded only when a secrets file is encrypted or decrypted (it costs ~0.15 s of start-up). */
const ageModule = () => import('age-encryption')

/** Encrypt a secrets file's text for this key (armored, so the file stays text). */
export async function encryptText(text: string, key: SecretsKey): Promise<string> {
  const { armor, Encrypter, identityToRecipient } = await ageModule()
  const encrypter = new Encrypter()
  if (IDENTITY.test(key.material)) encrypter.addRecipient(await identityToRecipient(key.material))
  else encrypter.setPassphrase(key.material)
  return `${armor.encode(await encrypter.encrypt(text))}\n`
}

/** Decrypt a secrets file; a wrong key is bad input naming the file and the key's source. */
export async function decryptBytes(bytes: Buffer, key: SecretsKey, file: string): Promise<string> {
  const { armor, Decrypter } = await ageModule()
  const decrypter = new Decrypter()
  if (IDENTITY.test(key.material)) decrypter.addIdentity(key.material)
  else decrypter.addPassphrase(key.material)
  try {
    const binary = bytes.subarray(0, BINARY_MAGIC.length).toString('latin1') === BINARY_MAGIC
    return await decrypter.decrypt(binary ? new Uint8Array(bytes) : armor.decode(bytes.toString('utf8').trim()), 'text')
  } catch (err) {
    const why = /no identity matched/.test((err as Error).message) ? 'wrong key' : (err as Error).message
    throw new InputError(`cannot decrypt the secrets file ${displayPath(file)} with the ${key.source}: ${why}`)
  }
}
