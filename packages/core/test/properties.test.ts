// Property-based tests (fast-check): narrowing never widens, widenings are always refused, the strict
// parsers agree with the lenient ones where they should and refuse where they must.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { base64urlnopad } from '@scure/base'
import {
  assertArgumentsSatisfy, audienceList, b64uDecode, b64uEncode, buildRootMandate, constraintNarrows, defaultConstraintRegistry, Ed25519Key,
  MandateError, narrowMandate, parseScope, parseStrictJson, patternCovers, randomId, signMandate, toolMatches, verifyMandate, createLocalKeySet,
  type Constraint, type JsonValue, type MandateClaims, type NarrowingRequest, type ToolGrant,
} from '@mandate/core'
import { ISSUER } from './helpers.js'

const authority = Ed25519Key.generate()
const keys = createLocalKeySet({ keys: [authority.publicJwk] })
const holder = Ed25519Key.generate()
const delegate = Ed25519Key.generate()
const NOW = 1_800_000_000

const SCOPES = ['read', 'write', 'admin', 'Read', 'a:b']
const AUDS = ['https://a.example', 'https://b.example/mcp', 'https://c.example']
const PATTERNS = ['*', 'files.*', 'files.read', 'files.sub.*', 'files.sub.x', 'billing.refund', 'billing.refund_all', 'billing.*', 'filesx.read', 'files']
const NAMES = ['files.read', 'files.write', 'files.sub.x', 'files.sub.y.z', 'billing.refund', 'billing.refund_all', 'filesx.read', 'files', 'admin.x']
const PATHS = ['/data', '/data/x', '/data/sub/y', '/database', '/data/../etc', '/etc/passwd', '/data/sub', '/']

const constraintArb: fc.Arbitrary<Constraint> = fc.oneof(
  fc.integer({ min: -5, max: 20 }).map((value) => ({ type: 'max' as const, value })),
  fc.integer({ min: -5, max: 20 }).map((value) => ({ type: 'min' as const, value })),
  fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }).map((values) => ({ type: 'enum' as const, values })),
  fc.integer({ min: 0, max: 6 }).map((value) => ({ type: 'exact' as const, value })),
)
const pathConstraintArb: fc.Arbitrary<Constraint> = fc.constantFrom('/', '/data', '/data/sub', '/database', '/etc').map((prefix) => ({ type: 'path_prefix' as const, prefix }))
const grantArb = (auds: string[]): fc.Arbitrary<ToolGrant> =>
  fc.record({
    tools: fc.uniqueArray(fc.constantFrom(...PATTERNS), { minLength: 1, maxLength: 3 }),
    n: fc.option(constraintArb, { nil: undefined }),
    p: fc.option(pathConstraintArb, { nil: undefined }),
    locations: fc.option(fc.subarray(auds, { minLength: 1 }), { nil: undefined }),
  }).map(({ tools, n, p, locations }) => {
    const constraints: Record<string, Constraint> = {}
    if (n) constraints.n = n
    if (p) constraints.p = p
    return { type: 'tool_access' as const, tools, ...(Object.keys(constraints).length ? { constraints } : {}), ...(locations ? { locations } : {}) }
  })

const parentArb = fc.record({
  auds: fc.subarray(AUDS, { minLength: 1 }),
  scopes: fc.subarray(SCOPES),
  maxDepth: fc.integer({ min: 0, max: 5 }),
  expiresIn: fc.integer({ min: 60, max: 7200 }),
  budget: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  maxUses: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
}).chain((p) => fc.record({ p: fc.constant(p), grants: fc.array(grantArb(p.auds), { minLength: 1, maxLength: 3 }) }))
  .map(({ p, grants }) => {
    const claims = buildRootMandate(
      { subject: 'alice', agent: { id: holder.did, jkt: holder.jkt }, audiences: p.auds, scopes: p.scopes, tools: grants, maxDepth: p.maxDepth, expiresIn: p.expiresIn, ...(p.budget !== undefined ? { budget: { amount: p.budget, unit: 'USD' } } : {}), ...(p.maxUses !== undefined ? { maxUses: p.maxUses } : {}) },
      { issuer: ISSUER, now: NOW, jti: randomId(), txn: randomId() },
    )
    return { claims, token: signMandate(claims, authority) }
  })

