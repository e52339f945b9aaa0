/**
 * Did a framework's parse of the arguments keep them? A credential binds, and a guard checks, the
 * arguments as sent; frameworks then parse them with the tool's schema before the tool runs (MCP
 * servers, LangChain), and a schema that rewrites values (zod `.transform`, `.default`, `z.coerce`,
 * `.catch`) would make the tool run with arguments nobody checked. Dropping object members (zod
 * strips members its schema does not name) is allowed: the tool then sees part of what was checked.
 */
import type { JsonValue } from '../encoding/strict_json.js'

/**
 * The part of `sent` that `parsed` keeps — rebuilt from `sent`'s own values, never from `parsed`
 * (whose getters or proxy traps could answer one value here and another to the tool) — or
 * undefined when `parsed` is not `sent` with some object members left out: another primitive
 * (numbers by value), an array of another length, anything but a plain object where `sent` has
 * one, or a member `sent` does not have. Hand the result, not `parsed`, to the tool.
 */
export function keptArguments(parsed: unknown, sent: JsonValue): JsonValue | undefined {
  if (sent === null || typeof sent !== 'object') return parsed === sent ? sent : undefined
  if (Array.isArray(sent)) {
    if (!Array.isArray(parsed) || parsed.length !== sent.length) return undefined
    const out: JsonValue[] = []
    for (let i = 0; i < sent.length; i++) {
      const v = keptArguments(parsed[i], sent[i] as JsonValue)
      if (v === undefined) return undefined
      out.push(v)
    }
    return out
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  const proto: unknown = Object.getPrototypeOf(parsed)
  if (proto !== Object.prototype && proto !== null) return undefined
  const out: Record<string, JsonValue> = {}
  for (const k of Object.keys(parsed)) {
    if (!Object.hasOwn(sent, k)) return undefined
    const v = keptArguments((parsed as Record<string, unknown>)[k], sent[k] as JsonValue)
    if (v === undefined) return undefined
    // defineProperty: a member named __proto__ stays data (the snapshot refuses it anyway)
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  }
  return out
}
