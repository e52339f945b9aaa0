import type { JsonValue } from '@mandate/core'

export type PolicyEffect = 'allow' | 'deny' | 'require_approval'
export type PolicyOperation = 'grant' | 'delegation' | 'call'

/** What a policy sees for one grant, delegation or call-credential request. */
export interface PolicyContext {
  operation: PolicyOperation
  /** The user or system the work is for. */
  subject: string
  /** The principal asking: the grantor (grant) or the holder of the parent mandate (exchange). */
  agent: string
  /** Actors of the parent mandate, first delegate first (empty for a grant). */
  actorChain: readonly string[]
  /** The agent that will hold the result (grant: the agent; delegation: the delegate; call: the holder). */
  recipient: string
  txn: string
  audiences: readonly string[]
  /** Grant/delegation: the granted tool patterns. Call: the one tool. */
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

/** Evaluated at every grant and exchange, after the narrowing rules passed. */
export interface PolicyEngine {
  evaluate(context: PolicyContext): PolicyDecision | Promise<PolicyDecision>
}
