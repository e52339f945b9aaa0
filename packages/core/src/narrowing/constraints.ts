import type { JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'

/** An argument constraint: the comparator type and its parameters. */
export type Constraint =
  | { type: 'exact'; value: JsonValue }
  | { type: 'enum'; values: JsonValue[] }
  | { type: 'max'; value: number }
  | { type: 'min'; value: number }
  | { type: 'path_prefix'; prefix: string }

/** Constraints keyed by argument: a top-level argument name, or an RFC 6901 JSON Pointer ("/a/b"). */
export type ConstraintMap = Record<string, Constraint>

/**
 * A comparator for one constraint type. `narrows` decides whether a child constraint of the same
 * type is at least as strict; `matches` checks an actual argument value (undefined when absent).
 */
export interface ConstraintComparator<C extends { type: string } = { type: string }> {
  readonly type: C['type']
  parse(raw: Record<string, unknown>): C
  narrows(parent: C, child: C): boolean
  matches(constraint: C, value: JsonValue | undefined): boolean
  /**
   * Is `value` of the kind this constraint compares (a finite number for `max`, a safe path for
   * `path_prefix`, …), so that `matches` answering false is a real "no"? A value of another kind,
   * or an absent one, is undecided: a restrictive policy rule (deny, require_approval) then still
   * applies, since a tool that coerces `"5000"` to 5000 would act on it. Default: present.
   */
  decides?(constraint: C, value: JsonValue | undefined): boolean
}

export type ConstraintRegistry = ReadonlyMap<string, ConstraintComparator>

const MAX_ENUM = 64
const MAX_VALUE_JSON = 1024

function canonicalJson(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k] as JsonValue)}`).join(',')}}`
}
/** The JSON type of a value: null, boolean, number, string, array or object. */
const jsonKind = (v: JsonValue): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)
const same = (a: JsonValue | undefined, b: JsonValue | undefined) => a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)

function onlyMembers(raw: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(raw)) {
    if (k !== 'type' && !allowed.includes(k)) throw new MandateError('CONSTRAINT_INVALID', `unknown constraint member "${k.slice(0, 32)}"`)
  }
}
function jsonValue(v: unknown): JsonValue {
  if (v === undefined) throw new MandateError('CONSTRAINT_INVALID', 'constraint value missing')
  const s = JSON.stringify(v)
  if (s === undefined || s.length > MAX_VALUE_JSON) throw new MandateError('CONSTRAINT_INVALID', 'constraint value too large')
  return v as JsonValue
}
function finite(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new MandateError('CONSTRAINT_INVALID', 'constraint bound must be a finite number')
  return v
}

const exact: ConstraintComparator<{ type: 'exact'; value: JsonValue }> = {
  type: 'exact',
  parse(raw) {
    onlyMembers(raw, ['value'])
    return { type: 'exact', value: jsonValue(raw.value) }
  },
  narrows: (p, c) => same(p.value, c.value),
  matches: (c, v) => same(c.value, v),
  decides: (c, v) => v !== undefined && jsonKind(v) === jsonKind(c.value),
}

const enumeration: ConstraintComparator<{ type: 'enum'; values: JsonValue[] }> = {
  type: 'enum',
  parse(raw) {
    onlyMembers(raw, ['values'])
    if (!Array.isArray(raw.values) || raw.values.length === 0 || raw.values.length > MAX_ENUM) {
      throw new MandateError('CONSTRAINT_INVALID', 'enum needs 1 to 64 values')
    }
    return { type: 'enum', values: raw.values.map(jsonValue) }
  },
  narrows: (p, c) => c.values.every((v) => p.values.some((pv) => same(pv, v))),
  matches: (c, v) => c.values.some((cv) => same(cv, v)),
  decides: (c, v) => v !== undefined && c.values.some((cv) => jsonKind(cv) === jsonKind(v)),
}

const max: ConstraintComparator<{ type: 'max'; value: number }> = {
  type: 'max',
  parse(raw) {
    onlyMembers(raw, ['value'])
    return { type: 'max', value: finite(raw.value) }
  },
  narrows: (p, c) => c.value <= p.value,
  matches: (c, v) => typeof v === 'number' && Number.isFinite(v) && v <= c.value,
  decides: (_c, v) => typeof v === 'number' && Number.isFinite(v),
}

const min: ConstraintComparator<{ type: 'min'; value: number }> = {
  type: 'min',
  parse(raw) {
    onlyMembers(raw, ['value'])
    return { type: 'min', value: finite(raw.value) }
  },
  narrows: (p, c) => c.value >= p.value,
  matches: (c, v) => typeof v === 'number' && Number.isFinite(v) && v >= c.value,
  decides: (_c, v) => typeof v === 'number' && Number.isFinite(v),
}

/**
 * A path is a '/'-separated string. Refused outright: '.' or '..' segments, empty inner segments,
 * backslashes, control characters and percent-encoding (which could hide '/', '\' or '.').
 */
export function isSafePath(path: string, allowTrailingSlash: boolean): boolean {
  if (path.length === 0 || path.length > 1024) return false
  if (/[\\%\u0000-\u001f\u007f]/.test(path)) return false
  if (path === '/') return true
  const body = allowTrailingSlash && path.endsWith('/') ? path.slice(0, -1) : path
  const segments = body.split('/')
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string
    if (s === '' && i === 0) continue // leading '/'
    if (s === '' || s === '.' || s === '..') return false
  }
  return true
}

function underPrefix(prefix: string, path: string): boolean {
  if (prefix === '/') return path.startsWith('/')
  if (path === prefix) return true
  return path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)
}

