/**
 * Refusals that say which rule refused. The grant and exchange paths turn a non-allow decision into
 * POLICY_DENIED with `decision.reason` as the message and `decision.rule` in the detail; this wrapper
 * makes that reason name the rule (id and index) or say that no rule matched and the default denied,
 * for the built-in rules and any PolicyEngine alike. The author's own reason is kept after it.
 * Decisions asking for an approval of a call are left as they are (the approval names the rule).
 */
import type { PerCallContext, PolicyContext, PolicyDecision, PolicyEngine, PolicyOperation } from './engine.js'

const WHAT: Readonly<Record<PolicyOperation, string>> = { grant: 'this grant', delegation: 'this delegation', audience: 'this audience credential', call: 'this call credential' }

function ruleName(d: PolicyDecision): string | undefined {
  if (d.rule === undefined) return undefined
  return `policy rule "${d.rule}"${d.ruleIndex !== undefined ? ` (rule ${d.ruleIndex})` : ''}`
}

/** The message a POLICY_DENIED refusal carries for `decision` at `operation`. */
export function denialMessage(decision: PolicyDecision, operation: PolicyOperation): string {
  const what = WHAT[operation] ?? 'this request'
  const name = ruleName(decision)
  const own = decision.reason !== undefined && decision.reason !== '' ? `: ${decision.reason}` : ''
  if (decision.effect === 'require_approval') {
    return `${name ?? (decision.byDefault ? "the policy's default" : 'the policy')} requires approval, which applies to call credentials only, so ${what} is refused${own}`
  }
  if (name) return `${name} denies ${what}${own}`
  if (decision.byDefault) return `no policy rule matched ${what} and the policy's default effect is deny${own}`
  return `the policy denies ${what}${own}`
}

const EFFECTS = new Set(['allow', 'deny', 'require_approval'])

/**
 * Wrap an engine so that every refusing decision explains itself (see the module comment). A
 * decision that is not one of the three effects (a custom engine's bug, e.g. `{ effect: 'alow' }`)
 * is a denial, never an allow by omission.
 */
export function withDenialReasons(engine: PolicyEngine): PolicyEngine {
  const needsPerCall = engine.needsPerCall
  return {
    // kept only when the engine has it: its absence is what marks every grant per_call
    ...(typeof needsPerCall === 'function' ? { needsPerCall: (ctx: PerCallContext) => needsPerCall.call(engine, ctx) } : {}),
    async evaluate(ctx: PolicyContext): Promise<PolicyDecision> {
      const d: unknown = await engine.evaluate(ctx)
      if (typeof d !== 'object' || d === null || !EFFECTS.has((d as PolicyDecision).effect)) {
        return { effect: 'deny', reason: `the policy engine returned an invalid decision, so ${WHAT[ctx.operation] ?? 'this request'} is refused` }
      }
      const decision = d as PolicyDecision
      if (decision.effect === 'deny' || (decision.effect === 'require_approval' && ctx.operation !== 'call')) return { ...decision, reason: denialMessage(decision, ctx.operation) }
      return decision
    },
  }
}
