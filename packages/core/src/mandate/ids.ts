import { backend } from '../crypto/backend.js'
import { b64uEncode } from '../encoding/base64url.js'

/** A fresh 128-bit random identifier (base64url, 22 characters): `jti`, task ids, approval ids. */
export function randomId(): string {
  return b64uEncode(backend.randomBytes(16))
}
