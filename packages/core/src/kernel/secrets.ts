/**
 * Keeping credentials out of what a model, a callback or a trace can read. Every adapter scrubs
 * with these, so a secret is caught the same way everywhere — an offline chain (`<root>~<hop>…`)
 * by each of its links too, not only whole.
 */

/** Secrets shorter than this are not scrubbed (they would match ordinary text). */
const MIN_SECRET = 16

function partsOf(secret: string): string[] {
  if (secret.length < MIN_SECRET) return []
  return [secret, ...secret.split('~')].filter((p) => p.length >= MIN_SECRET)
}

/** Replace every secret (credential, mandate, chain link) in `text` with `[credential]`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) for (const part of partsOf(s)) out = out.split(part).join('[credential]')
  return out
}

/** How deep and how wide a value is searched; a value larger than this counts as mentioning a secret. */
const MAX_DEPTH = 12
const MAX_NODES = 2000

interface Walk {
  readonly parts: readonly string[]
  readonly seen: Set<object>
  nodes: number
}

/**
 * Does `value` — a string, an Error with its stack, causes, `errors` and own properties (an HTTP
 * client's error carries its request config there), or any object graph — mention a secret?
 * The search follows every own property, array element, Map and Set entry and byte view. A graph
 * too deep or too large to search, or one whose getters throw, counts as mentioning one (fail
 * closed): the caller then replaces it with a scrubbed message rather than pass it on unread.
 */
export function mentionsSecret(value: unknown, secrets: readonly string[]): boolean {
  const parts = secrets.flatMap(partsOf)
  if (parts.length === 0) return false
  try {
    return walk(value, { parts, seen: new Set(), nodes: 0 }, 0)
  } catch {
    return true
  }
}

function walk(value: unknown, w: Walk, depth: number): boolean {
  if (typeof value === 'string') return w.parts.some((p) => value.includes(p))
  if (value === null || typeof value !== 'object') return false
  if (w.seen.has(value)) return false
  if (depth > MAX_DEPTH || ++w.nodes > MAX_NODES) return true
  w.seen.add(value)
  if (ArrayBuffer.isView(value)) return walk(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1'), w, depth)
  if (value instanceof ArrayBuffer) return walk(Buffer.from(value).toString('latin1'), w, depth)
  if (value instanceof Map) {
    for (const [k, v] of value) if (walk(k, w, depth + 1) || walk(v, w, depth + 1)) return true
    return false
  }
  if (value instanceof Set) {
    for (const v of value) if (walk(v, w, depth + 1)) return true
    return false
  }
  // an Error's message, stack and cause are own but not enumerable: read every own key
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === 'string' && walk(key, w, depth)) return true
    if (walk((value as Record<PropertyKey, unknown>)[key], w, depth + 1)) return true
  }
  if (value instanceof Error && walk(value.stack, w, depth + 1)) return true
  return false
}
