/**
 * Declarative policy rules, first match wins. A rule matches when every selector it sets matches:
 * subject, agent (the asker), actor (anyone in the chain or the recipient), recipient, audience,
 * tool patterns (segment-boundary matching from core) and argument conditions (core's constraint
 * comparators: exact, enum, max, min, path_prefix). Documents are validated strictly when loaded
 * (document.ts): anything unknown or malformed is refused with POLICY_INVALID, never ignored.
 */
import {
  argumentAt, defaultConstraintRegistry, MandateError, patternCovers, patternsOverlap, toolMatches,
  type ConstraintMap, type ConstraintRegistry,
} from '@mandate/core'
import type { PerCallContext, PolicyContext, PolicyEffect, PolicyEngine, PolicyOperation } from './engine.js'
import { parsePolicyDocument, type PolicyDocument, type ValidatedPolicy, type ValidatedRule } from './document.js'
import { EFFECTS } from './format.js'

export type { PolicyRule, PolicyFile, PolicyDocument } from './document.js'

export interface RulePolicyOptions {
  /**
   * Effect when no rule matches. Default 'allow' (mandates already bound what can be done).
   * 'require_approval' applies to calls; grants, delegations and audience credentials are then allowed
   * (and every grant they carry is marked `per_call`). A document that
   * sets `defaultEffect` itself must agree with this option.
   */
  defaultEffect?: PolicyEffect
  /** Constraint types `when` may use. Default: core's built-in types. */
  registry?: ConstraintRegistry
  /** File the rules came from, named in POLICY_INVALID errors. */
  source?: string
}

const OPTION_MEMBERS = ['defaultEffect', 'registry', 'source']

/** A validated rule with its operations as a set (matched on every request). */
type CompiledRule = Omit<ValidatedRule, 'explicitId' | 'pointer' | 'operations'> & { on: ReadonlySet<PolicyOperation> }

function compile({ explicitId: _explicit, pointer: _pointer, operations, ...rule }: ValidatedRule): CompiledRule {
  return { ...rule, on: new Set(operations) }
}

const anyIn = (selector: readonly string[] | undefined, values: readonly string[]) => selector === undefined || selector.includes('*') || values.some((v) => selector.includes(v))
const anyone = (selector: readonly string[] | undefined) => selector === undefined || selector.includes('*')

function checkOptions(options: RulePolicyOptions): void {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createRulePolicy options must be an object')
  for (const k of Object.keys(options)) {
    if (!OPTION_MEMBERS.includes(k)) throw new MandateError('CONFIG_INVALID', `unknown createRulePolicy option "${k.slice(0, 40)}" (known: ${OPTION_MEMBERS.join(', ')})`, { detail: { option: k.slice(0, 40) } })
  }
  if (options.defaultEffect !== undefined && !EFFECTS.includes(options.defaultEffect)) throw new MandateError('CONFIG_INVALID', `defaultEffect must be ${EFFECTS.join(', ')}`, { detail: { option: 'defaultEffect' } })
  if (options.source !== undefined && typeof options.source !== 'string') throw new MandateError('CONFIG_INVALID', 'source must be a string', { detail: { option: 'source' } })
}

