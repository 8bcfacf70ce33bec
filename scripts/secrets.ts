/**
 * The `secrets` command: encrypt, decrypt or rekey an inventory's secrets file.
 *   npm run secrets -- encrypt -i inventory/prod.yml
 *   npm run secrets -- decrypt -i inventory/prod.yml
 *   npm run secrets -- rekey -i inventory/prod.yml --new-key-file new.key   (or --new-key-env NAME)
 * The key in use is the one the inventory names (secrets_key_file or secrets_key_env).
 * Exit codes: 0 done, 1 bad input (the file is left as it was). No secret is printed.
 */
import path from 'node:path'
import { parseArgs } from 'node:util'
import { InputError } from '../lib/types.ts'
import { readKeyEnv, readKeyFile } from '../lib/inventory/secrets-key.ts'
import {
  decryptSecretsFile,
  encryptSecretsFile,
  rekeySecretsFile,
  vaultTarget,
} from '../lib/inventory/secrets-vault.ts'

const USAGE =
  'usage: npm run secrets -- encrypt|decrypt|rekey -i INVENTORY [-e k=v]... [--new-key-file F | --new-key-env NAME]'

/** Where the command writes: process.stdout / process.stderr, or a capture in tests. */
export interface Output {
  write(text: string): unknown
}

/** Run the command; returns the exit code and writes its one line of outcome (or the error) to the given streams. */
export async function secretsCommand(
  argv: string[],
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        inventory: { type: 'string', short: 'i' },
        'extra-vars': { type: 'string', short: 'e', multiple: true },
        'new-key-file': { type: 'string' },
        'new-key-env': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
    if (values.help) return (out.write(`${USAGE}\n`), 0)
    const [action, ...rest] = positionals
    if (!action || rest.length || !['encrypt', 'decrypt', 'rekey'].includes(action)) throw new InputError(USAGE)
    if (!values.inventory) throw new InputError(`-i INVENTORY is required\n${USAGE}`)
    const newKeys = [values['new-key-file'], values['new-key-env']].filter((v) => v !== undefined)
    if (action === 'rekey' ? newKeys.length !== 1 : newKeys.length)
      throw new InputError(`rekey, and only rekey, takes one of --new-key-file or --new-key-env\n${USAGE}`)
    const target = await vaultTarget(path.resolve(values.inventory), values['extra-vars'] ?? [])
    let done: string
    if (action === 'encrypt') done = await encryptSecretsFile(target)
    else if (action === 'decrypt') done = await decryptSecretsFile(target)
    else {
      const file = values['new-key-file']
      const newKey = file !== undefined ? await readKeyFile(path.resolve(file)) : readKeyEnv(values['new-key-env']!)
      done = await rekeySecretsFile(target, newKey)
    }
    out.write(`${done}\n`)
    return 0
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    err.write(`ERROR: ${message}\n`)
    const badArguments = String((error as { code?: string })?.code ?? '').startsWith('ERR_PARSE_ARGS')
    if (!(error instanceof InputError) && !badArguments) err.write(`${(error as Error)?.stack ?? ''}\n`)
    return 1
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await secretsCommand(process.argv.slice(2))
