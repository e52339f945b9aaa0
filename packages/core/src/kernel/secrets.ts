/**
 * Keeping credentials out of what a model, a callback or a trace can read. Every adapter scrubs
 * with these, so a secret is caught the same way everywhere — an offline chain (`<root>~<hop>…`)
 * by each of its links too, not only whole.
 */
import { b64uEncode, utf8Encode } from '../encoding/base64url.js'

/** Secrets shorter than this are not scrubbed (they would match ordinary text). */
const MIN_SECRET = 16

/**
 * What is searched for: the secret, each link of a chain, and each link's payload and signature
 * segments on their own (a token split at its dots still shows its claims; the header segment is
 * shared by every token of its kind, so it is not a secret).
 */
function partsOf(secret: string): string[] {
  if (secret.length < MIN_SECRET) return []
  // the same few secrets are checked on every tool result: their parts are computed once
  const known = partsCache.get(secret)
  if (known) return known
  const computed = computeParts(secret)
  if (partsCache.size >= PARTS_CACHE_MAX) partsCache.delete(partsCache.keys().next().value as string)
  partsCache.set(secret, computed)
  return computed
}

const partsCache = new Map<string, string[]>()
const PARTS_CACHE_MAX = 256

function computeParts(secret: string): string[] {
  const parts = new Set<string>([secret])
  for (const link of secret.split('~')) {
    parts.add(link)
    const segments = link.split('.')
    if (segments.length === 3) {
      parts.add(segments[1] as string)
      parts.add(segments[2] as string)
    }
  }
  // a resource that echoes its request base64-encoded (a header dump, a Basic-style blob) still
  // shows the token: its base64 at each of the three byte alignments, less the characters that
  // mix in the bytes around it, in both alphabets
  for (const whole of [secret, ...secret.split('~')]) {
    if (whole.length < MIN_SECRET) continue
    for (const core of base64Cores(whole)) parts.add(core)
    // a hex dump of it (byte-aligned, either case); its characters are all ASCII, so one byte each
    const hex = hexOf(whole)
    parts.add(hex)
    parts.add(hex.toUpperCase())
  }
  return [...parts].filter((p) => p.length >= MIN_SECRET)
}

/** Lowercase hex of a string's UTF-8 bytes. */
function hexOf(text: string): string {
  let out = ''
  for (const b of utf8Encode(text)) out += b.toString(16).padStart(2, '0')
  return out
}

/**
 * The base64 text that every encoding of `secret` contains wherever it sits in the encoded bytes:
 * for a start offset of 0, 1 or 2 bytes, the characters fully determined by the secret's own
 * bytes (the first and last group may mix in its neighbours' bits and are dropped), standard and
 * url-safe alphabets.
 */
function base64Cores(secret: string): string[] {
  const bytes = utf8Encode(secret)
  const out: string[] = []
  for (let offset = 0; offset < 3; offset++) {
    const padded = new Uint8Array(offset + bytes.length)
    padded.set(bytes, offset)
    const text = b64uEncode(padded)
    // characters 0..ceil(4·offset/3) carry the zero bytes' bits; the last 4 (a group with padding
    // or with the next bytes' bits) may differ in the real text
    const core = text.slice(Math.ceil((4 * offset) / 3) + 1, text.length - 4)
    if (core.length < MIN_SECRET) continue
    out.push(core, core.replace(/-/g, '+').replace(/_/g, '/'))
  }
  return out
}

/** Replace every secret (credential, mandate, chain link, or a token's payload or signature segment) in `text` with `[credential]`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text
  // longest first: a whole token goes as one, not as its segments around a leftover dot
  const parts = [...new Set(secrets.flatMap(partsOf))].sort((a, b) => b.length - a.length)
  for (const part of parts) out = out.split(part).join('[credential]')
  // a secret wrapped across lines (or spaced out, soft-broken, percent-encoded, hex with
  // separators) is still the secret, and cannot be cut out of the text around it: the whole text
  // is withheld
  return hasPart(out, parts) ? WITHHELD_TEXT : out
}

const WHITE_SPACE = /\s+/g
// quoted-printable soft line breaks (RFC 2045 §6.7): "=" at the end of a line joins it to the next
const SOFT_BREAK = /=\r?\n/g
const PERCENT = /%([0-9A-Fa-f]{2})/g
// what sits between the bytes of a hex dump: white space, ':' (colon-separated), '-', ','
const HEX_SEPARATORS = /[\s:,-]+/g

/** What stands in for a text that mentions a secret in a form that cannot be cut out. */
export const WITHHELD_TEXT = '[withheld: this text mentions a Mandate credential]'
/** What stands in for a tool result that could not be checked for secrets. */
export const UNCHECKABLE_TEXT = '[the tool result was withheld: it could not be checked for credentials]'

/**
 * A tool result as the model may read it: unchanged when it mentions no secret (see
 * {@link mentionsSecret}); a string with every secret cut out; any other value as its JSON with
 * every secret cut out (parsed back, so an object stays an object); withheld when it cannot be
 * checked (too large to walk and not serialisable) or the secret cannot be cut out.
 */