const argsArb = fc.record({ n: fc.option(fc.integer({ min: -6, max: 22 }), { nil: undefined }), p: fc.option(fc.constantFrom(...PATHS), { nil: undefined }) })
  .map(({ n, p }) => ({ ...(n !== undefined ? { n } : {}), ...(p !== undefined ? { p } : {}) }))

/** Independent semantic check: may this mandate call `tool` with `args` at `aud`? */
function allows(m: MandateClaims, aud: string, tool: string, args: JsonValue): boolean {
  if (!audienceList(m.aud).includes(aud)) return false
  if (m.call && (m.call.tool !== tool)) return false
  return m.authorization_details.some((g) => {
    if (g.locations && !g.locations.includes(aud)) return false
    if (!g.tools.some((p) => toolMatches(p, tool))) return false
    try {
      assertArgumentsSatisfy(g.constraints, args)
      return true
    } catch {
      return false
    }
  })
}

const requestArb: fc.Arbitrary<NarrowingRequest> = fc.oneof(
  fc.record({
    audiences: fc.option(fc.subarray(AUDS, { minLength: 1 }), { nil: undefined, freq: 2 }),
    scopes: fc.option(fc.subarray(SCOPES), { nil: undefined, freq: 2 }),
    tools: fc.option(fc.array(grantArb(AUDS), { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 2 }),
    expiresIn: fc.option(fc.integer({ min: -1, max: 8000 }), { nil: undefined, freq: 2 }),
    maxDepth: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined, freq: 2 }),
    budget: fc.option(fc.record({ amount: fc.integer({ min: 0, max: 120 }), unit: fc.constantFrom('USD', 'EUR') }), { nil: undefined, freq: 2 }),
    maxUses: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined, freq: 2 }),
  }).map((r) => {
    const out: Record<string, unknown> = { kind: 'delegation', actor: { id: delegate.did, jkt: delegate.jkt } }
    for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = v
    return out as unknown as NarrowingRequest
  }),
  fc.record({ audience: fc.constantFrom(...AUDS), tool: fc.constantFrom(...NAMES), arguments: argsArb, expiresIn: fc.option(fc.integer({ min: 1, max: 90 }), { nil: undefined }) }).map((r) => {
    const out: Record<string, unknown> = { kind: 'call', audience: r.audience, tool: r.tool, arguments: r.arguments }
    if (r.expiresIn !== undefined) out.expiresIn = r.expiresIn
    return out as unknown as NarrowingRequest
  }),
)

const ctx = (parentToken: string) => ({ issuer: ISSUER, now: NOW + 10, jti: randomId(), parentToken, caller: { id: holder.did, jkt: holder.jkt } })

describe('narrowMandate: any child it produces is a subset of its parent, and verifies', () => {
  it('holds for random parents and random (legal or not) requests', async () => {
    let produced = 0
    await fc.assert(
      fc.asyncProperty(parentArb, requestArb, fc.array(fc.tuple(fc.constantFrom(...NAMES), argsArb), { minLength: 8, maxLength: 8 }), async (parent, req, probes) => {
        let child: MandateClaims
        try {
          child = narrowMandate(parent.claims, req, ctx(parent.token))
        } catch (err) {
          expect(MandateError.is(err)).toBe(true)
          expect((err as MandateError).code).toMatch(/^(NARROWING_|SCOPE_MALFORMED|CONSTRAINT_|CLAIM_INVALID)/)
          return
        }
        produced++
        const p = parent.claims
        // identity of the task never changes
        expect([child.sub, child.txn, child.iss]).toEqual([p.sub, p.txn, p.iss])
        // scopes and audiences
        const ps = new Set(p.scope ? parseScope(p.scope) : [])
        for (const s of child.scope ? parseScope(child.scope) : []) expect(ps.has(s)).toBe(true)
        for (const a of audienceList(child.aud)) expect(audienceList(p.aud)).toContain(a)
        // time
        expect(child.exp).toBeLessThanOrEqual(p.exp)
        expect(child.nbf).toBeGreaterThanOrEqual(p.nbf)
        // depth
        if (child.call) {
          expect(child.delegation.depth).toBe(p.delegation.depth)
          expect(child.max_uses).toBe(1)
          expect(child.exp - child.iat).toBeLessThanOrEqual(60)
        } else {
          expect(child.delegation.depth).toBe(p.delegation.depth + 1)
          expect(child.act).toEqual({ sub: delegate.did, act: p.act })
          expect(child.cnf.jkt).toBe(delegate.jkt)
        }
        expect(child.delegation.max_depth).toBeLessThanOrEqual(p.delegation.max_depth)
        expect(child.delegation.depth).toBeLessThanOrEqual(child.delegation.max_depth)
        // budget and uses
        if (p.budget) {
          expect(child.budget?.unit).toBe(p.budget.unit)
          expect(child.budget?.amount).toBeLessThanOrEqual(p.budget.amount)
        }
        if (p.max_uses !== undefined) expect(child.max_uses).toBeLessThanOrEqual(p.max_uses)
        // tools and constraints, semantically: whatever the child allows, the parent allows
        for (const aud of AUDS) {
          for (const [tool, args] of probes) if (allows(child, aud, tool, args)) expect(allows(p, aud, tool, args)).toBe(true)
        }
        if (child.call) {
          const r = req as Extract<NarrowingRequest, { kind: 'call' }>
          expect(allows(p, r.audience, r.tool, r.arguments as JsonValue)).toBe(true)
        }
        // and it is signable and verifiable
        const v = await verifyMandate(signMandate(child, authority), { issuer: ISSUER, keys, now: NOW + 10 })
        expect(v.claims).toEqual(JSON.parse(JSON.stringify(child)))
      }),
      { numRuns: 1000 },
    )
    expect(produced).toBeGreaterThan(15) // the generator reaches the success path, not only refusals
  })
})

