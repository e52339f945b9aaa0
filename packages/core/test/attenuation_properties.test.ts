// Property-based tests (fast-check) for offline attenuation: any random sequence of requests is either
// refused by the holder or yields a chain the verifier accepts whose last link is a narrowing of the root
// on every dimension; and any random change to a hop's claims, re-signed by the real holder, is refused.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  assertArgumentsSatisfy, attenuateMandate, audienceList, buildRootMandate, createLocalKeySet, Ed25519Key, MandateError, parseScope,
  randomId, signMandate, toolMatches, verifyOfflineChain, b64uEncode, HOP_TYP,
  type Constraint, type JsonValue, type MandateClaims, type NarrowingRequest, type ToolGrant,
} from '@mandate/core'
import { ISSUER } from './helpers.js'

const authority = Ed25519Key.generate()
const keys = createLocalKeySet({ keys: [authority.publicJwk] })
const agents = [Ed25519Key.generate(), Ed25519Key.generate(), Ed25519Key.generate(), Ed25519Key.generate()]
const NOW = 1_800_000_000

const SCOPES = ['read', 'write', 'admin']
const AUDS = ['https://a.example', 'https://b.example/mcp']
const PATTERNS = ['*', 'files.*', 'files.read', 'billing.refund', 'billing.*']
const NAMES = ['files.read', 'files.write', 'billing.refund', 'billing.void', 'admin.x']
const PATHS = ['/data', '/data/x', '/database', '/etc/passwd', '/']

const constraintArb: fc.Arbitrary<Constraint> = fc.oneof(
  fc.integer({ min: 0, max: 20 }).map((value) => ({ type: 'max' as const, value })),
  fc.uniqueArray(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }).map((values) => ({ type: 'enum' as const, values })),
)
const pathArb: fc.Arbitrary<Constraint> = fc.constantFrom('/', '/data', '/data/x').map((prefix) => ({ type: 'path_prefix' as const, prefix }))
const grantArb = (auds: string[]): fc.Arbitrary<ToolGrant> =>
  fc.record({
    tools: fc.uniqueArray(fc.constantFrom(...PATTERNS), { minLength: 1, maxLength: 2 }),
    n: fc.option(constraintArb, { nil: undefined }),
    p: fc.option(pathArb, { nil: undefined }),
    locations: fc.option(fc.subarray(auds, { minLength: 1 }), { nil: undefined }),
    perCall: fc.boolean(),
  }).map(({ tools, n, p, locations, perCall }) => {
    const constraints: Record<string, Constraint> = {}
    if (n) constraints.n = n
    if (p) constraints.p = p
    return {
      type: 'tool_access' as const, tools,
      ...(Object.keys(constraints).length ? { constraints } : {}), ...(locations ? { locations } : {}), ...(perCall ? { per_call: true as const } : {}),
    }
  })

const rootArb = fc.record({
  auds: fc.subarray(AUDS, { minLength: 1 }),
  scopes: fc.subarray(SCOPES),
  maxDepth: fc.integer({ min: 0, max: 4 }),
  expiresIn: fc.integer({ min: 120, max: 7200 }),
  budget: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  maxUses: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
  maxHops: fc.integer({ min: 1, max: 4 }),
}).chain((p) => fc.record({ p: fc.constant(p), grants: fc.array(grantArb(p.auds), { minLength: 1, maxLength: 3 }) }))
  .map(({ p, grants }) => {
    const claims = buildRootMandate(
      {
        subject: 'alice', agent: { id: agents[0]!.did, jkt: agents[0]!.jkt }, purpose: 'p', audiences: p.auds, scopes: p.scopes, tools: grants,
        maxDepth: p.maxDepth, expiresIn: p.expiresIn, offline: { maxHops: p.maxHops },
        ...(p.budget !== undefined ? { budget: { amount: p.budget, unit: 'USD' } } : {}), ...(p.maxUses !== undefined ? { maxUses: p.maxUses } : {}),
      },
      { issuer: ISSUER, now: NOW, jti: randomId(), txn: randomId() },
    )
    return { claims, token: signMandate(claims, authority) }
  })

const argsArb = fc.record({ n: fc.option(fc.integer({ min: 0, max: 22 }), { nil: undefined }), p: fc.option(fc.constantFrom(...PATHS), { nil: undefined }) })
  .map(({ n, p }) => ({ ...(n !== undefined ? { n } : {}), ...(p !== undefined ? { p } : {}) }))