const pathPrefix: ConstraintComparator<{ type: 'path_prefix'; prefix: string }> = {
  type: 'path_prefix',
  parse(raw) {
    onlyMembers(raw, ['prefix'])
    if (typeof raw.prefix !== 'string' || !isSafePath(raw.prefix, false)) {
      throw new MandateError('CONSTRAINT_INVALID', 'path_prefix must be a plain path without ., .., empty segments or encoding')
    }
    return { type: 'path_prefix', prefix: raw.prefix }
  },
  narrows: (p, c) => underPrefix(p.prefix, c.prefix),
  matches: (c, v) => typeof v === 'string' && isSafePath(v, true) && underPrefix(c.prefix, v),
  decides: (_c, v) => typeof v === 'string' && isSafePath(v, true),
}

/** Build a registry from comparators; later entries do not override earlier ones silently. */
export function createConstraintRegistry(comparators: readonly ConstraintComparator[]): ConstraintRegistry {
  const map = new Map<string, ConstraintComparator>()
  for (const c of comparators) {
    if (map.has(c.type)) throw new MandateError('CONFIG_INVALID', `duplicate constraint type ${c.type}`)
    map.set(c.type, c)
  }
  return map
}

/** The built-in comparators: exact, enum, max, min, path_prefix. */
export const defaultConstraintRegistry: ConstraintRegistry = createConstraintRegistry([
  exact as ConstraintComparator,
  enumeration as ConstraintComparator,
  max as ConstraintComparator,
  min as ConstraintComparator,
  pathPrefix as ConstraintComparator,
])

const MAX_CONSTRAINTS = 32

/** Validate a constraint map; unknown types are refused (fail closed). */
export function parseConstraintMap(raw: unknown, registry: ConstraintRegistry = defaultConstraintRegistry): ConstraintMap {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new MandateError('CONSTRAINT_INVALID', 'constraints must be an object')
  const entries = Object.entries(raw as Record<string, unknown>)
  if (entries.length > MAX_CONSTRAINTS) throw new MandateError('CONSTRAINT_INVALID', 'too many constraints')
  const out: ConstraintMap = {}
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > 256) throw new MandateError('CONSTRAINT_INVALID', 'invalid constraint key')
    // `out[key] = …` would set the prototype instead of adding a constraint (a silent widening)
    if (key === '__proto__') throw new MandateError('CONSTRAINT_INVALID', 'invalid constraint key')
    if (key.startsWith('/')) parsePointer(key)
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MandateError('CONSTRAINT_INVALID', 'constraint must be an object')
    const type = (value as Record<string, unknown>).type
    const comparator = typeof type === 'string' ? registry.get(type) : undefined
    if (!comparator) throw new MandateError('CONSTRAINT_UNKNOWN_TYPE', `unknown constraint type "${String(type).slice(0, 32)}"`, { detail: { argument: key } })
    out[key] = comparator.parse(value as Record<string, unknown>) as Constraint
  }
  return out
}

/**
 * Is `child` at least as strict as `parent`? Same type: the type's comparator decides. Different
 * types: only a child that pins the value ('exact', or 'enum' of values) can narrow, and every value
 * it allows must satisfy the parent.
 */
export function constraintNarrows(parent: Constraint, child: Constraint, registry: ConstraintRegistry = defaultConstraintRegistry): boolean {
  const pc = registry.get(parent.type)
  if (!pc) return false
  if (parent.type === child.type) return pc.narrows(parent, child)
  if (child.type === 'exact') return pc.matches(parent, child.value)
  if (child.type === 'enum') return child.values.every((v) => pc.matches(parent, v))
  return false
}

/** Every parent constraint must be kept by the child and narrowed under its comparator. */
export function assertConstraintsNarrow(parent: ConstraintMap | undefined, child: ConstraintMap | undefined, registry: ConstraintRegistry = defaultConstraintRegistry): void {
  if (!parent) return
  for (const [key, pc] of Object.entries(parent)) {
    const cc = child?.[key]
    if (!cc) throw new MandateError('NARROWING_CONSTRAINT', `constraint on "${key}" was dropped`, { detail: { argument: key } })
    if (!constraintNarrows(pc, cc, registry)) {
      throw new MandateError('NARROWING_CONSTRAINT', `constraint on "${key}" is wider than the parent's`, { detail: { argument: key } })
    }
  }
}

function parsePointer(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new MandateError('CONSTRAINT_INVALID', 'invalid JSON pointer')
  return pointer.slice(1).split('/').map((t) => {
    if (/~[^01]|~$/.test(t)) throw new MandateError('CONSTRAINT_INVALID', 'invalid JSON pointer escape')
    return t.replace(/~1/g, '/').replace(/~0/g, '~')
  })
}

/** Read the argument a constraint key names; undefined when absent. */
export function argumentAt(args: JsonValue | undefined, key: string): JsonValue | undefined {
  const path = key.startsWith('/') ? parsePointer(key) : [key]
  let cur: JsonValue | undefined = args
  for (const token of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined
      cur = cur[Number(token)]
    } else {
      cur = Object.hasOwn(cur, token) ? cur[token] : undefined
    }
  }
  return cur
}

/** At the call: every constraint must match the actual argument (an absent argument fails). */
export function assertArgumentsSatisfy(constraints: ConstraintMap | undefined, args: JsonValue | undefined, registry: ConstraintRegistry = defaultConstraintRegistry): void {
  if (!constraints) return
  for (const [key, c] of Object.entries(constraints)) {
    const comparator = registry.get(c.type)
    if (!comparator) throw new MandateError('CONSTRAINT_UNKNOWN_TYPE', `unknown constraint type "${c.type}"`)
    if (!comparator.matches(c, argumentAt(args, key))) {
      throw new MandateError('CONSTRAINT_VIOLATED', `argument "${key}" is outside the mandate's constraint`, { detail: { argument: key, constraint: c.type } })
    }
  }
}
