import { MandateError } from '../errors.js'

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/
export const MAX_SCOPES = 64

/**
 * Parse a space-delimited scope string strictly: single spaces only, no empty or duplicate tokens,
 * only RFC 6749 characters. No normalisation: "Read" and "read" are different scopes.
 */
export function parseScope(scope: unknown): string[] {
  if (typeof scope !== 'string') throw new MandateError('SCOPE_MALFORMED', 'scope must be a string')
  if (scope === '') return []
  const tokens = scope.split(' ')
  if (tokens.length > MAX_SCOPES) throw new MandateError('SCOPE_MALFORMED', 'too many scopes')
  const seen = new Set<string>()
  for (const t of tokens) {
    if (!SCOPE_TOKEN.test(t)) throw new MandateError('SCOPE_MALFORMED', 'malformed scope string')
    if (seen.has(t)) throw new MandateError('SCOPE_MALFORMED', 'duplicate scope token')
    seen.add(t)
  }
  return tokens
}

export function formatScope(scopes: readonly string[]): string {
  return parseScope(scopes.join(' ')).join(' ')
}

/** Every child scope must be one of the parent's, compared exactly. */
export function assertScopesNarrow(parent: readonly string[], child: readonly string[]): void {
  const allowed = new Set(parent)
  for (const s of child) {
    if (!allowed.has(s)) throw new MandateError('NARROWING_SCOPE', `scope "${s}" is not granted by the parent mandate`, { detail: { scope: s } })
  }
}