export function withoutSecrets(value: unknown, secrets: readonly string[]): unknown {
  if (!mentionsSecret(value, secrets)) return value
  if (typeof value === 'string') return scrubSecrets(value, secrets)
  // a secret split across several strings (lines in an array, content blocks a provider joins)
  // cannot be cut out of any one of them: nothing of the value is shown
  if (splitAcrossStrings(value, secrets)) return WITHHELD_TEXT
  let text: string | undefined
  try {
    text = JSON.stringify(value, jsonWithErrors)
  } catch {
    return UNCHECKABLE_TEXT
  }
  if (text === undefined) return UNCHECKABLE_TEXT
  const scrubbed = scrubSecrets(text, secrets)
  if (scrubbed === WITHHELD_TEXT) return WITHHELD_TEXT
  let out: unknown
  try {
    // the marker holds no quote or backslash, and secrets are base64 text: the JSON stays valid
    out = JSON.parse(scrubbed) as unknown
  } catch {
    out = scrubbed
  }
  // what JSON escaping hid from the cut (a token wrapped across lines is "\n"-separated in JSON
  // text) is still in the value: then nothing of it is shown
  return mentionsSecret(out, secrets) ? WITHHELD_TEXT : out
}

/** How deep and how wide a value is walked before the search falls back to its JSON text. */
const MAX_DEPTH = 32
const MAX_NODES = 10_000
/** Bytes (in byte views) searched at most; more counts as mentioning a secret. */
const MAX_BYTES = 1 << 20

class TooLarge extends Error {}

interface Walk {
  readonly parts: readonly string[]
  readonly seen: Set<object>
  nodes: number
  bytes: number
  /** Every string value met, in order (not keys): a secret split across them is found joined. */
  readonly texts: string[]
}

const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, l: number): { toString(enc: 'latin1'): string } } }).Buffer
let latin1: TextDecoder | undefined

/** Bytes as text, one character per byte (credentials are ASCII, so either decoder finds them). */
function bytesText(view: ArrayBufferView | ArrayBuffer): string {
  const buf = ArrayBuffer.isView(view) ? view.buffer : view
  const offset = ArrayBuffer.isView(view) ? view.byteOffset : 0
  const length = view.byteLength
  if (NodeBuffer !== undefined) return NodeBuffer.from(buf, offset, length).toString('latin1')
  latin1 ??= new TextDecoder('latin1')
  return latin1.decode(new Uint8Array(buf, offset, length))
}

type Ctor = abstract new (...args: never[]) => unknown
const globalCtor = (name: string): Ctor | undefined => {
  const c = (globalThis as Record<string, unknown>)[name]
  return typeof c === 'function' ? (c as Ctor) : undefined
}
// web platform objects keep their data in internal slots that no own property shows
const URL_LIKE = ['URL', 'URLSearchParams'].map(globalCtor).filter((c): c is Ctor => c !== undefined)
const HeadersCtor = globalCtor('Headers')
const FETCH_MESSAGES = ['Request', 'Response'].map(globalCtor).filter((c): c is Ctor => c !== undefined)

/**
 * Does `value` — a string, an Error with its message, stack, causes, `errors` and own properties (an
 * HTTP client's error carries its request config there), or any object graph — mention a secret?
 * The search follows every own property (symbol-keyed and non-enumerable too), array element, Map
 * and Set entry, byte view, `toJSON()` result, URL, Headers and fetch Request/Response (their URL and
 * headers). A graph too deep or too large to walk is searched through its JSON text instead (errors
 * in it with their message and stack); one that cannot be serialised, more than 1 MiB of bytes, or a
 * throwing getter counts as mentioning a secret (fail closed): the caller then replaces it with a
 * scrubbed message rather than pass it on unread.
 */
export function mentionsSecret(value: unknown, secrets: readonly string[]): boolean {
  const parts = secrets.flatMap(partsOf)
  if (parts.length === 0) return false
  try {
    const w: Walk = { parts, seen: new Set(), nodes: 0, bytes: 0, texts: [] }
    return walk(value, w, 0) || (w.texts.length > 1 && hasPart(w.texts.join(''), parts))
  } catch (err) {
    if (!(err instanceof TooLarge)) return true
  }
  try {
    const text = JSON.stringify(value, jsonWithErrors)
    // JSON punctuation (quotes, commas, brackets) is not in a token: without it, pieces rejoin
    return text === undefined || hasPart(text, parts) || hasPart(text.replace(JSON_PUNCTUATION, ''), parts)
  } catch {
    return true
  }
}

const JSON_PUNCTUATION = /["',[\]{}]+/g

/** Does a secret appear only once the string values of `value` are joined? */
function splitAcrossStrings(value: unknown, secrets: readonly string[]): boolean {
  const parts = secrets.flatMap(partsOf)
  const w: Walk = { parts, seen: new Set(), nodes: 0, bytes: 0, texts: [] }
  try {
    if (walk(value, w, 0)) return false
  } catch {
    // too large to walk: the caller's JSON path decides
    return false
  }
  return w.texts.length > 1 && hasPart(w.texts.join(''), parts)
}

/** JSON of anything: errors with their message, stack, cause and `errors`; bytes as text, bounded. */
function jsonWithErrors(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return String(v)
  if (v instanceof Error) return { ...v, name: v.name, message: v.message, stack: v.stack, cause: (v as { cause?: unknown }).cause, errors: (v as { errors?: unknown }).errors }
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    if (v.byteLength > MAX_BYTES) throw new TooLarge()
    return bytesText(v)
  }
  if (v instanceof Map) return [...v]
  if (v instanceof Set) return [...v]
  return v
}