describe('random widenings are always refused with their code', () => {
  const widening = fc.oneof(
    fc.constant(['scope', 'NARROWING_SCOPE'] as const),
    fc.constant(['audience', 'NARROWING_AUDIENCE'] as const),
    fc.constant(['tool', 'NARROWING_TOOL'] as const),
    fc.constant(['constraint', 'NARROWING_CONSTRAINT'] as const),
    fc.constant(['time', 'NARROWING_TIME'] as const),
    fc.constant(['depth', 'NARROWING_DEPTH'] as const),
    fc.constant(['budget', 'NARROWING_BUDGET'] as const),
    fc.constant(['uses', 'NARROWING_BUDGET'] as const),
  )
  it('holds', () => {
    fc.assert(
      fc.property(parentArb, widening, fc.integer({ min: 1, max: 1000 }), (parent, [kind, code], delta) => {
        const p = parent.claims
        const base = { kind: 'delegation' as const, actor: { id: delegate.did, jkt: delegate.jkt } }
        fc.pre(p.delegation.max_depth >= 1)
        const g = p.authorization_details[0] as ToolGrant
        let req: NarrowingRequest
        switch (kind) {
          case 'scope': req = { ...base, scopes: [...(p.scope ? parseScope(p.scope) : []), `x${delta}`] }; break
          case 'audience': req = { ...base, audiences: [...audienceList(p.aud), `https://new${delta}.example`] }; break
          case 'tool': fc.pre(!p.authorization_details.some((x) => x.tools.includes('*'))); req = { ...base, tools: [{ type: 'tool_access', tools: [`zz${delta}.*`] }] }; break
          case 'constraint': {
            const n = g.constraints?.n
            // with another parent grant the wider child could be legitimately covered by it
            fc.pre(p.authorization_details.length === 1 && (n?.type === 'max' || n?.type === 'min'))
            const wider: Constraint = n.type === 'max' ? { type: 'max', value: n.value + delta } : { type: 'min', value: n.value - delta }
            req = { ...base, tools: [{ ...g, constraints: { ...g.constraints, n: wider } }] }
            break
          }
          case 'time': req = { ...base, expiresIn: p.exp - (NOW + 10) + delta }; break
          case 'depth': req = { ...base, maxDepth: p.delegation.max_depth + delta }; break
          case 'budget': fc.pre(p.budget !== undefined); req = { ...base, budget: { amount: (p.budget?.amount ?? 0) + delta, unit: 'USD' } }; break
          case 'uses': fc.pre(p.max_uses !== undefined); req = { ...base, maxUses: (p.max_uses ?? 0) + delta }; break
        }
        let caught: unknown
        try {
          narrowMandate(p, req, ctx(parent.token))
        } catch (err) {
          caught = err
        }
        expect(MandateError.is(caught)).toBe(true)
        expect((caught as MandateError).code).toBe(code)
      }),
      { numRuns: 400 },
    )
  })
})

