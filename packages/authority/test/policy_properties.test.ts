/**
 * Property tests of the policy validator: random mutations of valid documents are either accepted
 * with the same meaning or refused with POLICY_INVALID at the mutated member; never a crash, never a
 * silently different meaning. "Meaning" is checked against an independent oracle that interprets the
 * raw JSON document by the rules of docs/policy.md (and gives up on anything it does not know).
 */
import { argumentAt, defaultConstraintRegistry, Ed25519Key, isSafePath, MandateError, patternCovers, toolMatches, type Constraint } from '@mandate/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createRulePolicy, validatePolicyDocument, type PolicyContext, type PolicyDecision } from '../src/index.js'
import { pointerToken } from '../src/policy/document.js'
import { AUD, AUD2 } from './helpers.js'

const DIDS = [Ed25519Key.generate().did, Ed25519Key.generate().did, Ed25519Key.generate().did]
const SUBJECTS = ['alice', 'bob', 'carol']
const TOOLS = ['billing.get', 'billing.refund', 'admin.wipe', 'files.read']
const PATTERNS = ['billing.*', 'billing.get', 'admin.*', '*', 'files.read', 'billing.refund']
const OPS = ['grant', 'delegation', 'call'] as const
const RUNS = 150

type Raw = Record<string, unknown>
const INVALID = Symbol('invalid')

// ---- the oracle: interprets a raw document directly; its own member lists, not the validator's

const ORACLE_RULE_KEYS = ['id', 'effect', 'on', 'subject', 'agent', 'actor', 'recipient', 'audience', 'tool', 'when', 'reason']
const ORACLE_CONDITION_KEYS: Record<string, string[]> = { exact: ['value'], enum: ['values'], max: ['value'], min: ['value'], path_prefix: ['prefix'] }

function list(v: unknown): string[] | typeof INVALID {
  const l = typeof v === 'string' ? [v] : v
  if (!Array.isArray(l) || l.length === 0 || l.some((x) => typeof x !== 'string' || x === '')) return INVALID
  return l as string[]
}

function oracle(doc: unknown, ctx: PolicyContext): { effect: string; rule?: string } | typeof INVALID {
  const rules = Array.isArray(doc) ? doc : (doc as Raw).rules
  const def = Array.isArray(doc) ? 'allow' : ((doc as Raw).defaultEffect ?? 'allow')
  if (!Array.isArray(rules)) return INVALID
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i] as Raw
    if (Object.keys(r).some((k) => !ORACLE_RULE_KEYS.includes(k))) return INVALID
    const callsOnly = r.effect === 'require_approval' || r.when !== undefined
    const on = r.on === undefined ? (callsOnly ? ['call'] : [...OPS]) : list(r.on)
    if (on === INVALID) return INVALID
    if (!on.includes(ctx.operation)) continue
    const sel = (name: string, values: readonly string[]) => {
      if (r[name] === undefined) return true
      const l = list(r[name])
      if (l === INVALID) throw INVALID
      return l.includes('*') || values.some((v) => l.includes(v))
    }
    try {
      if (!sel('subject', [ctx.subject]) || !sel('agent', [ctx.agent]) || !sel('actor', [...ctx.actorChain, ctx.recipient]) || !sel('recipient', [ctx.recipient])) continue
      if (r.audience !== undefined) {
        const l = list(r.audience)
        if (l === INVALID) return INVALID
        if (!ctx.audiences.some((a) => l.includes(a))) continue
      }
      if (r.tool !== undefined) {
        const l = list(r.tool)
        if (l === INVALID) return INVALID
        const ok = ctx.operation === 'call' ? ctx.tools.some((t) => l.some((p) => toolMatches(p, t))) : ctx.tools.length > 0 && ctx.tools.every((t) => l.some((p) => patternCovers(p, t)))
        if (!ok) continue
      }
    } catch {
      return INVALID
    }
    if (r.when !== undefined) {
      if (ctx.operation !== 'call') continue
      let all = true
      for (const [key, c] of Object.entries(r.when as Raw)) {
        const t = (c as Raw).type as string
        const members = ORACLE_CONDITION_KEYS[t]
        if (!members || Object.keys(c as Raw).some((k) => k !== 'type' && !members.includes(k))) return INVALID
        const v = argumentAt(ctx.arguments, key)
        if (defaultConstraintRegistry.get(t)?.matches(c as Constraint, v)) continue
        // a restrictive rule also holds where the condition cannot decide: an absent value, or one
        // of another JSON type than the condition compares (min/max numbers, path_prefix safe paths,
        // exact/enum the type of a listed value)
        const kind = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x)
        const cc = c as Raw
        const decided = v !== undefined && (
          t === 'min' || t === 'max' ? typeof v === 'number' && Number.isFinite(v)
            : t === 'path_prefix' ? typeof v === 'string' && isSafePath(v, true)
              : t === 'exact' ? kind(v) === kind(cc.value)
                : (cc.values as unknown[]).some((x) => kind(x) === kind(v)))
        if (r.effect !== 'allow' && !decided) continue
        all = false
      }
      if (!all) continue
    }
    return { effect: r.effect as string, rule: typeof r.id === 'string' ? r.id : `rule-${i}` }
  }
  return { effect: def === 'require_approval' && ctx.operation !== 'call' ? 'allow' : (def as string) }
}

