import type { JsonValue } from '../encoding/strict_json.js'

/**
 * Structural equality of JSON data: same types, same array order, same member names and values
 * (member order ignored, as in canonical JSON). A member whose value is undefined counts as absent,
 * as JSON.stringify has it. Faster than canonicalizing both sides, and with the same answer.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ao = a as Record<string, JsonValue | undefined>
  const bo = b as Record<string, JsonValue | undefined>
  let n = 0
  for (const k of Object.keys(ao)) {
    const v = ao[k]
    if (v === undefined) continue
    if (!Object.hasOwn(bo, k) || !jsonEqual(v, bo[k])) return false
    n++
  }
  let m = 0
  for (const k of Object.keys(bo)) if (bo[k] !== undefined) m++
  return n === m
}
