/**
 * Tool arguments, taken once. The digest a call credential binds and the value the tool runs must
 * be the same bytes; a live object (getters, `toJSON`, proxies) can answer differently each time it
 * is read. `snapshotArguments` copies the arguments into plain JSON data, reading every member
 * exactly once, and applies the size and shape limits while it copies — so an oversized argument
 * set is refused after reading at most about the limit, before anything sorts, serialises or hashes.
 */
import { hasLoneSurrogate, type JsonObject, type JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'

/** Size and shape limits for tool arguments. */
export interface ArgumentLimits {
  /** Maximum length of the serialised JSON, in UTF-8 bytes. */
  maxBytes: number
  /** Maximum nesting of objects and arrays (the top-level object is depth 1). */
  maxDepth: number
  /** Maximum members in any one object. */
  maxMembers: number
  /** Maximum elements in any one array. */
  maxArray: number
}

/**
 * Defaults, agreed with the Authority: it accepts `tool_arguments` of at most 64 KiB parsed with
 * the strict JSON limits (depth 24, 128 members per object, 256 elements per array), so a guard
 * never accepts arguments the Authority could not have bound.
 */
export const DEFAULT_ARGUMENT_LIMITS: Readonly<ArgumentLimits> = Object.freeze({ maxBytes: 64 * 1024, maxDepth: 24, maxMembers: 128, maxArray: 256 })

type IsProxy = (v: unknown) => boolean
type GetBuiltin = (id: string) => unknown
const getBuiltin: GetBuiltin | undefined = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process?.getBuiltinModule
// Proxies are detectable only where node:util is available; elsewhere the descriptor-based copy
// still reads each member once, so a proxy cannot make the digest and the run differ.
const isProxy: IsProxy = ((getBuiltin?.('node:util') as { types?: { isProxy?: IsProxy } } | undefined)?.types?.isProxy) ?? (() => false)

function refuse(message: string, limit?: string, path?: string): never {
  const detail: Record<string, string> = {}
  if (limit !== undefined) detail.limit = limit
  if (path !== undefined) detail.path = path.slice(0, 200)
  throw new MandateError('ARGUMENTS_INVALID', `tool arguments refused: ${message}`, { detail })
}

function checkLimits(l: Partial<ArgumentLimits> | undefined): ArgumentLimits {
  // the common case (no limits given) needs neither a copy nor a check
  if (l === undefined) return DEFAULT_ARGUMENT_LIMITS
  const out = { ...DEFAULT_ARGUMENT_LIMITS, ...l }
  for (const k of ['maxBytes', 'maxDepth', 'maxMembers', 'maxArray'] as const) {
    const v = out[k]
    if (!Number.isSafeInteger(v) || v < 1) throw new MandateError('CONFIG_INVALID', `argument limit ${k} must be a positive integer`)
  }
  return out
}

// printable ASCII without `"` or `\`: its JSON literal is the string plus two quotes, byte for byte
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/** UTF-8 length of a JSON string literal (quotes and escapes included). */
function jsonStringBytes(s: string): number {
  const lit = JSON.stringify(s)
  let n = lit.length
  for (let i = 0; i < lit.length; i++) {
    const c = lit.charCodeAt(i)
    if (c >= 0x80) {
      if (c >= 0xd800 && c <= 0xdbff) {
        n += 1 // a surrogate pair is 2 units and 4 bytes
        i++
      } else n += c >= 0x800 ? 2 : 1
    }
  }
  return n
}

/**
 * Copy tool arguments into a plain JSON snapshot, applying `limits` while copying. Absent
 * arguments (`undefined`) become `{}` (an MCP call without arguments). Members whose value is
 * `undefined` are left out, as JSON does; everything else that JSON cannot carry exactly is
 * refused: functions, symbols (as values or keys), bigint, non-finite numbers, lone surrogates,
 * cycles, accessors (getters/setters), non-enumerable members, `toJSON` methods, sparse arrays,
 * detectable proxies and objects whose prototype is not `Object.prototype` or `null` (class
 * instances, Dates, Maps, typed arrays). `-0` becomes `0`.
 *
 * Digest and run this snapshot: `argumentsDigest(snapshot)` equals `argumentsDigest(original)`,
 * and the tool then receives data that cannot change after it was checked.
 *
 * @throws MandateError `ARGUMENTS_INVALID`, with `detail.limit` naming the limit
 * (`maxBytes`, `maxDepth`, `maxMembers`, `maxArray`) or `detail.path` the offending member.
 */
export function snapshotArguments(value: unknown, limits?: Partial<ArgumentLimits>): JsonValue {
  const st: Snapshot = { l: checkLimits(limits), budget: 0, onPath: [], at: [] }
  st.budget = st.l.maxBytes
  return copy(st, value === undefined ? {} : value, 1)
}

/**
 * One snapshot in progress. Module-level functions over this state (rather than closures made per
 * call) keep the common small-argument call cheap: the guard takes a snapshot on every call.
 */
interface Snapshot {
  readonly l: ArgumentLimits
  /** Bytes of JSON still allowed. */
  budget: number
  /** Containers being copied, outermost first (cycle detection; at most maxDepth long). */
  readonly onPath: object[]
  /** The JSON pointer of the value being copied, as tokens; turned into text only when refusing. */
  readonly at: (string | number)[]
}

function pointer(st: Snapshot): string {
  return st.at.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')
}
function bad(st: Snapshot, message: string): never {
  refuse(message, undefined, pointer(st))
}
function tooLarge(st: Snapshot): never {
  refuse(`larger than ${st.l.maxBytes} bytes of JSON`, 'maxBytes')
}

function str(st: Snapshot, s: string): string {
  // s.length is a lower bound of the encoded size: refuse a huge string before scanning it
  if (s.length + 2 > st.budget) tooLarge(st)
  if (hasLoneSurrogate(s)) bad(st, 'a string has a lone surrogate')
  st.budget -= PLAIN_ASCII.test(s) ? s.length + 2 : jsonStringBytes(s)
  if (st.budget < 0) tooLarge(st)
  return s
}

function copy(st: Snapshot, v: unknown, depth: number): JsonValue {
  switch (typeof v) {
    case 'string':
      return str(st, v)
    case 'number':
      if (!Number.isFinite(v)) bad(st, 'a number is not finite')
      st.budget -= String(v).length
      if (st.budget < 0) tooLarge(st)
      return Object.is(v, -0) ? 0 : v
    case 'boolean':
      st.budget -= v ? 4 : 5
      if (st.budget < 0) tooLarge(st)
      return v
    case 'object':
      break
    default:
      bad(st, `a ${typeof v} is not JSON data`)
  }
  if (v === null) {
    st.budget -= 4
    if (st.budget < 0) tooLarge(st)
    return null
  }
  if (depth > st.l.maxDepth) refuse(`nested deeper than ${st.l.maxDepth}`, 'maxDepth', pointer(st))
  if (isProxy(v)) bad(st, 'a proxy is not plain data')
  if (st.onPath.includes(v)) bad(st, 'arguments contain a cycle')
  st.onPath.push(v)
  const out = Array.isArray(v) ? copyArray(st, v as unknown[], depth) : copyObject(st, v, depth)
  st.onPath.pop()
  return out
}

function copyArray(st: Snapshot, a: unknown[], depth: number): JsonValue[] {
  if (Object.getPrototypeOf(a) !== Array.prototype) bad(st, 'an array has a foreign prototype')
  const n = a.length
  if (n > st.l.maxArray) refuse(`an array has more than ${st.l.maxArray} elements`, 'maxArray', pointer(st))
  // own keys are exactly the indices plus `length`; anything else (holes, extra or symbol members) is not JSON data
  if (Reflect.ownKeys(a).length !== n + 1) bad(st, 'an array is sparse or has extra members')
  st.budget -= 2 + Math.max(0, n - 1)
  if (st.budget < 0) tooLarge(st)
  const out: JsonValue[] = new Array<JsonValue>(n)
  for (let i = 0; i < n; i++) {
    st.at.push(i)
    const d = Object.getOwnPropertyDescriptor(a, i)
    if (d === undefined) bad(st, 'a sparse array is not JSON data')
    if (!('value' in d)) bad(st, 'an accessor (getter) is not JSON data')
    if (!d.enumerable) bad(st, 'a non-enumerable member is not JSON data')
    if (d.value === undefined) bad(st, 'undefined is not JSON data in an array')
    out[i] = copy(st, d.value, depth + 1)
    st.at.pop()
  }
  return out
}

function copyObject(st: Snapshot, o: object, depth: number): JsonObject {
  const proto: unknown = Object.getPrototypeOf(o)
  if (proto !== Object.prototype && proto !== null) bad(st, 'an object is not a plain object (class instance, Date, Map, …)')
  if (proto === Object.prototype && Object.hasOwn(Object.prototype, 'toJSON')) bad(st, 'Object.prototype has a toJSON method')
  // Object.keys is the cheapest count V8 offers (a 100,000-member object costs a few ms); the
  // full own-key check runs only on objects already within the member limit
  const keys = Object.keys(o)
  if (keys.length > st.l.maxMembers) refuse(`an object has more than ${st.l.maxMembers} members`, 'maxMembers', pointer(st))
  if (Reflect.ownKeys(o).length !== keys.length) bad(st, 'a non-enumerable or symbol-keyed member is not JSON data')
  st.budget -= 2
  const out: JsonObject = {}
  let written = 0
  for (const k of keys) {
    st.at.push(k)
    const d = Object.getOwnPropertyDescriptor(o, k)
    if (d !== undefined) {
      // undefined only if removed while we read (only a proxy could): nothing to copy
      if (!('value' in d)) bad(st, 'an accessor (getter) is not JSON data')
      if (!d.enumerable) bad(st, 'a non-enumerable member is not JSON data')
      if (k === 'toJSON' && typeof d.value === 'function') bad(st, 'a toJSON method is not JSON data')
      // JSON leaves undefined members out; so does the snapshot
      if (d.value !== undefined) {
        if (written > 0) st.budget -= 1
        str(st, k)
        st.budget -= 1
        // a member named __proto__ is data to JSON and to this snapshot, but JavaScript code after
        // the guard (a schema validator, an assignment loop) sets the prototype with it instead, so
        // the tool would run without a member that was digested and checked: refused
        if (k === '__proto__') bad(st, 'a member named "__proto__" is refused (code after the guard would read it as the prototype, not as data)')
        out[k] = copy(st, d.value, depth + 1)
        written++
      }
    }
    st.at.pop()
  }
  if (st.budget < 0) tooLarge(st)
  return out
}