// ---- generators

const one = <T,>(xs: readonly T[]) => fc.constantFrom(...xs)
const selector = (pool: readonly string[]) => fc.oneof(one(pool), fc.uniqueArray(one(pool), { minLength: 1, maxLength: 3 }))
const condition: fc.Arbitrary<Raw> = fc.oneof(
  fc.record({ type: fc.constant('max'), value: fc.integer({ min: -5, max: 1000 }) }),
  fc.record({ type: fc.constant('min'), value: fc.integer({ min: -5, max: 1000 }) }),
  fc.record({ type: fc.constant('exact'), value: fc.oneof(fc.integer({ min: 0, max: 3 }), one(['eur', 'usd']), fc.constant(null)) }),
  fc.record({ type: fc.constant('enum'), values: fc.uniqueArray(fc.oneof(one(['eur', 'usd', 'gbp']), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 3 }) }),
  fc.record({ type: fc.constant('path_prefix'), prefix: one(['/srv', '/srv/data', '/', 'tmp']) }),
)
const rule: fc.Arbitrary<Raw> = fc.record(
  {
    effect: one(['allow', 'deny', 'require_approval']), on: fc.oneof(one(OPS), fc.uniqueArray(one(OPS), { minLength: 1, maxLength: 3 })),
    subject: selector([...SUBJECTS, '*']), agent: selector([...DIDS, '*']), actor: selector([...DIDS, '*']), recipient: selector([...DIDS, '*']),
    audience: selector([AUD, AUD2]), tool: selector(PATTERNS),
    when: fc.dictionary(one(['amount', 'cur', 'path', '/nested/n']), condition, { minKeys: 1, maxKeys: 3 }), reason: one(['because', 'policy says so']),
  },
  { requiredKeys: ['effect'] },
).map((r) => {
  // require_approval and `when` apply to calls only: give such a rule `on` that says so (or none)
  if ((r.effect === 'require_approval' || r.when !== undefined) && r.on !== undefined) r.on = 'call'
  return r
})
const validDoc: fc.Arbitrary<unknown> = fc
  .tuple(fc.array(rule, { maxLength: 6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), fc.boolean(), fc.option(one(['allow', 'deny', 'require_approval']), { nil: undefined }))
  .map(([rules, named, objectForm, defaultEffect]) => {
    const withIds = rules.map((r, i) => (named[i] ? { id: `r${i}`, ...r } : r))
    return objectForm || defaultEffect !== undefined ? { ...(defaultEffect !== undefined ? { defaultEffect } : {}), rules: withIds } : withIds
  })

const context: fc.Arbitrary<PolicyContext> = fc.record({
  operation: one(OPS), subject: one(SUBJECTS), agent: one(DIDS), actorChain: fc.uniqueArray(one(DIDS), { maxLength: 2 }), recipient: one(DIDS), txn: fc.constant('t'),
  audiences: fc.uniqueArray(one([AUD, AUD2]), { minLength: 1, maxLength: 2 }), tools: fc.uniqueArray(one([...TOOLS, ...PATTERNS]), { minLength: 1, maxLength: 2 }),
  scopes: fc.constant([]),
  arguments: fc.record({ amount: fc.integer({ min: -10, max: 1200 }), cur: one(['eur', 'usd', 1, null]), path: one(['/srv/data/x', '/etc/passwd', 'tmp/a', '/srv']), nested: fc.record({ n: fc.integer({ min: 0, max: 3 }) }) }, { requiredKeys: [] }),
}).map((c) => (c.operation === 'call' ? { ...c, tools: c.tools.slice(0, 1).map((t) => (t.includes('*') ? 'billing.get' : t)) } : c))

const decide = (doc: unknown, contexts: PolicyContext[]) => {
  const engine = createRulePolicy(doc as never)
  return contexts.map((c) => {
    const d = engine.evaluate(c) as PolicyDecision
    return { effect: d.effect, ...(d.rule !== undefined ? { rule: d.rule } : {}) }
  })
}

// ---- mutation helpers

type Path = (string | number)[]
function nodes(v: unknown, path: Path = []): { path: Path; value: unknown }[] {
  const out = [{ path, value: v }]
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...nodes(x, [...path, i])))
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...nodes(x, [...path, k]))
  return out
}
const clone = <T,>(v: T): T => structuredClone(v)
function getAt(doc: unknown, path: Path): unknown {
  return path.reduce<unknown>((cur, k) => (cur as Record<string | number, unknown>)[k], doc)
}
function setAt(doc: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value
  const parent = getAt(doc, path.slice(0, -1)) as Record<string | number, unknown>
  parent[path[path.length - 1] as string | number] = value
  return doc
}
const pointer = (path: Path) => path.map((p) => `/${pointerToken(p)}`).join('')

