/**
 * Bounded store keys. Replay keys are built from attacker-influenced parts (a proof's `jti`, a
 * client id), so a key is stored literally only while it is short; a longer one is replaced by its
 * SHA-256. The `k:` / `h:` tags keep the two spaces apart: no literal key can equal a hashed one.
 */
import { createHash } from 'node:crypto'

/** Keys longer than this (UTF-8 bytes) are stored as `h:<sha256>`. */
export const MAX_LITERAL_KEY_BYTES = 200

export function boundedKey(prefix: string, key: string): string {
  if (Buffer.byteLength(key, 'utf8') <= MAX_LITERAL_KEY_BYTES) return `${prefix}k:${key}`
  return `${prefix}h:${createHash('sha256').update(key, 'utf8').digest('base64url')}`
}
