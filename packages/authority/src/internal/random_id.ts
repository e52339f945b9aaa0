import { b64uEncode, cryptoBackend } from '@mandate/core'

// 128-bit identifiers from the same CSPRNG as core's randomId, drawn from a pool filled 4 KiB at a
// time (as node:crypto does for randomUUID): one RNG call per 256 ids instead of one per id.
const POOL_SIZE = 4096
const ID_BYTES = 16
let pool: Uint8Array = new Uint8Array(0)
let offset = 0

/** A fresh 128-bit random identifier (base64url, 22 characters), like core's randomId. */
export function pooledRandomId(): string {
  if (offset + ID_BYTES > pool.length) {
    pool = cryptoBackend.randomBytes(POOL_SIZE)
    offset = 0
  }
  const bytes = pool.subarray(offset, offset + ID_BYTES)
  offset += ID_BYTES
  const id = b64uEncode(bytes)
  bytes.fill(0) // used bytes do not linger in the pool
  return id
}
