import type { JsonValue } from '@mandate/core'

// Strings without a quote, backslash, control character or surrogate serialise as themselves in
// quotes (what JSON.stringify would produce); the rest go through JSON.stringify.
const PLAIN = /^[^"\\\x00-\x1f\ud800-\udfff]*$/
const quote = (s: string): string => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s))

/**
 * RFC 8785 canonical JSON for the values the audit log holds (strings, finite numbers, booleans,
 * null, arrays, objects): members sorted by UTF-16 code units, no whitespace, ECMAScript number
 * serialisation (which is what RFC 8785 specifies).
 */
export function canonicalJson(value: JsonValue): string {
  if (typeof value === 'string') return quote(value)
  if (value === null || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('non-finite number in canonical JSON')
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i] as JsonValue)
    return `${out}]`
  }
  const keys = Object.keys(value).sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string
    const v = value[k]
    if (v === undefined) continue
    out += `${out.length > 1 ? ',' : ''}${quote(k)}:${canonicalJson(v)}`
  }
  return `${out}}`
}
