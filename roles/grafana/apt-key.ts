/**
 * Pinning an APT signing key by fingerprint: the OpenPGP v4 fingerprints of the primary keys in
 * an ASCII-armored key block (RFC 4880: SHA-1 over 0x99, the two-byte length and the public-key
 * packet's body), read here on the controller so the host needs no gpg, and the judgement that a
 * downloaded key is exactly the pinned one before it may sign a source.
 */
import { createHash } from 'node:crypto'

const PUBLIC_KEY_TAG = 6

/** The binary packets of an armored block: the base64 between the headers and the `=` checksum line. */
function dearmor(armored: string): Buffer {
  const lines = armored.replace(/\r/g, '').split('\n')
  const begin = lines.findIndex((l) => l.trim() === '-----BEGIN PGP PUBLIC KEY BLOCK-----')
  const end = lines.findIndex((l) => l.trim() === '-----END PGP PUBLIC KEY BLOCK-----')
  if (begin < 0 || end < begin) throw new Error('not an armored OpenPGP public key block')
  // apt would trust every key of the file: a second block must not slip another key past the pin.
  if (lines.filter((l) => l.trim().startsWith('-----BEGIN ')).length > 1) throw new Error('more than one armored block')
  const body = lines.slice(begin + 1, end)
  const blank = body.findIndex((l) => l.trim() === '')
  const data = body.slice(blank + 1).filter((l) => !l.startsWith('='))
  return Buffer.from(data.join(''), 'base64')
}

/** One packet's tag and body, and where the next begins; partial and indeterminate lengths are refused. */
function packetAt(bytes: Buffer, at: number): { tag: number; body: Buffer; next: number } {
  const first = bytes[at]
  if (first === undefined || (first & 0x80) === 0) throw new Error(`malformed OpenPGP packet at byte ${at}`)
  let tag: number
  let length: number
  let start: number
  if (first & 0x40) {
    tag = first & 0x3f
    const o1 = bytes[at + 1] ?? 0
    if (o1 < 192) [length, start] = [o1, at + 2]
    else if (o1 < 224) [length, start] = [((o1 - 192) << 8) + (bytes[at + 2] ?? 0) + 192, at + 3]
    else if (o1 === 255) [length, start] = [bytes.readUInt32BE(at + 2), at + 6]
    else throw new Error('partial-length OpenPGP packets are not expected in a key block')
  } else {
    tag = (first >> 2) & 0x0f
    const kind = first & 0x03
    if (kind === 3) throw new Error('indeterminate-length OpenPGP packets are not expected in a key block')
    const size = [1, 2, 4][kind]!
    length = size === 1 ? bytes[at + 1]! : size === 2 ? bytes.readUInt16BE(at + 1) : bytes.readUInt32BE(at + 1)
    start = at + 1 + size
  }
  if (start + length > bytes.length) throw new Error('truncated OpenPGP packet')
  return { tag, body: bytes.subarray(start, start + length), next: start + length }
}

/** The upper-case hex fingerprints of every primary key in an armored block (v4 keys only). */
export function primaryKeyFingerprints(armored: string): string[] {
  const bytes = dearmor(armored)
  const found: string[] = []
  for (let at = 0; at < bytes.length;) {
    const { tag, body, next } = packetAt(bytes, at)
    if (tag === PUBLIC_KEY_TAG) {
      if (body[0] !== 4) throw new Error(`OpenPGP key version ${body[0]} is not supported (v4 only)`)
      const head = Buffer.from([0x99, body.length >> 8, body.length & 0xff])
      found.push(createHash('sha1').update(head).update(body).digest('hex').toUpperCase())
    }
    at = next
  }
  return found
}

/** Why a downloaded key block is not the pinned key, or undefined when it is exactly that key. */
export function keyMismatch(armored: string, pinned: string): string | undefined {
  let found: string[]
  try {
    found = primaryKeyFingerprints(armored)
  } catch (error) {
    return `the downloaded key cannot be read: ${(error as Error).message}`
  }
  const want = pinned.replace(/\s/g, '').toUpperCase()
  if (found.length === 1 && found[0] === want) return undefined
  return `the downloaded key has fingerprint(s) ${found.join(', ') || '(none)'}, not the pinned ${want}`
}
