/**
 * The Authority's `policy` option: a policy document (validated strictly, POLICY_INVALID on any
 * problem) or a PolicyEngine object. Either way the result explains its refusals (denial_reasons.ts).
 */
import { MandateError } from '@mandate/core'
import type { PolicyEngine } from './engine.js'
import { looksLikePolicyDocument, type PolicyDocument } from './document.js'
import { withDenialReasons } from './denial_reasons.js'
import { createRulePolicy } from './rules.js'

/** Resolve the `policy` option before anything is created: an invalid policy refuses the start. */
export function resolvePolicyOption(policy: PolicyDocument | PolicyEngine | undefined): PolicyEngine {
  if (policy === undefined) return withDenialReasons(createRulePolicy([]))
  if (looksLikePolicyDocument(policy)) return withDenialReasons(createRulePolicy(policy as PolicyDocument))
  if (typeof policy !== 'object' || policy === null || typeof (policy as PolicyEngine).evaluate !== 'function') {
    throw new MandateError('POLICY_INVALID', 'policy must be a policy document (an array of rules or { rules }) or a PolicyEngine { evaluate(ctx) }', { detail: { pointer: '' } })
  }
  return withDenialReasons(policy as PolicyEngine)
}
