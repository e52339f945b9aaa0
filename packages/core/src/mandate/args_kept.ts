/**
 * Did a framework's parse of the arguments keep them? A credential binds, and a guard checks, the
 * arguments as sent; frameworks then parse them with the tool's schema before the tool runs (MCP
 * servers, LangChain), and a schema that rewrites values (zod `.transform`, `.default`, `z.coerce`,
 * `.catch`) would make the tool run with arguments nobody checked. Dropping object members (zod
 * strips unknown keys) only narrows, so it is allowed.
 */
import type { JsonValue } from '../encoding/strict_json.js'

/**
 * True when `parsed` is `sent` itself, or `sent` with some object members left out at any depth:
 * the same primitives (numbers by value), arrays of the same length, plain objects only (a `Date`
 * or class instance a coercion produced is not the sent JSON).
 */
export function argumentsKept(parsed: unknown, sent: JsonValue): boolean {
  if (sent === null || typeof sent !== 'object') return parsed === sent
  if (Array.isArray(sent)) {
    return Array.isArray(parsed) && parsed.length === sent.length && parsed.every((v, i) => argumentsKept(v, sent[i] as JsonValue))
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false
  const proto: unknown = Object.getPrototypeOf(parsed)
  if (proto !== Object.prototype && proto !== null) return false
  for (const [k, v] of Object.entries(parsed)) {
    if (!Object.hasOwn(sent, k) || !argumentsKept(v, sent[k] as JsonValue)) return false
  }
  return true
}
