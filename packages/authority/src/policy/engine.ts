import type { JsonValue } from '@mandate/core'

export type PolicyEffect = 'allow' | 'deny' | 'require_approval'
/**
 * What is being asked for: a root task mandate, a delegation to another agent, an audience credential
 * (a reusable mandate for one audience, same holder: the cached call mode), or one call credential.
 */
export type PolicyOperation = 'grant' | 'delegation' | 'audience' | 'call'

/** What a policy sees for one grant, delegation or call-credential request. */
export interface PolicyContext {
  operation: PolicyOperation
  /** The user or system the work is for. */
  subject: string
  /** The principal asking: the grantor (grant) or the holder of the parent mandate (exchange). */
  agent: string
  /** Actors of the parent mandate, first delegate first (empty for a grant). */
  actorChain: readonly string[]
  /** The agent that will hold the result (grant: the agent; delegation: the delegate; audience and call: the holder). */
  recipient: string
  txn: string
  audiences: readonly string[]
  /** Grant/delegation/audience: the granted tool patterns. Call: the one tool. */
  tools: readonly string[]
  /** Call only: the exact arguments. */
  arguments?: JsonValue
  scopes: readonly string[]
}

export interface PolicyDecision {
  effect: PolicyEffect
  /** Shown to the agent and the approver; never secret. */
  reason?: string
  /** Id of the rule that decided, for the audit log. */
  rule?: string
  /** Position of that rule in its policy document (0-based), when the engine has one. */
  ruleIndex?: number
  /** True when no rule matched and the policy's default effect decided. */
  byDefault?: boolean
}

/**
 * What the Authority asks about one tool grant of a mandate it is about to issue (grant, delegation
 * or audience credential): could a later call under it be decided by the policy as anything but
 * allow? The arguments, and the agents that will hold descendants, are not known yet.
 */
export interface PerCallContext {
  /** The user or system the work is for (never changes down a chain). */
  subject: string
  txn: string
  /** The audiences a call under this grant can go to (its `locations`, or the mandate's audiences). */
  audiences: readonly string[]
  /** The grant's tool patterns. */
  tools: readonly string[]
  /** The principal asking for the mandate and the agent that will hold it (for custom engines). */
  agent: string
  recipient: string
  actorChain: readonly string[]
}

/** Evaluated at every grant and exchange, after the narrowing rules passed. */
export interface PolicyEngine {
  evaluate(context: PolicyContext): PolicyDecision | Promise<PolicyDecision>
  /**
   * Optional: true when a call under the grant could be decided other than `allow` (approval, or a
   * denial that depends on arguments or on later holders), so that it must be decided at the
   * Authority on every call: the Authority then marks the grant `per_call` (guards refuse its tools
   * with anything but an Authority-minted call credential). Must be conservative: answer true when
   * unsure. An engine without this method has every grant it lets through marked `per_call`
   * (fail closed: the Authority cannot know what it would decide at a call).
   */
  needsPerCall?(context: PerCallContext): boolean | Promise<boolean>
}
