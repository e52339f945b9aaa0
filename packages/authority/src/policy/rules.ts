/**
 * Declarative policy rules, first match wins. A rule matches when every selector it sets matches:
 * subject, agent (the asker), actor (anyone in the chain or the recipient), recipient, audience,
 * tool patterns (segment-boundary matching from core) and argument conditions (core's constraint
 * comparators: exact, enum, max, min, path_prefix). Rules are validated when loaded; an unknown
 * condition type is refused.
 */
import {
  argumentAt, defaultConstraintRegistry, parseConstraintMap, patternCovers, toolMatches,
  type Constraint, type ConstraintMap, type ConstraintRegistry,
} from '@mandate/core'
import type { PolicyContext, PolicyDecision, PolicyEffect, PolicyEngine, PolicyOperation } from './engine.js'

export interface PolicyRule {
  id?: string
  effect: PolicyEffect
  /** Operations the rule applies to; default all three (`require_approval` rules: calls only). */
  on?: PolicyOperation | PolicyOperation[]
  subject?: string | string[]
  agent?: string | string[]
  actor?: string | string[]
  recipient?: string | string[]
  audience?: string | string[]
  /** Tool patterns (`billing.*`). At grant/delegation the rule matches when every granted tool is covered. */
  tool?: string | string[]
  /** Argument conditions (calls only): every condition must hold for the rule to match. */
  when?: ConstraintMap
  reason?: string
}

export interface RulePolicyOptions {
  /** Effect when no rule matches. Default 'allow' (mandates already bound what can be done). 'require_approval' applies to calls; grants and delegations are then allowed. */
  defaultEffect?: PolicyEffect
  registry?: ConstraintRegistry
}

const list = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v])
const EFFECTS = new Set<PolicyEffect>(['allow', 'deny', 'require_approval'])
const OPS = new Set<PolicyOperation>(['grant', 'delegation', 'call'])

interface CompiledRule {
  id: string
  effect: PolicyEffect
  on?: Set<PolicyOperation>
  subject?: string[]
  agent?: string[]
  actor?: string[]
  recipient?: string[]
  audience?: string[]
  tool?: string[]
  when?: ConstraintMap
  reason?: string
}

function compile(rule: PolicyRule, index: number, registry: ConstraintRegistry): CompiledRule {
  if (typeof rule !== 'object' || rule === null || !EFFECTS.has(rule.effect)) throw new TypeError(`policy rule ${index}: effect must be allow, deny or require_approval`)
  const on = list(rule.on as string | string[] | undefined)
  if (on?.some((o) => !OPS.has(o as PolicyOperation))) throw new TypeError(`policy rule ${index}: unknown operation`)
  if (on && on.length === 0) throw new TypeError(`policy rule ${index}: on must name at least one operation`)
  const out: CompiledRule = { id: rule.id ?? `rule-${index}`, effect: rule.effect }
  if (rule.effect === 'require_approval') {
    // a human approves one concrete call; grants and delegations cannot wait for one, so such a
    // rule applies to calls only (and saying otherwise is a configuration error, not a silent deny)
    if (on && on.some((o) => o !== 'call')) throw new TypeError(`policy rule ${index}: require_approval applies to calls only (on: 'call')`)
    out.on = new Set(['call'])
  } else if (on) {
    out.on = new Set(on as PolicyOperation[])
  }
  for (const k of ['subject', 'agent', 'actor', 'recipient', 'audience', 'tool'] as const) {
    const v = list(rule[k])
    if (v && (v.length === 0 || v.some((s) => typeof s !== 'string' || s === ''))) throw new TypeError(`policy rule ${index}: ${k} must be non-empty strings`)
    if (v) out[k] = v
  }
  if (rule.when !== undefined) out.when = parseConstraintMap(rule.when, registry)
  if (rule.reason !== undefined) out.reason = rule.reason
  return out
}

const anyIn = (selector: string[] | undefined, values: readonly string[]) => selector === undefined || selector.includes('*') || values.some((v) => selector.includes(v))

/** Build a PolicyEngine from declarative rules. */
export function createRulePolicy(rules: readonly PolicyRule[], options: RulePolicyOptions = {}): PolicyEngine {
  const registry = options.registry ?? defaultConstraintRegistry
  const compiled = rules.map((r, i) => compile(r, i, registry))
  const defaultEffect = options.defaultEffect ?? 'allow'
  if (!EFFECTS.has(defaultEffect)) throw new TypeError('defaultEffect must be allow, deny or require_approval')

  function matches(r: CompiledRule, ctx: PolicyContext): boolean {
    if (r.on && !r.on.has(ctx.operation)) return false
    if (!anyIn(r.subject, [ctx.subject])) return false
    if (!anyIn(r.agent, [ctx.agent])) return false
    if (!anyIn(r.actor, [...ctx.actorChain, ctx.recipient])) return false
    if (!anyIn(r.recipient, [ctx.recipient])) return false
    if (r.audience && !ctx.audiences.some((a) => (r.audience as string[]).includes(a))) return false
    if (r.tool) {
      if (ctx.operation === 'call') {
        if (!ctx.tools.some((t) => (r.tool as string[]).some((p) => toolMatches(p, t)))) return false
      } else if (ctx.tools.length === 0 || !ctx.tools.every((t) => (r.tool as string[]).some((p) => patternCovers(p, t)))) {
        return false
      }
    }
    if (r.when) {
      if (ctx.operation !== 'call') return false // conditions on arguments only apply to a concrete call
      for (const [key, c] of Object.entries(r.when)) {
        const comparator = registry.get((c as Constraint).type)
        if (!comparator || !comparator.matches(c, argumentAt(ctx.arguments, key))) return false
      }
    }
    return true
  }

  return {
    evaluate(ctx) {
      for (const r of compiled) {
        if (matches(r, ctx)) return { effect: r.effect, rule: r.id, ...(r.reason !== undefined ? { reason: r.reason } : {}) }
      }
      // a default of require_approval asks for approval of calls; grants and delegations fall back to allow
      return { effect: defaultEffect === 'require_approval' && ctx.operation !== 'call' ? 'allow' : defaultEffect }
    },
  }
}