// requests with fields drawn from both inside and outside the root's bounds; each field is usually absent
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: arb, weight: 1 })
const step = fc.record({
  kind: fc.constantFrom('delegation', 'delegation', 'audience', 'call'),
  to: fc.oneof({ arbitrary: fc.integer({ min: 1, max: agents.length - 1 }), weight: 4 }, { arbitrary: fc.constant(0), weight: 1 }),
  auds: maybe(fc.subarray([...AUDS, 'https://evil.example'], { minLength: 1 })),
  scopes: maybe(fc.subarray([...SCOPES, 'root'])),
  tools: maybe(fc.array(grantArb([...AUDS, 'https://evil.example']), { minLength: 1, maxLength: 2 })),
  expiresIn: maybe(fc.integer({ min: 1, max: 9000 })),
  maxDepth: maybe(fc.integer({ min: 0, max: 5 })),
  budget: maybe(fc.record({ amount: fc.integer({ min: 0, max: 150 }), unit: fc.constantFrom('USD', 'USD', 'EUR') })),
  maxUses: maybe(fc.integer({ min: 1, max: 12 })),
  offlineHops: maybe(fc.integer({ min: 0, max: 5 })),
  tool: fc.constantFrom(...NAMES),
  args: argsArb,
  dt: fc.integer({ min: 0, max: 200 }),
})
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never

function requestFor(s: Step): NarrowingRequest {
  const opt = <K extends string, V>(k: K, v: V | undefined) => (v === undefined ? {} : { [k]: v })
  if (s.kind === 'call') return { kind: 'call', audience: (s.auds ?? AUDS)[0] as string, tool: s.tool, arguments: s.args, ...opt('scopes', s.scopes), ...opt('expiresIn', s.expiresIn) }
  if (s.kind === 'audience') return { kind: 'audience', audience: (s.auds ?? AUDS)[0] as string, ...opt('tools', s.tools), ...opt('scopes', s.scopes), ...opt('expiresIn', s.expiresIn) }
  const to = agents[s.to] as Ed25519Key
  return {
    kind: 'delegation', actor: { id: to.did, jkt: to.jkt },
    ...opt('audiences', s.auds), ...opt('scopes', s.scopes), ...opt('tools', s.tools), ...opt('expiresIn', s.expiresIn), ...opt('maxDepth', s.maxDepth),
    ...opt('budget', s.budget), ...opt('maxUses', s.maxUses), ...opt('offlineHops', s.offlineHops),
  }
}