describe('constraint comparators are sound', () => {
  const valueArb: fc.Arbitrary<JsonValue> = fc.oneof(fc.integer({ min: -8, max: 25 }), fc.constantFrom(...PATHS), fc.constant(null))
  it('constraintNarrows(parent, child) and child matches v ⇒ parent matches v', () => {
    const anyC = fc.oneof(constraintArb, pathConstraintArb)
    fc.assert(
      fc.property(anyC, anyC, valueArb, (pc, cc, v) => {
        if (!constraintNarrows(pc, cc)) return
        const cm = defaultConstraintRegistry.get(cc.type)?.matches(cc, v)
        if (cm) expect(defaultConstraintRegistry.get(pc.type)?.matches(pc, v)).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
  it('path_prefix never matches a path with ., .., %, backslash or an empty segment', () => {
    const seg = fc.oneof(fc.constantFrom('data', 'sub', 'x', '.', '..', '', '%2f', 'a\\b', '%2e%2e'), fc.stringMatching(/^[a-z.%\\]{0,4}$/))
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 5 }), (segs) => {
        const path = `/${segs.join('/')}`
        const bad = segs.some((s, i) => s === '.' || s === '..' || /[%\\]/.test(s) || (s === '' && i < segs.length - 1))
        const m = defaultConstraintRegistry.get('path_prefix')?.matches({ type: 'path_prefix', prefix: '/' } as { type: string }, path)
        if (bad) expect(m).toBe(false)
      }),
      { numRuns: 2000 },
    )
  })
})

describe('tool patterns match on segment boundaries', () => {
  const segment = fc.stringMatching(/^[a-z_]{1,4}$/)
  const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('.'))
  const pattern = fc.oneof(fc.constant('*'), name, name.map((n) => `${n}.*`))
  it('prefix.* matches exactly the names strictly below prefix', () => {
    fc.assert(
      fc.property(name, name, (prefix, n) => {
        const below = n.startsWith(`${prefix}.`)
        expect(toolMatches(`${prefix}.*`, n)).toBe(below)
        expect(toolMatches(`${prefix}.*`, prefix)).toBe(false)
        expect(toolMatches(prefix, n)).toBe(prefix === n)
      }),
      { numRuns: 2000 },
    )
  })
  it('patternCovers is sound: covers(p, c) and c matches n ⇒ p matches n', () => {
    fc.assert(
      fc.property(pattern, pattern, name, (p, c, n) => {
        if (patternCovers(p, c) && toolMatches(c, n)) expect(toolMatches(p, n)).toBe(true)
      }),
      { numRuns: 5000 },
    )
  })
})

describe('parseStrictJson', () => {
  it('agrees with JSON.parse on valid JSON with unique keys (any whitespace)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.constantFrom(undefined, 1, '\t'), (v, space) => {
        const text = JSON.stringify(v, null, space)
        expect(parseStrictJson(text, { maxDepth: 24, maxArray: 10_000, maxMembers: 10_000 })).toEqual(JSON.parse(text))
      }),
      { numRuns: 1000 },
    )
  })
  it('refuses any duplicated member name, at any depth', () => {
    const obj = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 6 })
    fc.assert(
      fc.property(obj, fc.nat(), fc.jsonValue({ maxDepth: 1 }), fc.boolean(), (o, i, dupValue, nest) => {
        const keys = Object.keys(o)
        const k = keys[i % keys.length] as string
        const inner = `${JSON.stringify(o).slice(0, -1)},${JSON.stringify(k)}:${JSON.stringify(dupValue)}}`
        const text = nest ? `{"outer":[1,${inner}]}` : inner
        let caught: unknown
        try {
          parseStrictJson(text)
        } catch (err) {
          caught = err
        }
        expect((caught as MandateError).code).toBe('JSON_DUPLICATE_MEMBER')
      }),
      { numRuns: 1000 },
    )
  })
  it('refuses lone surrogates, raw or escaped, and never throws anything but MandateError', () => {
    expect(() => parseStrictJson('"\\ud800"')).toThrow(MandateError)
    expect(() => parseStrictJson('"\ud800"')).toThrow(MandateError)
    expect(() => parseStrictJson('"\\udc00\\ud800"')).toThrow(MandateError)
    expect(parseStrictJson('"\\ud83d\\ude00\\\\ud800"')).toBe('😀\\ud800')
    fc.assert(
      fc.property(fc.string({ maxLength: 60, unit: 'binary' }), (s) => {
        try {
          const v = parseStrictJson(s)
          expect(v).toEqual(JSON.parse(s))
        } catch (err) {
          expect(MandateError.is(err)).toBe(true)
        }
      }),
      { numRuns: 3000 },
    )
  })
})

