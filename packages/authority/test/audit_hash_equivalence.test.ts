/**
 * The audit record hash is SHA-256 over the UTF-8 of the record's RFC 8785 text. auditHash hashes
 * the string in one native call; this checks it against the byte-level definition (TextEncoder,
 * SHA-256 of the bytes, base64url) on arbitrary records, lone surrogates included.
 */
import fc from 'fast-check'
import { b64uEncode, cryptoBackend, type JsonValue } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { auditHash } from '../src/audit/hash.js'
import { canonicalJson } from '../src/internal/canonical_json.js'

const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constantFrom('\ud800', 'a\udc00b', '\u2028', '"\\\u0000'))
const json: fc.Arbitrary<JsonValue> = fc.letrec<{ v: JsonValue }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, text, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(text, tie('v'), { maxKeys: 4 })),
})).v
const reference = (r: { seq: number; time: number; type: string; fields: Record<string, JsonValue>; prev: string }) =>
  b64uEncode(cryptoBackend.sha256(new TextEncoder().encode(canonicalJson(r as unknown as JsonValue))))

describe('audit hash', () => {
  it('equals SHA-256 of the TextEncoder bytes of the canonical record', () => {
    fc.assert(fc.property(fc.nat(), fc.nat(), text, fc.dictionary(text, json, { maxKeys: 6 }), text, (seq, time, type, fields, prev) => {
      const r = { seq, time, type, fields, prev }
      expect(auditHash(r as never)).toBe(reference(r))
    }), { numRuns: 500 })
  })
  it('the string hash is the hash of its TextEncoder bytes (lone surrogates become U+FFFD in both)', () => {
    fc.assert(fc.property(text, (s) => {
      expect(cryptoBackend.sha256Base64url(s)).toBe(b64uEncode(cryptoBackend.sha256(new TextEncoder().encode(s))))
    }), { numRuns: 1000 })
    expect(cryptoBackend.sha256Base64url('\ud800')).toBe(cryptoBackend.sha256Base64url('\ufffd'))
  })
})
