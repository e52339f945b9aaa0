import canonicalize from 'canonicalize'
import { backend } from '../crypto/backend.js'
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
  return backend.sha256Base64url(canonicalSnapshot(snapshot))
}

/**
 * RFC 8785 canonical JSON of a snapshot. A snapshot is plain JSON data already (finite numbers,
 * no lone surrogates, no undefined, no toJSON, no cycles), so JCS reduces to: members sorted by
 * UTF-16 code units (Array.prototype.sort's default order), ECMAScript number and string
 * serialisation (JSON.stringify's). Equal to the `canonicalize` package's output on every snapshot
 * (test/guard_perf_equivalence.test.ts), without its per-value checks and closures.
 */
export function canonicalSnapshot(v: JsonValue): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v)
  if (Array.isArray(v)) {
    let out = '['
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + canonicalSnapshot(v[i] as JsonValue)
    return `${out}]`
  }
  const keys = Object.keys(v).sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string
    out += `${i ? ',' : ''}${JSON.stringify(k)}:${canonicalSnapshot(v[k] as JsonValue)}`
  }
  return `${out}}`
}

/** The reference implementation (the `canonicalize` package), for equivalence tests. @internal */
export function canonicalizeReference(v: JsonValue): string {
  let json: string | undefined
  try {
    json = canonicalize(v)
  } catch (err) {
    throw new MandateError('ARGUMENTS_INVALID', 'tool arguments are not JSON-serialisable', { cause: err })
  }
  if (json === undefined) throw new MandateError('ARGUMENTS_INVALID', 'tool arguments are not JSON-serialisable')
  return json
}

/** base64url(SHA-256(ASCII(token))): the DPoP `ath` and the `parent_hash` of a delegation. */
export function tokenHash(token: string): string {
  return backend.sha256Base64url(token)
}
