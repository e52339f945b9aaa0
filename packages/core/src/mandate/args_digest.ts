import canonicalize from 'canonicalize'
import { backend } from '../crypto/backend.js'
import { b64uEncode, utf8Encode } from '../encoding/base64url.js'
import { MandateError } from '../errors.js'
import type { JsonValue } from '../encoding/strict_json.js'
import { snapshotArguments, type ArgumentLimits } from './args_snapshot.js'

/**
 * The digest that binds a call credential and its proof to exact arguments: base64url(SHA-256(RFC
 * 8785 canonical JSON)). Absent arguments are treated as `{}` (an MCP call without arguments).
 *
 * The arguments are first taken through {@link snapshotArguments} with the same `limits`, so size
 * and shape are refused (`ARGUMENTS_INVALID`) before anything is sorted, serialised or hashed.
 * Callers that then run the tool should snapshot once themselves and pass the snapshot here and
 * to the tool; snapshotting a snapshot gives the same value.
 */
export function argumentsDigest(args: unknown, limits?: Partial<ArgumentLimits>): string {
  return digestOfSnapshot(snapshotArguments(args, limits))
}

/** @internal The digest of a value that already is a snapshot (the guard and narrowing take one first). */
export function digestOfSnapshot(snapshot: JsonValue): string {
  let json: string | undefined
  try {
    json = canonicalize(snapshot)
  } catch (err) {
    // unreachable for a snapshot; kept so a canonicalizer change cannot surface a raw Error
    throw new MandateError('ARGUMENTS_INVALID', 'tool arguments are not JSON-serialisable', { cause: err })
  }
  if (json === undefined) throw new MandateError('ARGUMENTS_INVALID', 'tool arguments are not JSON-serialisable')
  return b64uEncode(backend.sha256(utf8Encode(json)))
}

/** base64url(SHA-256(ASCII(token))): the DPoP `ath` and the `parent_hash` of a delegation. */
export function tokenHash(token: string): string {
  return b64uEncode(backend.sha256(utf8Encode(token)))
}
