/**
 * Strict validation of policy documents. Every member is known, every value has its type, every
 * selector names something, every condition has exactly its type's members: a typo must never turn
 * a rule into one that matches everyone (`"agnet"`) or no one (`"constraints"` for `"when"`). Errors
 * name the file, the rule (index and id) and the JSON pointer of the offending member.
 */
import {
  assertAudience, defaultConstraintRegistry, isDidKey, isSafePath, MandateError,
  type Constraint, type ConstraintMap, type ConstraintRegistry,
} from '@mandate/core'
import type { PolicyEffect, PolicyOperation } from './engine.js'
import {
  CONSTRAINT_MEMBERS, DOCUMENT_MEMBERS, EFFECTS, OPERATIONS, POLICY_LIMITS, POLICY_VERSION, RULE_ID, RULE_MEMBERS,
  SELECTORS, TOOL_PATTERN, type BuiltinConstraintType, type PolicySelector,
} from './format.js'

/** One declarative rule. A rule matches when every selector it sets matches; first match wins. */
export interface PolicyRule {
  /** Named in refusals, approvals and audit records. Default `rule-<index>`. Unique in a document. */
  id?: string
  effect: PolicyEffect
  /** Operations the rule applies to; default all three (`require_approval` rules and rules with `when`: calls only). */
  on?: PolicyOperation | readonly PolicyOperation[]
  /** The user or system the work is for; `*` for any. */
  subject?: string | readonly string[]
  /** The asking principal (grantor at a grant, holder of the parent mandate otherwise): did:key or `*`. */
  agent?: string | readonly string[]
  /** Anyone in the actor chain, or the recipient: did:key or `*`. */
  actor?: string | readonly string[]
  /** The agent that will hold the result: did:key or `*`. */
  recipient?: string | readonly string[]
  /** Resource URIs (exact); the rule matches when any requested audience is listed. */
  audience?: string | readonly string[]
  /** Tool patterns (`billing.*`). At grant/delegation the rule matches when every granted tool is covered. */
  tool?: string | readonly string[]
  /** Argument conditions (calls only): every condition must hold for the rule to match. */
  when?: ConstraintMap
  /** Shown to the agent and the approver; never secret. */
  reason?: string
}

/** The object form of a policy document (what `--policy FILE` and `mandate policy check` read). */
export interface PolicyFile {
  /** Editors' hint, e.g. the path of `@mandate/authority/policy.schema.json`; not interpreted. */
  $schema?: string
  /** Format version; only 1 exists. */
  version?: 1
  /** Effect when no rule matches. Default `allow`. */
  defaultEffect?: PolicyEffect
  rules: readonly PolicyRule[]
}

/** A policy document: a bare array of rules, or a {@link PolicyFile}. */
export type PolicyDocument = readonly PolicyRule[] | PolicyFile

/** One problem found in a policy document. */
export interface PolicyIssue {
  /** RFC 6901 pointer of the offending member within the document (`/rules/3/agnet`); `''` is the whole document. */
  pointer: string
  message: string
  /** Index of the rule the problem is in, when it is in one. */
  ruleIndex?: number
  /** That rule's explicit `id`, when it has a readable one. */
  ruleId?: string
}

/** A rule after validation: every selector a list, `on` resolved, conditions parsed. */
export interface ValidatedRule {
  index: number
  id: string
  /** False when the id is the default `rule-<index>`. */
  explicitId: boolean
  /** Pointer of this rule in the document (`/rules/0` or `/0`). */
  pointer: string
  effect: PolicyEffect
  /** The operations the rule applies to, after defaults (never empty). */
  operations: readonly PolicyOperation[]
  subject?: readonly string[]
  agent?: readonly string[]
  actor?: readonly string[]
  recipient?: readonly string[]
  audience?: readonly string[]
  tool?: readonly string[]
  when?: ConstraintMap
  reason?: string
}

/** A policy document that passed validation. */
export interface ValidatedPolicy {
  /** File the document came from, when known. */
  source?: string
  defaultEffect: PolicyEffect
  /** Whether `defaultEffect` was set by the document (or by options), rather than the built-in `allow`. */
  defaultEffectSet: boolean
  rules: readonly ValidatedRule[]
}