function walk(value: unknown, w: Walk, depth: number): boolean {
  if (typeof value === 'string') {
    w.texts.push(value)
    return hasPart(value, w.parts)
  }
  if (value === null || typeof value !== 'object') return false
  if (w.seen.has(value)) return false
  if (depth > MAX_DEPTH || ++w.nodes > MAX_NODES) throw new TooLarge()
  w.seen.add(value)
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    w.bytes += value.byteLength
    // past the byte budget the JSON fallback cannot read them either: fail closed
    if (w.bytes > MAX_BYTES) return true
    return walk(bytesText(value), w, depth)
  }
  // a boxed string serialises as its text (its own keys are single characters)
  if (value instanceof String) return walk(String.prototype.valueOf.call(value), w, depth)
  // collections and web platform objects: their entries, then (below) their own properties too,
  // which JSON.stringify shows for a Map or Set with extra members
  if (value instanceof Map) {
    for (const [k, v] of value) if (walk(k, w, depth + 1) || walk(v, w, depth + 1)) return true
  } else if (value instanceof Set) {
    for (const v of value) if (walk(v, w, depth + 1)) return true
  } else if (URL_LIKE.some((c) => value instanceof c)) {
    if (walk(String(value), w, depth)) return true
  } else if (HeadersCtor !== undefined && value instanceof HeadersCtor) {
    for (const [k, v] of value as unknown as Iterable<[string, string]>) if (walk(k, w, depth) || walk(v, w, depth)) return true
  }
  if (FETCH_MESSAGES.some((c) => value instanceof c)) {
    const m = value as { url?: unknown; headers?: unknown }
    if (walk(m.url, w, depth + 1) || walk(m.headers, w, depth + 1)) return true
  }
  // an Error's message, stack and cause are own but not enumerable (or getters on its class)
  if (value instanceof Error) {
    const e = value as Error & { cause?: unknown; errors?: unknown }
    if (walk(e.message, w, depth) || walk(e.stack, w, depth) || walk(e.cause, w, depth + 1) || walk(e.errors, w, depth + 1)) return true
  }
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === 'string' && hasPart(key, w.parts)) return true
    if (walk((value as Record<PropertyKey, unknown>)[key], w, depth + 1)) return true
  }
  // a class may keep what it serialises in private fields
  const toJSON = (value as { toJSON?: unknown }).toJSON
  if (typeof toJSON === 'function' && !(value instanceof Date) && walk(toJSON.call(value), w, depth + 1)) return true
  return false
}

/**
 * A part in the text as is, or in the text a reader would rebuild from it: white space and
 * quoted-printable soft breaks taken out (a token wrapped across lines), percent-escapes decoded,
 * and a hex dump's separators (`65:79:4a`, `65 79 4a`) taken out.
 */
function hasPart(text: string, parts: readonly string[]): boolean {
  const has = (t: string) => parts.some((p) => t.includes(p))
  if (has(text)) return true
  const joined = /\s/.test(text) ? text.replace(SOFT_BREAK, '').replace(WHITE_SPACE, '') : text
  if (joined !== text && has(joined)) return true
  if (joined.includes('%')) {
    const decoded = joined.replace(PERCENT, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    if (decoded !== joined && has(decoded)) return true
  }
  if (HEX_RUN.test(text)) {
    const hex = text.replace(HEX_SEPARATORS, '').toLowerCase()
    if (hex !== text && has(hex)) return true
  }
  // a dump that prints a token a line at a time between other columns (xxd's offset and hex before
  // its ASCII column, a numbered log): the longest token-like run of each line, joined
  if (text.includes('\n') && has(longestRunPerLine(text))) return true
  return false
}

// characters of a compact JWS, an offline chain, and base64 in either alphabet
const TOKEN_CHAR = new Uint8Array(128)
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~+/=-') TOKEN_CHAR[ch.charCodeAt(0)] = 1

/** The longest run of token characters of each line, joined (one pass, no per-line strings). */
function longestRunPerLine(text: string): string {
  let out = ''
  let bestStart = 0
  let bestLen = 0
  let runStart = 0
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 10
    if (c < 128 && TOKEN_CHAR[c] === 1) continue
    if (i - runStart > bestLen) {
      bestStart = runStart
      bestLen = i - runStart
    }
    runStart = i + 1
    if (c === 10) {
      if (bestLen > 0) out += text.slice(bestStart, bestStart + bestLen)
      bestLen = 0
    }
  }
  return out
}

// at least 16 bytes of hex with separators between them: worth a separator-free look
const HEX_RUN = /(?:[0-9A-Fa-f]{2}[\s:,-]+){15}[0-9A-Fa-f]{2}/
