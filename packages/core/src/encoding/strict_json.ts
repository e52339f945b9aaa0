import { MandateError } from '../errors.js'

export interface StrictJsonLimits {
  /** Maximum nesting of objects and arrays. */
  maxDepth: number
  /** Maximum elements in any one array. */
  maxArray: number
  /** Maximum members in any one object. */
  maxMembers: number
}

export const DEFAULT_JSON_LIMITS: StrictJsonLimits = { maxDepth: 24, maxArray: 256, maxMembers: 128 }

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }
export type JsonObject = { [key: string]: JsonValue }

/**
 * Parse JSON text strictly: bounded nesting, bounded arrays and objects, no duplicate member names
 * (JSON.parse keeps the last one silently, so a verifier and a signer could disagree), and no lone
 * UTF-16 surrogates in strings. The structural scan runs before JSON.parse, so deep input is refused
 * without recursion.
 */
export function parseStrictJson(text: string, limits: StrictJsonLimits = DEFAULT_JSON_LIMITS): JsonValue {
  const names = scan(text, limits)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new MandateError('TOKEN_MALFORMED', 'invalid JSON')
  }
  // JSON.parse collapses duplicates; if it produced fewer members than the text names, there was one.
  if (countMembers(value, limits) !== names) {
    throw new MandateError('JSON_DUPLICATE_MEMBER', 'duplicate JSON member name')
  }
  return value as JsonValue
}

/** Parse a JSON object (not an array or scalar). */
export function parseStrictJsonObject(text: string, limits?: StrictJsonLimits): JsonObject {
  const value = parseStrictJson(text, limits)
  if (!isPlainObject(value)) throw new MandateError('TOKEN_MALFORMED', 'JSON value is not an object')
  return value
}

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

type WellFormed = { isWellFormed?: () => boolean }
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** True when the UTF-16 text has a lone surrogate (raw, not escaped). */
export function hasLoneSurrogate(text: string): boolean {
  const wf = (text as unknown as WellFormed).isWellFormed
  return wf ? !wf.call(text) : LONE_SURROGATE.test(text)
}

/**
 * Walks the text once: checks nesting and array/object sizes, counts member names. Strings are
 * skipped with indexOf (native) rather than char by char; lone surrogates, raw or escaped, are
 * checked once over the whole text.
 */
function scan(text: string, limits: StrictJsonLimits): number {
  if (hasLoneSurrogate(text)) throw new MandateError('INVALID_UTF8', 'lone surrogate in JSON string')
  if (text.indexOf('\\u') !== -1 && hasLoneSurrogateEscape(text, 0, text.length)) {
    throw new MandateError('INVALID_UTF8', 'lone surrogate escape in JSON string')
  }
  let depth = 0
  let names = 0
  // per-level element counters; index = depth
  const counts: number[] = []
  const isArray: boolean[] = []
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // string: its end is the next quote not preceded by an odd number of backslashes
      let j = text.indexOf('"', i + 1)
      for (;;) {
        if (j === -1) throw new MandateError('TOKEN_MALFORMED', 'unterminated JSON string')
        let bs = 0
        for (let k = j - 1; text.charCodeAt(k) === 0x5c; k--) bs++
        if ((bs & 1) === 0) break
        j = text.indexOf('"', j + 1)
      }
      // a member name is a string followed by ':'
      let k = j + 1
      while (k < n && isWs(text.charCodeAt(k))) k++
      if (text.charCodeAt(k) === 0x3a) names++
      i = j + 1
      continue
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      // a number: its literal must be exactly the value it parses to (see exactNumber)
      let j = i + 1
      while (j < n && isNumberChar(text.charCodeAt(j))) j++
      if (!exactNumber(text, i, j)) {
        throw new MandateError('TOKEN_MALFORMED', 'JSON number is not exactly a double (two different texts would read as one value)', { detail: { limit: 'number' } })
      }
      i = j
      continue
    }
    if (c === 0x7b || c === 0x5b) {
      depth++
      if (depth > limits.maxDepth) throw new MandateError('JSON_TOO_DEEP', 'JSON nesting too deep', { detail: { limit: 'depth' } })
      counts[depth] = 0
      isArray[depth] = c === 0x5b
    } else if (c === 0x7d || c === 0x5d) {
      depth--
      if (depth < 0) throw new MandateError('TOKEN_MALFORMED', 'invalid JSON')
    } else if (c === 0x2c && depth > 0) {
      const count = (counts[depth] ?? 0) + 1
      counts[depth] = count
      if (isArray[depth] ? count >= limits.maxArray : count >= limits.maxMembers) {
        // detail.limit tells a size limit from a syntax error (callers map it to their own code)
        throw new MandateError('TOKEN_MALFORMED', isArray[depth] ? 'JSON array too long' : 'JSON object has too many members', { detail: { limit: isArray[depth] ? 'array' : 'members' } })
      }
    }
    i++
  }
  return names
}

