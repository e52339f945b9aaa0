/**
 * Plain-words explanations of a validated policy, for `mandate policy check` and for people reading
 * a policy before deploying it: what each rule matches, what it does, and what happens otherwise.
 */
import type { Constraint, JsonValue } from '@mandate/core'
import type { PolicyEffect, PolicyOperation } from './engine.js'
import type { ValidatedPolicy, ValidatedRule } from './document.js'

/** One rule, explained. */
export interface RuleExplanation {
  index: number
  id: string
  effect: PolicyEffect
  operations: readonly PolicyOperation[]
  /** Conditions that must all hold, one sentence each (empty: the rule matches every request of its operations). */
  matches: string[]
  /** What the rule does when it matches. */
  does: string
  /** Earlier rules that make this one unreachable, and similar warnings. */
  warnings: string[]
}

export interface PolicyExplanation {
  source?: string
  rules: RuleExplanation[]
  defaultEffect: PolicyEffect
  /** What happens when no rule matches. */
  otherwise: string
}

const OP_WORDS: Readonly<Record<PolicyOperation, string>> = { grant: 'grants', delegation: 'delegations', audience: 'audience credentials', call: 'call credentials' }

function words(list: readonly string[], conj = 'or'): string {
  const q = list.map((v) => `"${v}"`)
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} ${conj} ${q[q.length - 1]}`
}
const ops = (o: readonly PolicyOperation[]) => {
  const w = o.map((x) => OP_WORDS[x])
  return w.length <= 1 ? (w[0] ?? '') : `${w.slice(0, -1).join(', ')} and ${w[w.length - 1]}`
}
const json = (v: JsonValue) => JSON.stringify(v)

function condition(key: string, c: Constraint | { type: string }): string {
  const arg = key.startsWith('/') ? `the argument at ${key}` : `argument "${key}"`
  const k = c as Constraint
  switch (k.type) {
    case 'exact':
      return `${arg} equals ${json(k.value)}`
    case 'enum':
      return `${arg} is one of ${k.values.map(json).join(', ')}`
    case 'max':
      return `${arg} is a number ≤ ${k.value}`
    case 'min':
      return `${arg} is a number ≥ ${k.value}`
    case 'path_prefix':
      return `${arg} is a path at or under ${k.prefix}`
    default:
      return `${arg} satisfies the custom "${(c as { type: string }).type}" condition ${JSON.stringify(c)}`
  }
}

const anyone = (v: readonly string[] | undefined) => v === undefined || v.includes('*')

function matchSentences(r: ValidatedRule): string[] {
  const out: string[] = []
  if (r.subject && !anyone(r.subject)) out.push(`the subject (the user or system the work is for) is ${words(r.subject)}`)
  if (r.agent && !anyone(r.agent)) out.push(`the asking agent (the grantor at a grant; the holder of the parent mandate at a delegation or call) is ${words(r.agent)}`)
  if (r.actor && !anyone(r.actor)) out.push(`${words(r.actor)} is in the delegation chain or receives the result`)
  if (r.recipient && !anyone(r.recipient)) out.push(`the agent receiving the result is ${words(r.recipient)}`)
  if (r.audience) out.push(`one of the requested audiences is ${words(r.audience)}`)
  if (r.tool && !r.tool.includes('*')) {
    const parts: string[] = []
    if (r.operations.includes('call')) parts.push(`at a call, the tool matches ${words(r.tool)}`)
    if (r.operations.some((o) => o !== 'call')) parts.push(`at a grant, delegation or audience credential, every granted tool falls under ${words(r.tool)}`)
    out.push(parts.join('; '))
  }
  if (r.when) {
    for (const [k, c] of Object.entries(r.when)) out.push(condition(k, c))
    out.push(r.effect === 'allow'
      ? '(an argument that is absent, or of another kind than its condition compares, fails its condition)'
      : '(an argument that is absent, or of another kind than its condition compares, such as "5000" for a number, counts as holding: fail closed)')
  }
  return out
}

function effectSentence(effect: PolicyEffect, reason: string | undefined): string {
  const why = reason !== undefined ? ` with the reason "${reason}"` : ''
  if (effect === 'allow') return 'allows it; no later rule is considered'
  if (effect === 'deny') return `refuses it with POLICY_DENIED${why}, naming this rule`
  return `holds the call credential until a human approves the exact call (APPROVAL_REQUIRED)${why}`
}

/** Does an earlier rule match everything this one could match? (selectors and conditions absent, operations covering) */
function shadowedBy(rule: ValidatedRule, earlier: readonly ValidatedRule[]): ValidatedRule | undefined {
  return earlier.find((e) =>
    anyone(e.subject) && anyone(e.agent) && anyone(e.actor) && anyone(e.recipient) && !e.audience && (!e.tool || e.tool.includes('*')) && !e.when &&
    rule.operations.every((o) => e.operations.includes(o)))
}

/** Explain every rule of a validated policy in plain words. */
export function explainPolicy(policy: ValidatedPolicy): PolicyExplanation {
  const rules = policy.rules.map((r, i): RuleExplanation => {
    const warnings: string[] = []
    const shadow = shadowedBy(r, policy.rules.slice(0, i))
    if (shadow) warnings.push(`never reached: rule ${shadow.index} ("${shadow.id}") comes first and matches every request of ${ops(r.operations)}`)
    return {
      index: r.index, id: r.id, effect: r.effect, operations: r.operations,
      matches: [`the request is one of: ${ops(r.operations)}`, ...matchSentences(r)],
      does: effectSentence(r.effect, r.reason),
      warnings,
    }
  })
  const d = policy.defaultEffect
  const otherwise = d === 'allow'
    ? 'allow: the mandate alone bounds what can be done'
    : d === 'deny'
      ? 'deny: POLICY_DENIED, saying that no rule matched'
      : 'calls need a human approval; grants, delegations and audience credentials are allowed'
  return { ...(policy.source !== undefined ? { source: policy.source } : {}), rules, defaultEffect: d, otherwise }
}
