import { base64urlnopad } from '@scure/base'
import { MandateError, type MandateErrorCode } from '../errors.js'

const B64URL = /^[A-Za-z0-9_-]*$/

interface BufferLike {
  from(data: ArrayBufferLike, offset: number, length: number): Uint8Array & { toString(enc: 'base64url' | 'utf8' | 'latin1'): string }
  from(data: string, enc: 'base64url' | 'utf8' | 'latin1'): Uint8Array
}
type GetBuiltin = (id: string) => unknown
const getBuiltin: GetBuiltin | undefined = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process?.getBuiltinModule
// Node's Buffer is much faster than a JS codec; fall back to @scure/base elsewhere.
const NodeBuffer = (globalThis as { Buffer?: BufferLike }).Buffer
// node:buffer's isUtf8 (simdutf) validates far faster than a fatal TextDecoder can throw-or-not
const nodeIsUtf8 = (getBuiltin?.('node:buffer') as { isUtf8?: (b: Uint8Array) => boolean } | undefined)?.isUtf8

/** Encode bytes or a UTF-8 string as unpadded base64url. */
export function b64uEncode(input: Uint8Array | string): string {
  const bytes = typeof input === 'string' ? utf8Encode(input) : input
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
  return base64urlnopad.encode(bytes)
}

/**
 * Strict unpadded base64url decode: only the URL-safe alphabet, no padding, no whitespace, no
 * impossible lengths, and no non-zero trailing bits (so every value has exactly one encoding).
 */
export function b64uDecode(input: string, code: MandateErrorCode = 'TOKEN_MALFORMED', what = 'value'): Uint8Array {
  if (typeof input !== 'string' || input.length % 4 === 1) throw new MandateError(code, `${what} is not base64url`)
  if (NodeBuffer) {
    // Node's decoder is lenient (skips bad characters, accepts '+' '/' '='); an exact round trip
    // proves the input was canonical unpadded base64url, faster than a regex over the input.
    const out = NodeBuffer.from(input, 'base64url') as Uint8Array & { toString(enc: 'base64url'): string }
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
    if (out.toString('base64url') !== input) {
      throw new MandateError(code, B64URL.test(input) ? `${what} is not canonical base64url` : `${what} is not base64url`)
    }
    return bytes
  }
  const rem = input.length % 4
  if (!B64URL.test(input)) throw new MandateError(code, `${what} is not base64url`)
  if (rem !== 0) {
    // the last character's unused low bits must be zero
    const v = sextet(input.charCodeAt(input.length - 1))
    if ((rem === 2 && (v & 0x0f) !== 0) || (rem === 3 && (v & 0x03) !== 0)) {
      throw new MandateError(code, `${what} is not canonical base64url`)
    }
  }
  return base64urlnopad.decode(input)
}

function sextet(c: number): number {
  if (c >= 65 && c <= 90) return c - 65
  if (c >= 97 && c <= 122) return c - 71
  if (c >= 48 && c <= 57) return c + 4
  return c === 45 ? 62 : 63
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function utf8Encode(s: string): Uint8Array {
  // Buffer's encoder is ~3x faster than TextEncoder on Node; both replace lone surrogates with U+FFFD
  if (NodeBuffer) {
    const b = NodeBuffer.from(s, 'utf8')
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }
  return encoder.encode(s)
}

interface ScratchBuffer {
  readonly length: number
  write(s: string, offset: number, enc: 'base64url'): number
  toString(enc: 'base64url' | 'utf8', start: number, end: number): string
  subarray(start: number, end: number): Uint8Array
}
const allocSlow = (NodeBuffer as { allocUnsafeSlow?: (n: number) => ScratchBuffer } | undefined)?.allocUnsafeSlow
// One private buffer for decode-then-read-as-text: the bytes never leave this module and are read
// synchronously, so every JWS header and payload decodes without a Buffer allocation of its own.
let scratch: ScratchBuffer | undefined
const SCRATCH_MAX = 96 * 1024

/**
 * Strict base64url decode straight to text: the same rules as {@link b64uDecode} (canonical
 * unpadded base64url only), then strict UTF-8 (as {@link utf8Decode}).
 */
export function b64uDecodeText(input: string, code: MandateErrorCode = 'TOKEN_MALFORMED', what = 'value', utf8Code: MandateErrorCode = 'INVALID_UTF8'): string {
  const need = Math.ceil((input.length * 3) / 4)
  if (!allocSlow || !nodeIsUtf8 || typeof input !== 'string' || need > SCRATCH_MAX) return utf8Decode(b64uDecode(input, code, what), utf8Code)
  if (input.length % 4 === 1) throw new MandateError(code, `${what} is not base64url`)
  if (scratch === undefined || scratch.length < need) scratch = allocSlow(Math.max(need, 16 * 1024))
  // ('base64url', not 'base64': Node 20's 'base64' decoder leaves its fast path at the first '-' or '_')
  const n = scratch.write(input, 0, 'base64url')
  if (scratch.toString('base64url', 0, n) !== input) {
    throw new MandateError(code, B64URL.test(input) ? `${what} is not canonical base64url` : `${what} is not base64url`)
  }
  // Node's decoder replaces every invalid sequence with U+FFFD, so text without one came from valid
  // UTF-8; only text with one (a real U+FFFD, or a replaced sequence) needs the strict check
  const text = scratch.toString('utf8', 0, n)
  if (text.indexOf('\uFFFD') !== -1 && !nodeIsUtf8(scratch.subarray(0, n))) throw new MandateError(utf8Code, 'invalid UTF-8')
  return text
}

/**
 * ASCII bytes of a string known to be ASCII (a compact JWS after its segments were decoded
 * strictly): one byte per character, without a UTF-8 encoder's work.
 */
export function asciiBytes(s: string): Uint8Array {
  if (NodeBuffer) {
    const b = NodeBuffer.from(s, 'latin1')
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }
  return encoder.encode(s)
}

/** Decode UTF-8, refusing invalid sequences instead of substituting U+FFFD. */
export function utf8Decode(bytes: Uint8Array, code: MandateErrorCode = 'INVALID_UTF8'): string {
  if (NodeBuffer && nodeIsUtf8) {
    if (!nodeIsUtf8(bytes)) throw new MandateError(code, 'invalid UTF-8')
    // validated above, so the (replacing) Buffer decoder decodes exactly what TextDecoder would;
    // a leading BOM is kept as U+FEFF, as with ignoreBOM
    return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  }
  try {
    return decoder.decode(bytes)
  } catch {
    throw new MandateError(code, 'invalid UTF-8')
  }
}