function hasLoneSurrogateEscape(text: string, start: number, end: number): boolean {
  let idx = text.indexOf('\\u', start)
  while (idx !== -1 && idx < end) {
    // skip an escaped backslash ("\\u" preceded by another backslash is a literal)
    let bs = 0
    for (let b = idx - 1; b >= start && text.charCodeAt(b) === 0x5c; b--) bs++
    if (bs % 2 === 0) {
      const unit = parseInt(text.slice(idx + 2, idx + 6), 16)
      if (unit >= 0xd800 && unit <= 0xdbff) {
        const next = text.slice(idx + 6, idx + 8) === '\\u' ? parseInt(text.slice(idx + 8, idx + 12), 16) : NaN
        if (!(next >= 0xdc00 && next <= 0xdfff)) return true
        idx = text.indexOf('\\u', idx + 12)
        continue
      }
      if (unit >= 0xdc00 && unit <= 0xdfff) return true
    }
    idx = text.indexOf('\\u', idx + 2)
  }
  return false
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d
}

/**
 * Does the number literal `text[start, end)` denote exactly the decimal value of the double it
 * parses to (in its shortest round-trip form)? Otherwise two different texts read as one value —
 * `9007199254740993` and `9007199254740992`, `500.00000000000001` and `500` — so a digest or a
 * signature over the parsed value binds both, while a reader that keeps numbers exact (Python,
 * Go's json.Number, BigDecimal) tells them apart (RFC 7493 §2.2, RFC 8785 §3.2.2.3). Up to 15
 * significant digits without an exponent always round-trip (DBL_DIG), so common numbers are not
 * re-read. Non-finite values (`1e400`) are left to the caller's range checks, as before.
 */
function exactNumber(text: string, start: number, end: number): boolean {
  if (end - start <= 15) {
    let plain = true
    for (let k = start; k < end; k++) {
      const c = text.charCodeAt(k)
      if (c === 0x65 || c === 0x45) {
        plain = false
        break
      }
    }
    if (plain) return true
  }
  const literal = text.slice(start, end)
  const value = Number(literal)
  if (!Number.isFinite(value)) return true
  const a = decimalKey(literal)
  // not a JSON number at all: JSON.parse refuses it with its own error
  if (a === undefined) return true
  return a === decimalKey(String(value))
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

/** A decimal literal as sign, significant digits and exponent, so equal values give equal keys. */
function decimalKey(literal: string): string | undefined {
  const m = DECIMAL.exec(literal)
  if (!m) return undefined
  const frac = m[3] ?? ''
  let digits = ((m[2] as string) + frac).replace(/^0+/, '')
  if (digits === '') return '0'
  let exp = BigInt(m[4] ?? '0') - BigInt(frac.length)
  const trimmed = digits.replace(/0+$/, '')
  exp += BigInt(digits.length - trimmed.length)
  digits = trimmed
  return `${m[1] as string}${digits}e${exp}`
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

function countMembers(value: unknown, limits: StrictJsonLimits): number {
  if (typeof value !== 'object' || value === null) return 0
  let total = 0
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      if (typeof v === 'object' && v !== null) total += countMembers(v, limits)
    }
    return total
  }
  // Object.keys is much faster than for…in on JSON.parse output (no prototype walk)
  const keys = Object.keys(value)
  total = keys.length
  for (let i = 0; i < keys.length; i++) {
    const v = (value as Record<string, unknown>)[keys[i] as string]
    if (typeof v === 'object' && v !== null) total += countMembers(v, limits)
  }
  return total
}