/** May `m` call `tool` with `args` at `aud` — and without an Authority-minted credential? (independent of narrow.ts) */
function allows(m: MandateClaims, aud: string, tool: string, args: JsonValue, withoutAuthority: boolean): boolean {
  if (!audienceList(m.aud).includes(aud)) return false
  if (m.call && m.call.tool !== tool) return false
  return m.authorization_details.some((g) => {
    if (withoutAuthority && g.per_call) return false
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

const PROBE_ARGS: JsonValue[] = [{}, { n: 0 }, { n: 3 }, { n: 15 }, { n: 21 }, { p: '/data/x/y' }, { p: '/etc/passwd' }, { n: 2, p: '/data/x' }, { n: 4, p: '/' }]

function assertNarrowing(last: MandateClaims, root: MandateClaims): void {
  expect(last.iss).toBe(root.iss)
  expect(last.sub).toBe(root.sub)
  expect(last.txn).toBe(root.txn)
  expect(last.purpose).toBe(root.purpose)
  const rootScopes = root.scope ? parseScope(root.scope) : []
  for (const s of last.scope ? parseScope(last.scope) : []) expect(rootScopes).toContain(s)
  for (const a of audienceList(last.aud)) expect(audienceList(root.aud)).toContain(a)
  expect(last.exp).toBeLessThanOrEqual(root.exp)
  expect(last.nbf).toBeGreaterThanOrEqual(root.nbf)
  expect(last.delegation.max_depth).toBeLessThanOrEqual(root.delegation.max_depth)
  expect(last.delegation.ancestors[0]).toBe(root.jti)
  if (root.budget) expect(last.budget?.unit).toBe(root.budget.unit)
  if (root.budget) expect(last.budget?.amount).toBeLessThanOrEqual(root.budget.amount)
  if (root.max_uses !== undefined) expect(last.max_uses).toBeLessThanOrEqual(root.max_uses)
  expect(last.offline?.max_hops ?? 0).toBeLessThan(root.offline?.max_hops ?? 1)
  expect(last.approval).toBeUndefined()
  for (const aud of AUDS) for (const tool of NAMES) for (const args of PROBE_ARGS) {
    if (allows(last, aud, tool, args, false)) expect(allows(root, aud, tool, args, false), `${tool} at ${aud}`).toBe(true)
    if (allows(last, aud, tool, args, true)) expect(allows(root, aud, tool, args, true), `${tool} at ${aud} without the Authority`).toBe(true)
  }
}

describe('offline attenuation properties', () => {
  it('any random request sequence is refused by the holder or gives a chain that verifies and only narrows', async () => {
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(rootArb, fc.array(step, { minLength: 1, maxLength: 3 }), async (root, steps) => {
        let presented = root.token
        let holder = agents[0] as Ed25519Key
        let now = NOW
        let hops = 0
        let at = now
        for (const s of steps) {
          now += s.dt
          const req = requestFor(s)
          try {
            presented = attenuateMandate(presented, holder, req, { now })
            at = now
          } catch (err) {
            expect(MandateError.is(err), String(err)).toBe(true)
            break
          }
          hops++
          if (req.kind === 'delegation') holder = agents[s.to] as Ed25519Key
        }
        if (hops === 0) return
        accepted++
        const v = await verifyOfflineChain(presented, { issuer: ISSUER, keys, now: at })
        expect(v.hops).toHaveLength(hops)
        expect(v.holderJkt).toBe(holder.jkt)
        assertNarrowing(v.claims, root.claims)
      }),
      { numRuns: 200 },
    )
    // the generator must reach the interesting part
    expect(accepted).toBeGreaterThan(10)
  })

  // a legitimate hop's claims with one change, re-signed by the real holder: never accepted
  const CLAIMS = ['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti', 'client_id', 'scope', 'act', 'txn', 'purpose', 'authorization_details', 'cnf', 'delegation', 'budget', 'max_uses', 'offline', 'credential', 'call', 'approval', 'extra']
  const valueArb: fc.Arbitrary<unknown> = fc.oneof(
    fc.constantFrom(0, 1, NOW, NOW + 10_000, 'read', 'read write admin', AUDS[0], [AUDS[0], 'https://evil.example'], agents[1]!.did, 'audience', true, null, { max_hops: 1 }, { max_hops: 4 }, { amount: 1000, unit: 'USD' }, 100),
    fc.constantFrom<unknown>([{ type: 'tool_access', tools: ['*'] }], [], { sub: agents[1]!.did, act: { sub: agents[2]!.did } }),
  )
  const nestedArb = fc.constantFrom(
    (h: Record<string, any>, v: unknown) => { h.delegation.max_depth = v },
    (h: Record<string, any>, v: unknown) => { h.delegation.depth = v },
    (h: Record<string, any>, v: unknown) => { h.authorization_details[0].tools = [v] },
    (h: Record<string, any>, v: unknown) => { h.authorization_details[0].constraints = v },
    (h: Record<string, any>, _v: unknown) => { delete h.authorization_details[0].constraints },
    (h: Record<string, any>, _v: unknown) => { delete h.authorization_details[0].per_call },
    (h: Record<string, any>, v: unknown) => { h.authorization_details.push({ type: 'tool_access', tools: [typeof v === 'string' ? v : 'admin.x'] }) },
    (h: Record<string, any>, v: unknown) => { h.cnf = { jkt: typeof v === 'string' ? v : agents[2]!.jkt } },
  )
  it('any one change to a hop, re-signed by the holder, is refused unless it is itself a narrowing', async () => {
    const root = buildRootMandate(
      {
        subject: 'alice', agent: { id: agents[0]!.did, jkt: agents[0]!.jkt }, purpose: 'p', audiences: AUDS, scopes: SCOPES,
        tools: [{ type: 'tool_access', tools: ['files.*'], constraints: { n: { type: 'max', value: 10 } } }, { type: 'tool_access', tools: ['billing.*'], per_call: true }],
        maxDepth: 3, expiresIn: 3600, offline: { maxHops: 3 }, budget: { amount: 50, unit: 'USD' }, maxUses: 5,
      },
      { issuer: ISSUER, now: NOW, jti: randomId(), txn: randomId() },
    )
    const rootToken = signMandate(root, authority)
    const a = agents[0] as Ed25519Key
    const b = agents[1] as Ed25519Key
    const legit = attenuateMandate(rootToken, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt } }, { now: NOW + 5 })
    const original = JSON.parse(Buffer.from(legit.split('~')[1]!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
    const header = b64uEncode(JSON.stringify({ alg: 'EdDSA', typ: HOP_TYP, jwk: { kty: 'OKP', crv: 'Ed25519', x: a.publicJwk.x } }))
    let narrowings = 0
    await fc.assert(
      fc.asyncProperty(fc.oneof(
        fc.record({ top: fc.constantFrom(...CLAIMS), value: fc.option(valueArb, { nil: undefined }) }),
        fc.record({ nested: nestedArb, value: valueArb }),
      ), async (m) => {
        const h = structuredClone(original) as Record<string, any>
        if ('top' in m) {
          if (m.value === undefined) delete h[m.top]
          else h[m.top] = m.value
        } else m.nested(h, m.value)
        if (JSON.stringify(h) === JSON.stringify(original)) return
        const input = `${header}.${b64uEncode(JSON.stringify(h))}`
        const hop = `${input}.${b64uEncode(a.sign(new TextEncoder().encode(input)))}`
        let err: unknown
        try {
          await verifyOfflineChain(`${rootToken}~${hop}`, { issuer: ISSUER, keys, now: NOW + 6 })
        } catch (e) {
          err = e
        }
        if (err === undefined) {
          // accepted: then it was a narrowing the holder could have asked for (e.g. dropping every tool)
          const v = await verifyOfflineChain(`${rootToken}~${hop}`, { issuer: ISSUER, keys, now: NOW + 6 })
          assertNarrowing(v.claims, root)
          narrowings++
        } else expect(MandateError.is(err), String(err)).toBe(true)
      }),
      { numRuns: 300 },
    )
    // only a few changes are narrowings; almost all must be refusals
    expect(narrowings).toBeLessThan(60)
  })
})
