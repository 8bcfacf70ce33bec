/**
 * SCRAM-SHA-256 verifiers computed here, on the machine running hastack: a
 * role's password is checked against `pg_authid.rolpassword` and set as a
 * verifier, so the plain password never reaches a host's process list or logs.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'

const ITERATIONS = 4096

function keys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  }
}

/** A new verifier in PostgreSQL's format: `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = ITERATIONS): string {
  const { storedKey, serverKey } = keys(password, salt, iterations)
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** Whether a stored verifier (or an md5/plain value, which never matches) belongs to this password. */
export function scramMatches(verifier: string, password: string): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier.trim())
  if (!m) return false
  const { storedKey } = keys(password, Buffer.from(m[2]!, 'base64'), Number(m[1]))
  return storedKey.toString('base64') === m[3]
}
