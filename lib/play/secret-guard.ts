/**
 * The engine's guard against a lost secrets file. Before a run changes anything it
 * compares each host's secret fingerprints (read under its lock) with this run's
 * secrets and refuses, as bad input, when a secret the host already holds was
 * generated anew or differs from the file; after a real run it records the
 * fingerprints of the secrets each host's roles were given. It knows roles only
 * through their schemas (`secret: true`).
 */
import type { Connection, Inventory, Play } from '../types.ts'
import { InputError } from '../types.ts'
import { secretsOfRun } from '../inventory/secrets.ts'
import { displayPath } from '../inventory/yaml-source.ts'
import {
  FINGERPRINT_DIR,
  lostSecrets,
  renderFingerprints,
  updatedFingerprints,
  type Fingerprints,
  type SecretsOnHost,
} from '../facts/fingerprints.ts'

/** The directory of a host's engine state (`hastack_state_dir`, default /var/lib/hastack). */
export function stateDir(inventory: Inventory, host: string): string {
  const dir = inventory.hosts.get(host)?.vars.hastack_state_dir
  return typeof dir === 'string' && dir ? dir.replace(/\/+$/, '') : FINGERPRINT_DIR
}

/** The fingerprint file of a host. */
export function fingerprintFile(inventory: Inventory, host: string): string {
  return `${stateDir(inventory, host)}/secrets.sha256`
}

/** The names of the secret variables a play's roles declare. */
export function secretNamesOf(play: Play): string[] {
  const names = (play.roles ?? []).flatMap((r) => Object.entries(r.schema ?? {}).filter(([, s]) => s.secret === true))
  return [...new Set(names.map(([name]) => name))]
}

/** A host's string values of the given secret variables, each marked when it comes from the secrets file. */
export function secretsOnHost(inventory: Inventory, host: string, names: Iterable<string>): SecretsOnHost['values'] {
  const vars = inventory.hosts.get(host)?.vars ?? {}
  const out: SecretsOnHost['values'] = {}
  for (const name of names) {
    const value = vars[name]
    if (typeof value !== 'string' && typeof value !== 'number') continue
    out[name] = { value: String(value), fromFile: inventory.secrets[name] === String(value) }
  }
  return out
}

/**
 * Throw (bad input, exit 1) when some host's fingerprints show that the secrets file was
 * lost or swapped; the secrets this run generated are taken out of the file again first.
 */
export async function refuseLostSecrets(inventory: Inventory, heldByHost: Map<string, Fingerprints>): Promise<void> {
  const run = secretsOfRun(inventory)
  const problems: string[] = []
  const hosts: string[] = []
  for (const [host, held] of heldByHost) {
    const lost = lostSecrets({ host, held, values: secretsOnHost(inventory, host, Object.keys(held)) }, run.generated)
    if (lost.length) hosts.push(host)
    for (const { name, why } of lost)
      problems.push(
        why === 'generated'
          ? `${host} holds ${name}, but it is not in the secrets file: this run would generate a new one`
          : `${host} holds another value of ${name} than the secrets file`,
      )
  }
  if (!problems.length) return
  await run.restore()
  const file = displayPath(run.file)
  throw new InputError(
    [
      `the secrets file ${file} does not match what the hosts were given ` +
        '(was it lost, replaced or restored from an old copy?):',
      ...problems.map((p) => `  - ${p}`),
      'Nothing was changed (the secrets file is as it was before this run).',
      `To go on with the cluster as it is, restore ${file} from your backup and run again`,
      '(or set these variables to their current values in the inventory or with -e).',
      `To replace these secrets on purpose, remove ${fingerprintFile(inventory, hosts[0]!)} on ${hosts.join(', ')}:`,
      'the next run then sets new values, and whatever still uses the old ones must be changed too.',
    ].join('\n'),
  )
}

/** Write a host's fingerprints when they changed (root, 0600); false when nothing needed writing. */
export async function recordFingerprints(
  conn: Connection,
  dir: string,
  held: Fingerprints,
  values: Record<string, string>,
): Promise<boolean> {
  const next = updatedFingerprints(held, values)
  if (!next) return false
  await conn.run(['install', '-d', '-m', '0755', '-o', 'root', '-g', 'root', dir], { check: true, timeoutMs: 30_000 })
  await conn.put(`${dir}/secrets.sha256`, renderFingerprints(next), { mode: '0600', owner: 'root', group: 'root' })
  return true
}