export interface PolicyValidationOptions {
  /** File name, named in every error. */
  source?: string
  /** Constraint types `when` may use. Default: core's built-in types. */
  registry?: ConstraintRegistry
}

export type PolicyValidation = { ok: true; policy: ValidatedPolicy } | { ok: false; issues: PolicyIssue[] }

const MAX_ISSUES = 100
const MAX_JSON_DEPTH = 32
const REASON = /^[^\u0000-\u001f\u007f]{1,512}$/u

/** Common misnamings, pointed at what was probably meant. */
const ALIASES: Readonly<Record<string, string>> = {
  constraints: 'when', conditions: 'when', condition: 'when', where: 'when', if: 'when', arguments: 'when', args: 'when',
  operation: 'on', operations: 'on', op: 'on', action: 'effect', decision: 'effect', name: 'id', message: 'reason',
  default: 'defaultEffect', default_effect: 'defaultEffect', defaulteffect: 'defaultEffect', policy: 'rules',
}

/** RFC 6901 token escaping. */
export function pointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1')
}
const at = (base: string, token: string | number) => `${base}/${pointerToken(token)}`

const quote = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s)

/** Edit distance counting a swap of neighbours as one edit ("agnet" is one edit from "agent"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[]
      const up = d[i - 1] as number[]
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1)
    }
  }
  return (d[a.length] as number[])[b.length] as number
}

/** The member that was probably meant, for "did you mean" hints. */
export function closestMember(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  const alias = ALIASES[lower]
  if (alias && known.includes(alias)) return alias
  let best: string | undefined
  let bestDistance = Infinity
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower.slice(0, 64), k.toLowerCase())
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined
}

function kindOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  if (typeof v === 'string') return 'a string'
  if (typeof v === 'number') return 'a number'
  if (typeof v === 'boolean') return 'a boolean'
  return typeof v
}

/** A plain JSON object (from JSON.parse or an object literal), not an array, class instance or null. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

/** A JSON value with finite numbers only (`1e400` parses to Infinity, which JSON would turn into null). */
function jsonProblem(v: unknown, depth = 0): string | undefined {
  if (depth > MAX_JSON_DEPTH) return 'is nested too deeply'
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return undefined
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : 'must be a finite number'
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) return 'must not have holes'
      const p = jsonProblem(v[i], depth + 1)
      if (p) return p
    }
    return undefined
  }
  if (isPlainObject(v)) {
    for (const k of Object.keys(v)) {
      const p = jsonProblem(v[k], depth + 1)
      if (p) return p
    }
    return undefined
  }
  return 'must be a JSON value'
}

/**
 * The document's data, read once: every array element and own enumerable member copied into fresh
 * arrays and objects, so a getter or proxy of a document built in code cannot answer validation one
 * thing and the engine another. Holes stay holes; anything else (functions, class instances) and
 * anything nested deeper than validation reads is kept as it is, for validation to refuse.
 */
function snapshot(v: unknown, depth = 0): unknown {
  if (depth > MAX_JSON_DEPTH + 1 || typeof v !== 'object' || v === null) return v
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length)
    for (let i = 0; i < v.length; i++) if (i in v) out[i] = snapshot(v[i], depth + 1)
    return out
  }
  if (!isPlainObject(v)) return v
  const out: Record<string, unknown> = {}
  // defineProperty: a member named __proto__ stays a member (validation names and refuses it)
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: snapshot(v[k], depth + 1), enumerable: true, writable: true, configurable: true })
  return out
}

class Issues {
  readonly list: PolicyIssue[] = []
  rule: { index: number; id?: string } | undefined
  add(pointer: string, message: string): void {
    if (this.list.length >= MAX_ISSUES) return
    const issue: PolicyIssue = { pointer, message }
    if (this.rule) {
      issue.ruleIndex = this.rule.index
      if (this.rule.id !== undefined) issue.ruleId = this.rule.id
    }
    this.list.push(issue)
  }
  members(obj: Record<string, unknown>, known: readonly string[], base: string, what: string): void {
    for (const k of Object.keys(obj)) {
      if (known.includes(k)) continue
      const hint = closestMember(k, known)
      this.add(at(base, k), `unknown member ${quote(k)} in ${what}${hint ? ` (did you mean ${quote(hint)}?)` : ''}; known members: ${known.join(', ')}`)
    }
  }
}