/** Paths of the objects whose members are closed: the document object, rules, conditions. */
function closedObjects(doc: unknown): Path[] {
  const rulesBase: Path = Array.isArray(doc) ? [] : ['rules']
  const rules = getAt(doc, rulesBase) as Raw[]
  const out: Path[] = Array.isArray(doc) ? [] : [[]]
  rules.forEach((r, i) => {
    out.push([...rulesBase, i])
    if (r.when) for (const k of Object.keys(r.when as Raw)) out.push([...rulesBase, i, 'when', k])
  })
  return out
}
const KNOWN = new Set([...ORACLE_RULE_KEYS, '$schema', 'version', 'defaultEffect', 'rules', 'type', 'value', 'values', 'prefix'])
const unknownName = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !KNOWN.has(s))

function issuesOf(doc: unknown): string[] | undefined {
  const r = validatePolicyDocument(doc)
  return r.ok ? undefined : r.issues.map((i) => i.pointer)
}

describe('policy validator properties', () => {
  it('valid documents are accepted and mean what the oracle says', () => {
    fc.assert(fc.property(validDoc, fc.array(context, { minLength: 5, maxLength: 5 }), (doc, contexts) => {
      expect(issuesOf(doc)).toBeUndefined()
      expect(decide(doc, contexts)).toEqual(contexts.map((c) => oracle(doc, c)))
    }), { numRuns: RUNS })
  })

  it('meaning-preserving rewrites are accepted with the same decisions', () => {
    const rewrite = fc.constantFrom('wrap-selectors', 'reverse-keys', 'toggle-form', 'add-schema')
    fc.assert(fc.property(validDoc, rewrite, fc.array(context, { minLength: 5, maxLength: 5 }), (doc, how, contexts) => {
      const rules = (Array.isArray(doc) ? doc : (doc as Raw).rules) as Raw[]
      let changed: unknown
      if (how === 'wrap-selectors') {
        const wrapped = rules.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, ['on', 'subject', 'agent', 'actor', 'recipient', 'audience', 'tool'].includes(k) && typeof v === 'string' ? [v] : v])))
        changed = Array.isArray(doc) ? wrapped : { ...(doc as Raw), rules: wrapped }
      } else if (how === 'reverse-keys') {
        const rev = (o: Raw) => Object.fromEntries(Object.entries(o).reverse())
        changed = Array.isArray(doc) ? rules.map(rev) : rev({ ...(doc as Raw), rules: rules.map(rev) })
      } else if (how === 'toggle-form') {
        changed = Array.isArray(doc) ? { rules: doc } : (doc as Raw).defaultEffect === undefined ? rules : doc
      } else {
        changed = Array.isArray(doc) ? { $schema: './policy.schema.json', version: 1, rules: doc } : { ...(doc as Raw), $schema: 'x', version: 1 }
      }
      expect(issuesOf(changed)).toBeUndefined()
      expect(decide(changed, contexts)).toEqual(decide(doc, contexts))
    }), { numRuns: RUNS })
  })

  it('an unknown member anywhere it could be mistaken for one is refused at its pointer', () => {
    fc.assert(fc.property(validDoc, fc.nat(), unknownName, fc.jsonValue(), (doc, pick, name, value) => {
      const targets = closedObjects(doc)
      if (targets.length === 0) return
      const path = targets[pick % targets.length] as Path
      const mutated = clone(doc)
      // an own member even when it is called __proto__ (as JSON.parse makes it)
      Object.defineProperty(getAt(mutated, path) as Raw, name, { value, enumerable: true, configurable: true, writable: true })
      expect(issuesOf(mutated)).toContain(pointer([...path, name]))
    }), { numRuns: RUNS })
  })

  it('a misspelt member (one edit away) is refused at its pointer, with no other meaning taken from it', () => {
    const edit = fc.tuple(fc.nat(), fc.constantFrom('swap', 'drop', 'double', 'upper'))
    fc.assert(fc.property(validDoc, fc.nat(), edit, (doc, pick, [at, how]) => {
      const targets = closedObjects(doc).filter((p) => Object.keys(getAt(doc, p) as Raw).length > 0)
      if (targets.length === 0) return
      const path = targets[pick % targets.length] as Path
      const obj = getAt(doc, path) as Raw
      const keys = Object.keys(obj)
      const key = keys[at % keys.length] as string
      const i = at % key.length
      const typo = how === 'swap' && key.length > 1 ? key.slice(0, Math.max(0, i - 1)) + (key[i] ?? '') + (key[i - 1] ?? '') + key.slice(i + 1)
        : how === 'drop' ? key.slice(0, i) + key.slice(i + 1)
          : how === 'double' ? key.slice(0, i) + (key[i] ?? '') + key.slice(i)
            : key.toUpperCase()
      if (typo === key || KNOWN.has(typo) || typo === '') return
      const mutated = clone(doc)
      const target = getAt(mutated, path) as Raw
      target[typo] = target[key]
      delete target[key]
      expect(issuesOf(mutated)).toContain(pointer([...path, typo]))
    }), { numRuns: RUNS })
  })

  it('a required member removed, or a value of the wrong type, is refused at (or under) its pointer', () => {
    const bad = fc.constantFrom<unknown>([], '', 0, -1, null, true, {}, [[]], 'block', ' ')
    fc.assert(fc.property(validDoc, fc.nat(), bad, fc.boolean(), (doc, pick, value, remove) => {
      const all = nodes(doc).filter(({ path }) => path.length > 0 && typeof path[path.length - 1] === 'string' && !['$schema'].includes(path[path.length - 1] as string))
      // values whose every replacement by `bad` changes validity: members of rules, conditions and the document, not free JSON inside `exact`
      const candidates = all.filter(({ path }) => !path.some((p, i) => p === 'value' && path[i - 1] !== undefined && (getAt(doc, path.slice(0, i)) as Raw).type === 'exact'))
        .filter(({ path }) => !(path.at(-2) === 'when'))
      if (candidates.length === 0) return
      const { path } = candidates[pick % candidates.length] as { path: Path }
      const key = path[path.length - 1] as string
      const mutated = clone(doc)
      if (remove) {
        if (!['effect', 'type', 'value', 'values', 'prefix', 'rules'].includes(key)) return
        delete (getAt(mutated, path.slice(0, -1)) as Raw)[key]
      } else {
        // replacements of the member's own type may be valid (another tool name, another bound): the
        // other properties cover those; here only values of the wrong type or empty ones
        if (['subject', 'agent', 'actor', 'recipient', 'audience', 'tool', 'id', 'reason', 'prefix'].includes(key) && typeof value === 'string' && value !== '') return
        if (key === 'values' && Array.isArray(value) && value.length > 0) return
        if (key === 'rules' && Array.isArray(value) && value.length === 0) return // an empty policy is a policy
        if (key === 'value' && typeof value === 'number') return
        if (JSON.stringify(getAt(doc, path)) === JSON.stringify(value)) return // not a change
        setAt(mutated, path, value)
      }
      const issues = issuesOf(mutated)
      expect(issues, JSON.stringify(mutated)).toBeDefined()
      const p = pointer(remove ? path.slice(0, -1) : path)
      expect(issues?.some((q) => q === p || q.startsWith(`${p}/`) || (remove && q === pointer(path.slice(0, -1))) || (key === 'rules' && q === '')), `${p} in ${issues?.join(' ')}`).toBe(true)
    }), { numRuns: RUNS })
  })

  it('any JSON anywhere: refused with POLICY_INVALID or accepted with the meaning the oracle reads; never a crash', () => {
    fc.assert(fc.property(validDoc, fc.nat(), fc.jsonValue({ maxDepth: 3 }), fc.array(context, { minLength: 4, maxLength: 4 }), (doc, pick, value, contexts) => {
      const all = nodes(doc)
      const { path } = all[pick % all.length] as { path: Path }
      const mutated = setAt(clone(doc), path, value)
      let r: ReturnType<typeof validatePolicyDocument>
      try {
        r = validatePolicyDocument(mutated)
      } catch (err) {
        throw new Error(`validator crashed on ${JSON.stringify(mutated)}: ${String(err)}`)
      }
      if (!r.ok) {
        expect(() => createRulePolicy(mutated as never)).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }))
        try {
          createRulePolicy(mutated as never)
        } catch (err) {
          expect(MandateError.is(err)).toBe(true)
        }
        return
      }
      const expected = contexts.map((c) => oracle(mutated, c))
      expect(expected.includes(INVALID as never), `validator accepted what the oracle cannot read: ${JSON.stringify(mutated)}`).toBe(false)
      expect(decide(mutated, contexts)).toEqual(expected)
    }), { numRuns: RUNS * 2 })
  })
})

