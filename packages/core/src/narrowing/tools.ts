import { MandateError } from '../errors.js'

// A tool name is one or more segments separated by '.'; a pattern may end in '.*' (or be '*').
const SEGMENT = '[A-Za-z0-9_\\-/:]+'
const TOOL_NAME = new RegExp(`^${SEGMENT}(?:\\.${SEGMENT})*$`)
const TOOL_PATTERN = new RegExp(`^(?:\\*|${SEGMENT}(?:\\.${SEGMENT})*(?:\\.\\*)?)$`)
const MAX_NAME = 128

export function isToolName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= MAX_NAME && TOOL_NAME.test(name)
}

export function assertToolName(name: unknown): asserts name is string {
  if (!isToolName(name)) throw new MandateError('TOOL_NOT_ALLOWED', 'invalid tool name')
}

export function assertToolPattern(pattern: unknown): asserts pattern is string {
  if (typeof pattern !== 'string' || pattern.length > MAX_NAME || !TOOL_PATTERN.test(pattern)) {
    throw new MandateError('CLAIM_INVALID', 'invalid tool pattern')
  }
}

/**
 * Does `pattern` cover the tool `name`? Matching is on segment boundaries: `github.*` covers
 * `github.get_file` and `github.repo.list` but not `github` or `githubx.y`; `github.get` covers only
 * `github.get`, never `github.get_all`.
 */
export function toolMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true
  if (pattern.endsWith('.*')) {
    const prefix = pattern.slice(0, -1) // keeps the trailing '.'
    return name.length > prefix.length && name.startsWith(prefix)
  }
  return pattern === name
}

/** Does parent pattern `p` cover every name child pattern `c` can match? */
export function patternCovers(p: string, c: string): boolean {
  if (p === '*') return true
  if (c === '*') return false
  if (c.endsWith('.*')) {
    if (!p.endsWith('.*')) return false
    const pp = p.slice(0, -1)
    const cp = c.slice(0, -1)
    return cp.startsWith(pp)
  }
  return toolMatches(p, c)
}

/**
 * Could one tool name match both patterns? Tool patterns are `*`, a name, or `prefix.*` on segment
 * boundaries, so two of them share a tool exactly when one covers the other.
 */
export function patternsOverlap(a: string, b: string): boolean {
  return patternCovers(a, b) || patternCovers(b, a)
}