describe('b64uDecode strictness', () => {
  const reference = (s: string): boolean => {
    if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return false
    try {
      return base64urlnopad.encode(base64urlnopad.decode(s)) === s
    } catch {
      return false
    }
  }
  it('round-trips every byte string', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      expect(b64uDecode(b64uEncode(b))).toEqual(b)
    }), { numRuns: 1000 })
  })
  it('accepts exactly the canonical unpadded base64url strings', () => {
    const chars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .\n'.split(''))
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 24 }).map((a) => a.join('')), (s) => {
        let ok = true
        let out: Uint8Array | undefined
        try {
          out = b64uDecode(s)
        } catch (err) {
          ok = false
          expect((err as MandateError).code).toBe('TOKEN_MALFORMED')
        }
        expect(ok).toBe(reference(s))
        if (ok) expect(out).toEqual(base64urlnopad.decode(s))
      }),
      { numRuns: 3000 },
    )
  })
})

describe('per_call never sheds (property, an oracle of the guard rule: any applicable per_call grant covering the tool demands a call credential)', () => {
  // the oracle's own matcher, from the pattern rule (`*`, a name, or `prefix.*` on a segment boundary)
  const matches = (p: string, name: string) => p === '*' || (p.endsWith('.*') ? name.startsWith(p.slice(0, -1)) && name.length > p.length - 1 : p === name)
  const applies = (g: ToolGrant, aud: string, auds: readonly string[]) => (g.locations ?? auds).includes(aud)
  const granted = (gs: readonly ToolGrant[], auds: readonly string[], aud: string, t: string) => gs.some((g) => applies(g, aud, auds) && g.tools.some((p) => matches(p, t)))
  const perCall = (gs: readonly ToolGrant[], auds: readonly string[], aud: string, t: string) => gs.some((g) => g.per_call === true && applies(g, aud, auds) && g.tools.some((p) => matches(p, t)))
  const marked = (auds: string[]) => grantArb(auds).chain((g) => fc.boolean().map((pc) => (pc ? { ...g, per_call: true as const } : g)))
  const rootArb = fc.subarray(AUDS, { minLength: 1 }).chain((auds) => fc.record({ auds: fc.constant(auds), grants: fc.array(marked(auds), { minLength: 1, maxLength: 3 }) }))
    .map(({ auds, grants }) => {
      const claims = buildRootMandate({ subject: 'alice', agent: { id: holder.did, jkt: holder.jkt }, audiences: auds, tools: grants, maxDepth: 2 }, { issuer: ISSUER, now: NOW, jti: randomId(), txn: randomId() })
      return { claims, token: signMandate(claims, authority) }
    })
  it('a delegation or audience child accepted by narrowMandate demands a call credential for every tool its parent did', () => {
    let accepted = 0
    fc.assert(fc.property(rootArb, fc.boolean(), fc.option(fc.array(marked(AUDS), { minLength: 1, maxLength: 3 }), { nil: undefined }), fc.constantFrom(...AUDS), (root, asAudience, tools, aud) => {
      const req: NarrowingRequest = asAudience
        ? { kind: 'audience', audience: aud, ...(tools ? { tools } : {}) }
        : { kind: 'delegation', actor: { id: delegate.did, jkt: delegate.jkt }, ...(tools ? { tools } : {}) }
      let child: MandateClaims
      try {
        child = narrowMandate(root.claims, req, { issuer: ISSUER, now: NOW, jti: randomId(), parentToken: root.token, caller: { id: holder.did, jkt: holder.jkt } })
      } catch (err) {
        expect(MandateError.is(err)).toBe(true)
        return
      }
      accepted++
      const parentAuds = audienceList(root.claims.aud)
      const childAuds = audienceList(child.aud)
      for (const a of childAuds) {
        for (const t of NAMES) {
          if (!granted(child.authorization_details, childAuds, a, t)) continue
          expect(granted(root.claims.authorization_details, parentAuds, a, t)).toBe(true)
          if (perCall(root.claims.authorization_details, parentAuds, a, t)) expect(perCall(child.authorization_details, childAuds, a, t), `${t} at ${a}`).toBe(true)
        }
      }
    }), { numRuns: 3000 })
    expect(accepted).toBeGreaterThan(100)
  })
})
