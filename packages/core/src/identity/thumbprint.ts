import { backend } from '../crypto/backend.js'
import { b64uEncode, utf8Encode } from '../encoding/base64url.js'
import { MandateError } from '../errors.js'

/** Members that RFC 7638 §3.2 hashes, per key type, in lexicographic order. */
const REQUIRED: Record<string, readonly string[]> = {
  OKP: ['crv', 'kty', 'x'],
  EC: ['crv', 'kty', 'x', 'y'],
  RSA: ['e', 'kty', 'n'],
  oct: ['k', 'kty'],
}

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url): only the required members, sorted, no whitespace.
 * Optional members such as `kid` or `alg` never change the result.
 */
export function jwkThumbprint(jwk: { readonly kty: string }): string {
  // own members only: a kty such as "constructor" or "__proto__" names no key type
  const members = typeof jwk?.kty === 'string' && Object.hasOwn(REQUIRED, jwk.kty) ? REQUIRED[jwk.kty] : undefined
  if (!members) throw new MandateError('KEY_INVALID', 'unsupported JWK kty for thumbprint')
  let json = '{'
  members.forEach((m, i) => {
    const v = (jwk as Record<string, unknown>)[m]
    if (typeof v !== 'string') throw new MandateError('KEY_INVALID', `JWK member ${m} missing`)
    json += `${i ? ',' : ''}${JSON.stringify(m)}:${JSON.stringify(v)}`
  })
  json += '}'
  return b64uEncode(backend.sha256(utf8Encode(json)))
}

/** The `did:key` string is not a JWK; this is the JWK thumbprint URI form (RFC 9278). */
export function jwkThumbprintUri(jwk: { readonly kty: string }): string {
  return `urn:ietf:params:oauth:jwk-thumbprint:sha-256:${jwkThumbprint(jwk)}`
}
