import type { JsonValue } from '@mandate/core'

/**
 * RFC 8785 canonical JSON for the values the audit log holds (strings, finite numbers, booleans,
 * null, arrays, objects): members sorted by UTF-16 code units, no whitespace, ECMAScript number
 * serialisation (which is what RFC 8785 specifies).
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('non-finite number in canonical JSON')
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string
    const v = value[k]
    if (v === undefined) continue
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${canonicalJson(v)}`
  }
  return `${out}}`
}
