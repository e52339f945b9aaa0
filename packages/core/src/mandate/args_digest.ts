import canonicalize from 'canonicalize'
import { backend } from '../crypto/backend.js'
import { b64uEncode, utf8Encode } from '../encoding/base64url.js'
import { MandateError } from '../errors.js'

export const MAX_ARGUMENTS_JSON = 256 * 1024

/**
 * The digest that binds a call credential and its proof to exact arguments: base64url(SHA-256(RFC
 * 8785 canonical JSON)). Absent arguments are treated as `{}` (an MCP call without arguments).
 */
export function argumentsDigest(args: unknown): string {
  let json: string | undefined
  try {
    json = canonicalize(args === undefined ? {} : args)
  } catch {
    throw new MandateError('INVALID_REQUEST', 'tool arguments are not JSON-serialisable')
  }
  if (json === undefined) throw new MandateError('INVALID_REQUEST', 'tool arguments are not JSON-serialisable')
  if (json.length > MAX_ARGUMENTS_JSON) throw new MandateError('INVALID_REQUEST', 'tool arguments are too large')
  return b64uEncode(backend.sha256(utf8Encode(json)))
}

/** base64url(SHA-256(ASCII(token))): the DPoP `ath` and the `parent_hash` of a delegation. */
export function tokenHash(token: string): string {
  return b64uEncode(backend.sha256(utf8Encode(token)))
}
