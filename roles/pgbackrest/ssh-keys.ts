/**
 * The SSH keys pgBackRest's hosts use between themselves, derived from one generated secret: the
 * repository host's key (it logs in to the database hosts for backups) and the database hosts' key
 * (they log in to the repository host to push and fetch WAL). Deriving them on the controller makes
 * every host's authorized_keys known without reading another host, and a re-run writes the same
 * bytes. The private key is written in OpenSSH's own format (openssh-key-v1, unencrypted).
 */
import { createHmac, createPrivateKey, createPublicKey } from 'node:crypto'

/** Which side of the SSH link a key belongs to. */
export type KeyRole = 'repository' | 'database'

export interface DerivedKey {
  /** `ssh-ed25519 BASE64 COMMENT`, one line. */
  publicLine: string
  /** The OpenSSH private key file, PEM-armoured. */
  privateFile: string
}

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

const sshString = (value: Buffer | string): Buffer => {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

/** The Ed25519 key of one side, derived from the secret (HMAC-SHA256 with the side as the message). */
export function derivedKey(secret: string, role: KeyRole, comment = `hastack-pgbackrest-${role}`): DerivedKey {
  const seed = createHmac('sha256', secret).update(`hastack pgbackrest ssh ${role}`).digest()
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
  const pub = spki.subarray(spki.length - 32)
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)])
  const check = seed.readUInt32BE(0)
  const body = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ])
  const padding = Buffer.from(Array.from({ length: (8 - (body.length % 8)) % 8 }, (_, i) => i + 1))
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(Buffer.concat([body, padding])),
  ])
  const lines = blob.toString('base64').match(/.{1,70}/g) ?? []
  return {
    publicLine: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
    privateFile: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
  }
}
