import { assertArgumentsSatisfy, MandateError, parseConstraintMap, parseScope, type ConstraintMap, type JsonValue, type VerifiedCall } from '@mandate/core'

/** What a tool demands of every call, declared next to its registration. */
export interface ToolRequirements {
  /** Scopes the credential must carry (exact match). */
  scopes?: readonly string[]
  /** Argument constraints the server enforces itself, on top of the mandate's own. */
  constraints?: ConstraintMap
}

/** Validate declared requirements once, at registration (fail early on a typo). */
export function checkToolRequirements(req: ToolRequirements | undefined): ToolRequirements | undefined {
  if (!req) return undefined
  const out: ToolRequirements = {}
  if (req.scopes !== undefined) {
    if (!Array.isArray(req.scopes)) throw new MandateError('CONFIG_INVALID', 'scopes must be an array')
    for (const s of req.scopes) parseScope(s)
    out.scopes = [...req.scopes]
  }
  if (req.constraints !== undefined) out.constraints = parseConstraintMap(req.constraints)
  return out
}

/** Enforce a tool's requirements on a verified call and its raw arguments. */
export function enforceToolRequirements(call: VerifiedCall, req: ToolRequirements | undefined, args: unknown): void {
  if (!req) return
  for (const s of req.scopes ?? []) {
    if (!call.scopes.includes(s)) throw new MandateError('INSUFFICIENT_SCOPE', `scope "${s}" is required for this tool`, { detail: { scope: (req.scopes ?? []).join(' ') } })
  }
  if (req.constraints) assertArgumentsSatisfy(req.constraints, (args ?? {}) as JsonValue)
}