const AUDIENCE_PROBLEM = 'must be an absolute https, http or urn URI without spaces, a fragment or credentials (compared exactly; "*" is not a wildcard here)'

/** Which values a selector accepts, and why one is refused. */
function selectorValueProblem(selector: PolicySelector, v: string): string | undefined {
  switch (selector) {
    case 'subject':
      return v.length <= POLICY_LIMITS.value ? undefined : `must be at most ${POLICY_LIMITS.value} characters`
    case 'agent':
    case 'actor':
    case 'recipient':
      return v === '*' || isDidKey(v) ? undefined : 'must be an Ed25519 did:key (did:key:z6Mk…) or "*"'
    case 'audience':
      // URL parsing forgives what exact comparison does not (" https://a" parses, then never matches)
      if (!/^(?:https?|urn):[^#\s]+$/i.test(v)) return AUDIENCE_PROBLEM
      try {
        assertAudience(v, 'audience')
        return undefined
      } catch {
        return AUDIENCE_PROBLEM
      }
    case 'tool':
      return v.length <= POLICY_LIMITS.tool && TOOL_PATTERN.test(v) ? undefined : 'must be a tool name or pattern: "*", "a.b" or "a.*" (segments of letters, digits, _ - / :)'
  }
}

function stringList(issues: Issues, raw: unknown, pointer: string, name: string, check: (v: string) => string | undefined, empty = `${name} is empty: leave it out to match everything, or name at least one value`): string[] | undefined {
  const values = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? (raw as unknown[]) : undefined
  if (values === undefined) {
    issues.add(pointer, `${name} must be a string or an array of strings, not ${kindOf(raw)}`)
    return undefined
  }
  if (values.length === 0) {
    issues.add(pointer, empty)
    return undefined
  }
  if (values.length > POLICY_LIMITS.selectorItems) {
    issues.add(pointer, `${name} has more than ${POLICY_LIMITS.selectorItems} values`)
    return undefined
  }
  const out: string[] = []
  let ok = true
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    const p = Array.isArray(raw) ? at(pointer, i) : pointer
    if (typeof v !== 'string') {
      issues.add(p, `${name} values must be strings, not ${kindOf(v)}`)
      ok = false
    } else if (v === '') {
      issues.add(p, `${name} values must not be empty`)
      ok = false
    } else {
      const problem = check(v)
      if (problem) {
        issues.add(p, `${name} ${quote(v)} ${problem}`)
        ok = false
      } else out.push(v)
    }
  }
  return ok ? out : undefined
}

function validPointerKey(key: string): boolean {
  return !/~[^01]|~$/.test(key)
}

function validateConstraint(issues: Issues, raw: unknown, pointer: string, key: string, registry: ConstraintRegistry): Constraint | undefined {
  if (!isPlainObject(raw)) {
    issues.add(pointer, `the condition on ${quote(key)} must be an object like {"type":"max","value":100}, not ${kindOf(raw)}`)
    return undefined
  }
  const type = raw.type
  const known = [...registry.keys()]
  if (type === undefined) {
    // without a type the member set is unknown; members no type has are still named (a misspelt "type")
    issues.members(raw, ['type', ...new Set(Object.values(CONSTRAINT_MEMBERS).flat())], pointer, 'a condition')
    issues.add(pointer, `the condition on ${quote(key)} has no "type" (one of ${known.join(', ')})`)
    return undefined
  }
  const comparator = typeof type === 'string' ? registry.get(type) : undefined
  if (!comparator) {
    issues.add(at(pointer, 'type'), `unknown constraint type ${typeof type === 'string' ? quote(type) : kindOf(type)}; known types: ${known.join(', ')}`)
    return undefined
  }
  const t = type as string
  const builtin = Object.hasOwn(CONSTRAINT_MEMBERS, t) && comparator === defaultConstraintRegistry.get(t)
  if (builtin) {
    const members = CONSTRAINT_MEMBERS[t as BuiltinConstraintType] as readonly string[]
    const before = issues.list.length
    issues.members(raw, ['type', ...members], pointer, `a ${t} condition`)
    for (const m of members) if (!Object.hasOwn(raw, m)) issues.add(pointer, `a ${t} condition needs ${quote(m)}`)
    if (issues.list.length > before) return undefined
    const problem = builtinShapeProblem(t as BuiltinConstraintType, raw)
    if (problem) {
      issues.add(at(pointer, problem.member), problem.message)
      return undefined
    }
  }
  try {
    return comparator.parse(raw) as Constraint
  } catch (err) {
    issues.add(pointer, `the ${t} condition on ${quote(key)} is invalid: ${MandateError.is(err) ? err.message : 'refused by its comparator'}`)
    return undefined
  }
}

function builtinShapeProblem(type: BuiltinConstraintType, raw: Record<string, unknown>): { member: string; message: string } | undefined {
  const jsonTooLarge = (v: unknown) => (JSON.stringify(v)?.length ?? Infinity) > POLICY_LIMITS.constraintValueJson
  switch (type) {
    case 'exact': {
      const p = jsonProblem(raw.value)
      if (p) return { member: 'value', message: `value ${p}` }
      if (jsonTooLarge(raw.value)) return { member: 'value', message: `value is larger than ${POLICY_LIMITS.constraintValueJson} characters of JSON` }
      return undefined
    }
    case 'enum': {
      const values = raw.values
      if (!Array.isArray(values) || values.length === 0 || values.length > POLICY_LIMITS.enumValues) {
        return { member: 'values', message: `values must be an array of 1 to ${POLICY_LIMITS.enumValues} JSON values` }
      }
      for (let i = 0; i < values.length; i++) {
        const p = i in values ? jsonProblem(values[i]) : 'must not have holes'
        if (p) return { member: `values/${i}`, message: `values/${i} ${p}` }
        if (jsonTooLarge(values[i])) return { member: `values/${i}`, message: `values/${i} is larger than ${POLICY_LIMITS.constraintValueJson} characters of JSON` }
      }
      return undefined
    }
    case 'max':
    case 'min':
      return typeof raw.value === 'number' && Number.isFinite(raw.value) ? undefined : { member: 'value', message: `value must be a finite number, not ${kindOf(raw.value)}` }
    case 'path_prefix':
      return typeof raw.prefix === 'string' && isSafePath(raw.prefix, false)
        ? undefined
        : { member: 'prefix', message: 'prefix must be a plain path ("/srv/data"), without ".", "..", empty segments, backslashes or percent-encoding' }
  }
}

function validateWhen(issues: Issues, raw: unknown, pointer: string, registry: ConstraintRegistry): ConstraintMap | undefined {
  if (!isPlainObject(raw)) {
    issues.add(pointer, `when must be an object mapping argument names to conditions, not ${kindOf(raw)}`)
    return undefined
  }
  const keys = Object.keys(raw)
  if (keys.length === 0) {
    issues.add(pointer, 'when is empty: leave it out, or name at least one argument condition')
    return undefined
  }
  if (keys.length > POLICY_LIMITS.conditions) {
    issues.add(pointer, `when has more than ${POLICY_LIMITS.conditions} conditions`)
    return undefined
  }
  const out: ConstraintMap = {}
  let ok = true
  for (const key of keys) {
    const p = at(pointer, key)
    if (key.length === 0 || key.length > POLICY_LIMITS.conditionKey || key === '__proto__' || (key.startsWith('/') && !validPointerKey(key))) {
      issues.add(p, `${quote(key)} is not an argument name or an RFC 6901 pointer ("/a/b")`)
      ok = false
      continue
    }
    const c = validateConstraint(issues, raw[key], p, key, registry)
    if (c) out[key] = c
    else ok = false
  }
  return ok ? out : undefined
}

function validateRule(issues: Issues, raw: unknown, index: number, pointer: string, registry: ConstraintRegistry): ValidatedRule | undefined {
  issues.rule = { index }
  if (!isPlainObject(raw)) {
    issues.add(pointer, `a rule must be an object with at least "effect", not ${kindOf(raw)}`)
    return undefined
  }
  const id = raw.id
  if (typeof id === 'string' && RULE_ID.test(id)) issues.rule = { index, id }
  const before = issues.list.length
  issues.members(raw, RULE_MEMBERS, pointer, 'a rule')

  if (id !== undefined && !(typeof id === 'string' && RULE_ID.test(id))) issues.add(at(pointer, 'id'), `id must be 1 to ${POLICY_LIMITS.id} printable ASCII characters`)
  const effect = raw.effect
  if (effect === undefined) issues.add(pointer, `a rule needs "effect": ${EFFECTS.join(', ')}`)
  else if (typeof effect !== 'string' || !EFFECTS.includes(effect as PolicyEffect)) {
    issues.add(at(pointer, 'effect'), `effect must be ${EFFECTS.join(', ')}, not ${typeof effect === 'string' ? quote(effect) : kindOf(effect)}`)
  }

  let on: PolicyOperation[] | undefined
  if (raw.on !== undefined) {
    on = stringList(issues, raw.on, at(pointer, 'on'), 'on', (v) => (OPERATIONS.includes(v as PolicyOperation) ? undefined : `is not an operation (${OPERATIONS.join(', ')})`), `on must name at least one operation (${OPERATIONS.join(', ')}), or be left out`) as PolicyOperation[] | undefined
  }
  const selectors: Partial<Record<PolicySelector, string[]>> = {}
  for (const s of SELECTORS) {
    if (raw[s] === undefined) continue
    const list = stringList(issues, raw[s], at(pointer, s), s, (v) => selectorValueProblem(s, v))
    if (list) selectors[s] = list
  }
  let when: ConstraintMap | undefined
  if (raw.when !== undefined) when = validateWhen(issues, raw.when, at(pointer, 'when'), registry)
  const reason = raw.reason
  if (reason !== undefined && !(typeof reason === 'string' && REASON.test(reason))) {
    issues.add(at(pointer, 'reason'), `reason must be 1 to ${POLICY_LIMITS.reason} characters without control characters`)
  }

  // a human approves one concrete call, and argument conditions exist only at a call: saying
  // otherwise would make a rule that silently never matches, so it is a mistake, not a no-op
  if (effect === 'require_approval' && on && on.some((o) => o !== 'call')) {
    issues.add(at(pointer, 'on'), 'require_approval applies to calls only: set "on": "call" or leave "on" out')
  } else if (raw.when !== undefined && on && on.some((o) => o !== 'call')) {
    issues.add(at(pointer, 'on'), 'argument conditions ("when") apply to calls only: set "on": "call" or leave "on" out')
  }
  if (issues.list.length > before) return undefined

  const callsOnly = effect === 'require_approval' || when !== undefined
  const operations = on ? OPERATIONS.filter((o) => on.includes(o)) : callsOnly ? (['call'] as PolicyOperation[]) : [...OPERATIONS]
  const rule: ValidatedRule = {
    index, pointer, id: typeof id === 'string' ? id : `rule-${index}`, explicitId: typeof id === 'string', effect: effect as PolicyEffect, operations, ...selectors,
  }
  if (when) rule.when = when
  if (typeof reason === 'string') rule.reason = reason
  return rule
}

function validateDocument(doc: unknown, issues: Issues, registry: ConstraintRegistry): ValidatedPolicy | undefined {
  let rawRules: unknown
  let base: string
  let defaultEffect: PolicyEffect = 'allow'
  let defaultEffectSet = false
  if (Array.isArray(doc)) {
    rawRules = doc
    base = ''
  } else if (isPlainObject(doc)) {
    issues.members(doc, DOCUMENT_MEMBERS, '', 'the policy document')
    if (doc.$schema !== undefined && (typeof doc.$schema !== 'string' || doc.$schema.length > POLICY_LIMITS.value)) issues.add('/$schema', '$schema must be a string (a URI or path of the schema)')
    if (doc.version !== undefined && doc.version !== POLICY_VERSION) issues.add('/version', `version must be ${POLICY_VERSION} (this Mandate understands no other policy format)`)
    if (doc.defaultEffect !== undefined) {
      if (typeof doc.defaultEffect !== 'string' || !EFFECTS.includes(doc.defaultEffect as PolicyEffect)) {
        issues.add('/defaultEffect', `defaultEffect must be ${EFFECTS.join(', ')}, not ${typeof doc.defaultEffect === 'string' ? quote(doc.defaultEffect) : kindOf(doc.defaultEffect)}`)
      } else {
        defaultEffect = doc.defaultEffect as PolicyEffect
        defaultEffectSet = true
      }
    }
    if (!Object.hasOwn(doc, 'rules')) {
      issues.add('', 'a policy document needs "rules" (an array of rules)')
      return undefined
    }
    rawRules = doc.rules
    base = '/rules'
    if (!Array.isArray(rawRules)) {
      issues.add('/rules', `rules must be an array, not ${kindOf(rawRules)}`)
      return undefined
    }
  } else {
    issues.add('', `a policy document is a JSON array of rules or an object with "rules", not ${kindOf(doc)}`)
    return undefined
  }
  const list = rawRules as unknown[]
  if (list.length > POLICY_LIMITS.rules) {
    issues.add(base, `a policy has at most ${POLICY_LIMITS.rules} rules`)
    return undefined
  }
  const rules: ValidatedRule[] = []
  const seen = new Map<string, number>()
  for (let i = 0; i < list.length; i++) {
    const pointer = at(base, i)
    const rule = i in list ? validateRule(issues, list[i], i, pointer, registry) : (issues.add(pointer, 'a rule must be an object, not a hole'), undefined)
    if (!rule) continue
    const other = seen.get(rule.id)
    if (other !== undefined) issues.add(rule.explicitId ? at(pointer, 'id') : pointer, `duplicate rule id ${quote(rule.id)} (rule ${other} has it too): refusals and audit records name rules by id`)
    else seen.set(rule.id, i)
    rules.push(rule)
  }
  issues.rule = undefined
  return issues.list.length ? undefined : { defaultEffect, defaultEffectSet, rules }
}

/** Validate a policy document without throwing: the document, or every problem found (at most 100). */
export function validatePolicyDocument(doc: unknown, options: PolicyValidationOptions = {}): PolicyValidation {
  const issues = new Issues()
  let policy: ValidatedPolicy | undefined
  try {
    policy = validateDocument(snapshot(doc), issues, options.registry ?? defaultConstraintRegistry)
  } catch {
    // a getter or proxy that throws (JavaScript callers only): refused, never half-read
    issues.rule = undefined
    issues.add('', 'the policy document could not be read as plain JSON data')
  }
  if (!policy || issues.list.length) return { ok: false, issues: issues.list }
  return { ok: true, policy: options.source !== undefined ? { ...policy, source: options.source } : policy }
}

/** Where an issue is, in words: `policy.json: rule 3 (id "billing"), /rules/3/agnet`. */
export function issueLocation(issue: PolicyIssue, source?: string): string {
  const parts: string[] = []
  if (issue.ruleIndex !== undefined) parts.push(`rule ${issue.ruleIndex}${issue.ruleId !== undefined ? ` (id ${quote(issue.ruleId)})` : ''}`)
  parts.push(issue.pointer === '' ? '(document)' : issue.pointer)
  return `${source !== undefined ? `${source}: ` : ''}${parts.join(', ')}`
}

/** The POLICY_INVALID error for a list of issues: the first one in the message and detail, with a count. */
export function policyInvalidError(issues: readonly PolicyIssue[], source?: string): MandateError {
  const first = issues[0] ?? { pointer: '', message: 'invalid policy' }
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''}; run \`mandate policy check\` to list them)` : ''
  const detail: Record<string, string | number> = { pointer: first.pointer, issues: issues.length }
  if (source !== undefined) detail.file = source
  if (first.ruleIndex !== undefined) detail.rule_index = first.ruleIndex
  if (first.ruleId !== undefined) detail.rule_id = first.ruleId
  return new MandateError('POLICY_INVALID', `invalid policy: ${issueLocation(first, source)}: ${first.message}${more}`, { detail })
}

/** Validate a policy document; throws MandateError('POLICY_INVALID') naming the file, rule and pointer. */
export function parsePolicyDocument(doc: unknown, options: PolicyValidationOptions = {}): ValidatedPolicy {
  const r = validatePolicyDocument(doc, options)
  if (!r.ok) throw policyInvalidError(r.issues, options.source)
  return r.policy
}

/** Is `v` a policy document's own value (as opposed to a PolicyEngine object)? Used to route options. */
export function looksLikePolicyDocument(v: unknown): boolean {
  return Array.isArray(v) || (isPlainObject(v) && typeof (v as { evaluate?: unknown }).evaluate !== 'function')
}