/** Build a PolicyEngine from an already validated policy (see parsePolicyDocument). */
export function compileValidatedPolicy(policy: ValidatedPolicy, registry: ConstraintRegistry = defaultConstraintRegistry): PolicyEngine {
  const compiled = policy.rules.map(compile)
  const defaultEffect = policy.defaultEffect

  function matches(r: CompiledRule, ctx: PolicyContext): boolean {
    if (!r.on.has(ctx.operation)) return false
    if (!anyIn(r.subject, [ctx.subject])) return false
    if (!anyIn(r.agent, [ctx.agent])) return false
    if (!anyIn(r.actor, [...ctx.actorChain, ctx.recipient])) return false
    if (!anyIn(r.recipient, [ctx.recipient])) return false
    if (r.audience && !ctx.audiences.some((a) => (r.audience as readonly string[]).includes(a))) return false
    if (r.tool) {
      const patterns = r.tool
      if (ctx.operation === 'call') {
        if (!ctx.tools.some((t) => patterns.some((p) => toolMatches(p, t)))) return false
      } else if (ctx.tools.length === 0 || !ctx.tools.every((t) => patterns.some((p) => patternCovers(p, t)))) {
        return false
      }
    }
    if (r.when) {
      if (ctx.operation !== 'call') return false // conditions on arguments only apply to a concrete call
      // an allow rule needs every condition to hold; a deny or require_approval rule also applies
      // when an argument is absent or of another kind than its condition compares ("5000" for a
      // min, an unsafe path for a path_prefix): a tool that coerces or defaults it would act on it
      const restrictive = r.effect !== 'allow'
      for (const [key, c] of Object.entries(r.when)) {
        const comparator = registry.get(c.type)
        if (!comparator) {
          if (restrictive) continue
          return false
        }
        const value = argumentAt(ctx.arguments, key)
        if (comparator.matches(c, value)) continue
        if (restrictive && !(comparator.decides ? comparator.decides(c, value) : value !== undefined)) continue
        return false
      }
    }
    return true
  }

  /**
   * Could a call under this grant be decided other than allow? Walks the rules as a call would (first
   * match wins) but without arguments or later holders: a non-allow rule that could match some call
   * under the grant says yes; an allow rule that surely matches every such call (no conditions, no
   * agent selectors, covering tools and audiences) decides them all; otherwise the default decides.
   */
  // only rules that apply to calls can hold one (filtered once, not at every issuance)
  const callRules = compiled.filter((r) => r.on.has('call'))
  function needsPerCall(ctx: PerCallContext): boolean {
    for (const r of callRules) {
      if (r.subject && !anyone(r.subject) && !r.subject.includes(ctx.subject)) continue
      const audience = r.audience
      if (audience && !ctx.audiences.some((a) => audience.includes(a))) continue
      const tool = r.tool
      if (tool && !ctx.tools.some((g) => tool.some((p) => patternsOverlap(p, g)))) continue
      if (r.effect !== 'allow') return true
      const surely = !r.when && anyone(r.agent) && anyone(r.actor) && anyone(r.recipient) &&
        (!audience || ctx.audiences.every((a) => audience.includes(a))) &&
        (!tool || ctx.tools.every((g) => tool.some((p) => patternCovers(p, g))))
      if (surely) return false
    }
    return defaultEffect !== 'allow'
  }

  return {
    needsPerCall,
    evaluate(ctx) {
      for (const r of compiled) {
        if (matches(r, ctx)) return { effect: r.effect, rule: r.id, ruleIndex: r.index, ...(r.reason !== undefined ? { reason: r.reason } : {}) }
      }
      // a default of require_approval asks for approval of calls; grants and delegations fall back to allow
      return { effect: defaultEffect === 'require_approval' && ctx.operation !== 'call' ? 'allow' : defaultEffect, byDefault: true }
    },
  }
}

/**
 * Build a PolicyEngine from declarative rules (an array, or a {@link PolicyFile} object).
 * Throws MandateError('POLICY_INVALID') naming the rule and the JSON pointer of the first problem.
 */
export function createRulePolicy(rules: PolicyDocument, options: RulePolicyOptions = {}): PolicyEngine {
  checkOptions(options)
  const registry = options.registry ?? defaultConstraintRegistry
  const policy = parsePolicyDocument(rules, { registry, ...(options.source !== undefined ? { source: options.source } : {}) })
  if (options.defaultEffect !== undefined) {
    if (policy.defaultEffectSet && policy.defaultEffect !== options.defaultEffect) {
      throw new MandateError('POLICY_INVALID', `the policy document says defaultEffect "${policy.defaultEffect}" but the options say "${options.defaultEffect}"`, { detail: { pointer: '/defaultEffect' } })
    }
    return compileValidatedPolicy({ ...policy, defaultEffect: options.defaultEffect, defaultEffectSet: true }, registry)
  }
  return compileValidatedPolicy(policy, registry)
}
