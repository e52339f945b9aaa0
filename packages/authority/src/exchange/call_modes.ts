/**
 * Which call modes the Authority lets a mandate use (docs/authority-api.md, "Call modes"):
 * audience credentials (cached mode) and offline attenuation can be switched off or on by the
 * operator, and every mandate the Authority issues marks as `per_call` the tool grants whose calls
 * must be decided here on every call (a policy approval or argument-dependent denial, a use count,
 * or the operator's `perCallTools`). Guards refuse `per_call` tools with anything but an
 * Authority-minted call credential, so the Authority stays on the hot path exactly where it decides.
 */
import { audienceList, MandateError, patternsOverlap, type MandateClaims, type ToolGrant } from '@mandate/core'
import { TOOL_PATTERN } from '../policy/format.js'
import type { PolicyEngine } from '../policy/engine.js'

/** The `callModes` option of createAuthority. */
export interface CallModesOptions {
  /** Issue audience credentials (cached mode). Default true. */
  audience?: boolean
  /** Grant mandates that allow offline attenuation when a grant asks for it (`offline`). Default false. */
  offline?: boolean
}

/** What the Authority resolved from `callModes`, `perCallTools` and `maxOfflineHops`. */
export interface ResolvedCallModes {
  audience: boolean
  offline: boolean
  /** Most offline hops a grant may allow (1..8). */
  maxOfflineHops: number
  /** Tool patterns whose grants are always `per_call`. */
  perCallTools: readonly string[]
}

export const DEFAULT_MAX_OFFLINE_HOPS = 3
/** core's bound on `offline.max_hops` (MAX_OFFLINE_HOPS). */
const MAX_OFFLINE_HOPS = 8

function bad(message: string, option: string): never {
  throw new MandateError('CONFIG_INVALID', message, { detail: { option } })
}

/** Validate the call-mode options (CONFIG_INVALID on anything unknown or malformed). */
export function resolveCallModes(callModes: unknown, perCallTools: unknown, maxOfflineHops: unknown): ResolvedCallModes {
  let audience = true
  let offline = false
  if (callModes !== undefined) {
    if (typeof callModes !== 'object' || callModes === null || Array.isArray(callModes)) bad('callModes must be { audience?, offline? }', 'callModes')
    for (const k of Object.keys(callModes)) if (k !== 'audience' && k !== 'offline') bad(`unknown callModes option "${k.slice(0, 40)}" (known: audience, offline)`, 'callModes')
    const m = callModes as Record<string, unknown>
    if (m.audience !== undefined && typeof m.audience !== 'boolean') bad('callModes.audience must be a boolean', 'callModes.audience')
    if (m.offline !== undefined && typeof m.offline !== 'boolean') bad('callModes.offline must be a boolean', 'callModes.offline')
    audience = (m.audience as boolean | undefined) ?? true
    offline = (m.offline as boolean | undefined) ?? false
  }
  const hops = maxOfflineHops ?? DEFAULT_MAX_OFFLINE_HOPS
  if (typeof hops !== 'number' || !Number.isSafeInteger(hops) || hops < 1 || hops > MAX_OFFLINE_HOPS) bad(`maxOfflineHops must be an integer 1..${MAX_OFFLINE_HOPS}`, 'maxOfflineHops')
  let tools: string[] = []
  if (perCallTools !== undefined) {
    if (!Array.isArray(perCallTools) || perCallTools.length > 256) bad('perCallTools must be an array of at most 256 tool patterns', 'perCallTools')
    tools = perCallTools.map((t: unknown) => {
      if (typeof t !== 'string' || t.length > 128 || !TOOL_PATTERN.test(t)) bad('perCallTools entries must be tool names or patterns ("billing.*", "*")', 'perCallTools')
      return t
    })
  }
  return { audience, offline, maxOfflineHops: hops, perCallTools: tools }
}

/** Who asks for, and who will hold, the mandate being marked (passed to custom engines). */
export interface PerCallParties {
  agent: string
  recipient: string
  actorChain: readonly string[]
}

/**
 * Mark `per_call` on every tool grant of `claims` (a mandate about to be signed; never a call
 * credential) whose calls the Authority must decide one by one. Marking only narrows (a grant with
 * `per_call` allows fewer ways to call), so it is applied after the narrowing rules passed. Grants
 * are replaced, never mutated: inherited grants are the parent's objects.
 */
export async function markPerCallGrants(policy: PolicyEngine, modes: ResolvedCallModes, claims: MandateClaims, parties: PerCallParties): Promise<void> {
  if (claims.call) return
  const aud = audienceList(claims.aud)
  // use counts are kept here, per call credential: a reusable credential would bypass them
  const counted = claims.max_uses !== undefined
  const needsPerCall = policy.needsPerCall
  const out: ToolGrant[] = []
  let changed = false
  for (const g of claims.authorization_details) {
    if (g.per_call) {
      out.push(g)
      continue
    }
    const mark = counted ||
      (modes.perCallTools.length > 0 && g.tools.some((t) => modes.perCallTools.some((p) => patternsOverlap(p, t)))) ||
      // an engine that cannot say is assumed to need the Authority on every call (fail closed)
      typeof needsPerCall !== 'function' ||
      (await needsPerCall.call(policy, { subject: claims.sub, txn: claims.txn, audiences: g.locations ?? aud, tools: g.tools, ...parties })) !== false
    if (mark) {
      out.push({ ...g, per_call: true })
      changed = true
    } else out.push(g)
  }
  if (changed) claims.authorization_details = out
}

/**
 * Requested tool grants with `per_call` added where a parent grant they could fall under has it.
 * core refuses a child grant that drops its parent's `per_call` (that would widen); a client asking
 * the Authority for a delegation or audience credential need not restate it: adding it only narrows.
 */
export function keepPerCall(parent: MandateClaims, tools: readonly ToolGrant[]): ToolGrant[] {
  const marked = parent.authorization_details.filter((g) => g.per_call)
  if (marked.length === 0) return [...tools]
  return tools.map((t) => {
    if (typeof t !== 'object' || t === null || t.per_call || !Array.isArray(t.tools)) return t
    const under = marked.some((g) => g.tools.some((p) => t.tools.some((c) => typeof c === 'string' && patternsOverlap(p, c))))
    return under ? { ...t, per_call: true } : t
  })
}

/** The grants of `claims` marked per_call: their tools, for the audit record. */
export function perCallTools(claims: MandateClaims): string[] {
  return claims.authorization_details.filter((g) => g.per_call).flatMap((g) => g.tools)
}
