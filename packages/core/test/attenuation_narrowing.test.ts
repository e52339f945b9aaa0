// The claims and narrowing rules behind the call modes (issue #13): the `audience` request kind and
// its credential, per_call grants, the `offline` claim, their strict parsing, and the chain rules and
// lifetime caps that a guard applies whoever signed the token.
import { beforeEach, describe, expect, it } from 'vitest'
import {
  assertChainConsistent, assertLifetimeWithin, buildRootMandate, DEFAULT_LIFETIME_CAPS, Ed25519Key, lifetimeCaps, narrowMandate,
  parseMandateClaims, randomId, signMandate, type JsonObject, type MandateClaims, type NarrowingRequest, type ToolGrant,
} from '@mandate/core'
import { AUD, AUD2, expectCode, ISSUER, TestAuthority } from './helpers.js'

let auth: TestAuthority
let a: Ed25519Key
let b: Ed25519Key

beforeEach(() => {
  auth = new TestAuthority()
  a = Ed25519Key.generate()
  b = Ed25519Key.generate()
})

const narrow = (parent: { token: string; claims: MandateClaims }, holder: Ed25519Key, req: NarrowingRequest, extra: Record<string, unknown> = {}) =>
  narrowMandate(parent.claims, req, { issuer: ISSUER, now: auth.now, jti: randomId(), parentToken: parent.token, caller: { id: holder.did, jkt: holder.jkt }, ...extra })
const signed = (claims: MandateClaims) => ({ token: signMandate(claims, auth.key), claims })
const plain = (claims: MandateClaims) => JSON.parse(JSON.stringify(claims)) as JsonObject

describe('audience request kind → audience credential', () => {
  it('keeps the holder and key, names one audience, inherits the grants for it, cannot delegate', () => {
    const root = auth.root(a, {
      tools: [
        { type: 'tool_access', tools: ['files.*'] },
        { type: 'tool_access', tools: ['billing.refund'], locations: [AUD2] },
        { type: 'tool_access', tools: ['mail.send'], locations: [AUD, AUD2], per_call: true },
      ],
    })
    const cred = narrow(root, a, { kind: 'audience', audience: AUD })
    expect(cred).toMatchObject({
      credential: 'audience', aud: AUD, client_id: a.did, act: { sub: a.did }, cnf: { jkt: a.jkt }, sub: root.claims.sub, txn: root.claims.txn,
      delegation: { depth: 0, max_depth: 0, parent: root.claims.jti, ancestors: [root.claims.jti] },
      budget: root.claims.budget, max_uses: root.claims.max_uses,
    })
    expect(cred.call).toBeUndefined()
    expect(cred.authorization_details).toEqual([
      { type: 'tool_access', tools: ['files.*'] },
      { type: 'tool_access', tools: ['mail.send'], locations: [AUD], per_call: true },
    ])
    expect(cred.exp - cred.iat).toBe(900)
    // it signs and parses (the chain rules accept its shape)
    expect(parseMandateClaims(plain(signed(cred).claims)).credential).toBe('audience')
  })
  it('narrows tools, scopes and lifetime; refuses widening and foreign audiences', () => {
    const root = auth.root(a)
    const cred = narrow(root, a, { kind: 'audience', audience: AUD2, scopes: ['read'], expiresIn: 300, tools: [{ type: 'tool_access', tools: ['files.read'], constraints: { amount: { type: 'max', value: 5 }, path: { type: 'path_prefix', prefix: '/data/x' } } }] })
    expect(cred.scope).toBe('read')
    expect(cred.exp - cred.iat).toBe(300)
    expectCode(() => narrow(root, a, { kind: 'audience', audience: 'https://evil.example/' }), 'NARROWING_AUDIENCE')
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, scopes: ['admin'] }), 'NARROWING_SCOPE')
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, expiresIn: 901 }), 'NARROWING_TIME')
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['shell.exec'] }] }), 'NARROWING_TOOL')
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['files.read'], locations: [AUD2] }] }), 'NARROWING_AUDIENCE')
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, maxDepth: 1 } as unknown as NarrowingRequest), 'NARROWING_CLAIM')
    expectCode(() => narrow(root, b, { kind: 'audience', audience: AUD }), 'NARROWING_CHAIN')
    // the cap is the context's, and never past the parent
    expect(narrow(root, a, { kind: 'audience', audience: AUD }, { maxAudienceLifetime: 120 }).exp - auth.now).toBe(120)
    const short = signed(narrow(root, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, expiresIn: 100 }))
    expect(narrow(short, b, { kind: 'audience', audience: AUD }).exp).toBe(short.claims.exp)
  })
  it('refuses an audience with no tool granted there', () => {
    const root = auth.root(a, { tools: [{ type: 'tool_access', tools: ['files.*'], locations: [AUD2] }] })
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD }), 'NARROWING_TOOL')
  })
  it('is terminal: no delegation, audience, call or offline hop derives from it', () => {
    const root = auth.root(a, { offline: { maxHops: 2 } })
    const cred = signed(narrow(root, a, { kind: 'audience', audience: AUD }))
    expect(cred.claims.offline).toBeUndefined()
    for (const req of [
      { kind: 'delegation', actor: { id: b.did, jkt: b.jkt } },
      { kind: 'audience', audience: AUD },
      { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: '/data/a', amount: 1 } },
    ] as NarrowingRequest[]) expectCode(() => narrow(cred, a, req), 'NARROWING_CHAIN')
  })
})

describe('strict parsing of the new claims', () => {
  const base = () => plain(auth.root(a, { offline: { maxHops: 2 } }).claims)
  it('per_call: only true', () => {
    for (const bad of [false, 'true', 1, null, {}]) {
      const p = base()
      ;((p.authorization_details as JsonObject[])[0] as JsonObject).per_call = bad as never
      expectCode(() => parseMandateClaims(p), 'CLAIM_INVALID')
    }
    const p = base()
    ;((p.authorization_details as JsonObject[])[0] as JsonObject).per_call = true
    expect(parseMandateClaims(p).authorization_details[0]?.per_call).toBe(true)
    const q = base()
    ;((q.authorization_details as JsonObject[])[0] as JsonObject).per_tool = true
    expectCode(() => parseMandateClaims(q), 'CLAIM_INVALID')
  })
  it('credential: only "audience"', () => {
    for (const bad of ['call', 'Audience', true, {}, '']) {
      const p = base()
      delete p.offline
      p.credential = bad as never
      expectCode(() => parseMandateClaims(p), 'CLAIM_INVALID')
    }
  })
  it('offline: exactly { max_hops: 1..8 }', () => {
    for (const bad of [{ max_hops: 0 }, { max_hops: 9 }, { max_hops: 1.5 }, { max_hops: '2' }, { max_hops: 2, extra: 1 }, {}, 2, true, null]) {
      const p = base()
      p.offline = bad as never
      expectCode(() => parseMandateClaims(p), 'CLAIM_INVALID')
    }
    for (const n of [1, 8]) {
      const p = base()
      p.offline = { max_hops: n }
      expect(parseMandateClaims(p).offline).toEqual({ max_hops: n })
    }
  })
  it('buildRootMandate sets offline only for 1..8', () => {
    for (const maxHops of [0, 9, 1.5, Number.NaN]) expectCode(() => auth.root(a, { offline: { maxHops } }), 'NARROWING_CLAIM')
    expect(auth.root(a, { offline: { maxHops: 8 } }).claims.offline).toEqual({ max_hops: 8 })
    expect(auth.root(a).claims.offline).toBeUndefined()
  })
})

describe('chain rules for the credential shapes (a guard refuses a malformed one whoever signed it)', () => {
  const root = () => auth.root(a, { offline: { maxHops: 2 } })
  const audienceCred = () => plain(narrow(root(), a, { kind: 'audience', audience: AUD }))
  const callCred = () => plain(narrow(root(), a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: '/data/a', amount: 1 } }))
  const rule = (p: JsonObject) => expectCode(() => parseMandateClaims(p), 'CHAIN_INCONSISTENT').detail?.rule
  it('accepts the shapes narrowMandate produces', () => {
    parseMandateClaims(audienceCred())
    parseMandateClaims(callCred())
  })
  it('refuses an audience credential with two audiences, one that can delegate, one with a call, one with offline', () => {
    const two = audienceCred()
    two.aud = [AUD, AUD2]
    expect(rule(two)).toBe('audience-shape')
    const deep = audienceCred()
    ;(deep.delegation as JsonObject).max_depth = 1
    expect(rule(deep)).toBe('audience-shape')
    const call = callCred()
    call.credential = 'audience'
    expect(rule(call)).toBe('audience-shape')
    const off = audienceCred()
    off.offline = { max_hops: 1 }
    expect(rule(off)).toBe('offline-terminal')
  })
  it('refuses a call credential that allows offline attenuation, and an audience credential listing too few ancestors', () => {
    const call = callCred()
    call.offline = { max_hops: 1 }
    expect(rule(call)).toBe('offline-terminal')
    const cred = audienceCred()
    ;(cred.delegation as JsonObject).ancestors = []
    delete (cred.delegation as JsonObject).parent
    delete (cred.delegation as JsonObject).parent_hash
    expect(rule(cred)).toBe('ancestors-depth')
  })
  it('assertChainConsistent is exported and takes the credential members', () => {
    const c = parseMandateClaims(audienceCred())
    assertChainConsistent(c)
    expectCode(() => assertChainConsistent({ ...c, credential: 'other' as never }), 'CHAIN_INCONSISTENT')
  })
})

describe('lifetime caps', () => {
  it('has an audience cap (default 900 s), validated like the others', () => {
    expect(DEFAULT_LIFETIME_CAPS.audience).toBe(900)
    expect(lifetimeCaps({ audience: 60 }).audience).toBe(60)
    expectCode(() => lifetimeCaps({ audience: 0 }), 'CONFIG_INVALID')
    const root = auth.root(a)
    const cred = narrow(root, a, { kind: 'audience', audience: AUD })
    assertLifetimeWithin(cred)
    expect(expectCode(() => assertLifetimeWithin({ ...cred, exp: cred.exp + 1 }), 'LIFETIME_EXCEEDED').detail).toEqual({ kind: 'audience', cap: 900 })
    // the same lifetime is fine for a mandate
    assertLifetimeWithin({ ...cred, exp: cred.exp + 1, credential: undefined })
  })
})

describe('per_call', () => {
  const tools: ToolGrant[] = [
    { type: 'tool_access', tools: ['billing.*'], per_call: true },
    { type: 'tool_access', tools: ['billing.read', 'files.*'] },
  ]
  it('is inherited by default and cannot be dropped while any per_call grant covers the child', () => {
    const root = auth.root(a, { tools })
    const child = narrow(root, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt } })
    expect(child.authorization_details).toEqual(tools)
    const err = expectCode(() => narrow(root, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['billing.refund'] }] }), 'NARROWING_TOOL')
    expect(err.detail?.rule).toBe('per-call')
    expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['billing.*'] }] }), 'NARROWING_TOOL')
    // kept: fine; covered by a non-per_call grant too: still kept, since the guard refuses the parent
    // itself for billing.read without a call credential (billing.* is per_call)
    narrow(root, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['billing.refund'], per_call: true }] })
    expect(expectCode(() => narrow(root, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['billing.read'] }] }), 'NARROWING_TOOL').detail?.rule).toBe('per-call')
    expect(narrow(root, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['files.read'] }] }).authorization_details).toEqual([{ type: 'tool_access', tools: ['files.read'] }])
    // adding it where the parent had none is a narrowing
    narrow(root, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['files.read'], per_call: true }] })
  })
  it('a call credential copies per_call from its grant, preferring a grant without it', () => {
    const root = auth.root(a, { tools })
    const refund = narrow(root, a, { kind: 'call', audience: AUD, tool: 'billing.refund', arguments: {} })
    expect(refund.authorization_details).toEqual([{ type: 'tool_access', tools: ['billing.refund'], per_call: true }])
    const read = narrow(root, a, { kind: 'call', audience: AUD, tool: 'billing.read', arguments: {} })
    expect(read.authorization_details).toEqual([{ type: 'tool_access', tools: ['billing.read'] }])
  })
})

describe('offline claim through Authority narrowing', () => {
  const del = (extra: Record<string, unknown> = {}): NarrowingRequest => ({ kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, ...extra }) as NarrowingRequest
  it('a delegation keeps it unchanged unless lowered; call and audience credentials never carry it', () => {
    const root = auth.root(a, { offline: { maxHops: 3 } })
    expect(narrow(root, a, del()).offline).toEqual({ max_hops: 3 })
    expect(narrow(root, a, del({ offlineHops: 1 })).offline).toEqual({ max_hops: 1 })
    expect(narrow(root, a, del({ offlineHops: 0 })).offline).toBeUndefined()
    expectCode(() => narrow(root, a, del({ offlineHops: 4 })), 'NARROWING_CLAIM')
    expectCode(() => narrow(root, a, del({ offlineHops: -1 })), 'NARROWING_CLAIM')
    expect(narrow(root, a, { kind: 'audience', audience: AUD }).offline).toBeUndefined()
    expect(narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: '/data/a', amount: 1 } }).offline).toBeUndefined()
  })
  it('a child cannot introduce it', () => {
    const root = auth.root(a)
    expect(narrow(root, a, del()).offline).toBeUndefined()
    expectCode(() => narrow(root, a, del({ offlineHops: 1 })), 'NARROWING_CLAIM')
  })
  it('an offline hop needs it and decrements it; approvals and digest-only calls are refused or offline-only', () => {
    const plainRoot = auth.root(a)
    expectCode(() => narrow(plainRoot, a, del(), { offlineHop: true }), 'ATTENUATION_NOT_ALLOWED')
    const root = auth.root(a, { offline: { maxHops: 2 } })
    expect(narrow(root, a, del(), { offlineHop: true }).offline).toEqual({ max_hops: 1 })
    expectCode(() => narrow(root, a, del({ offlineHops: 2 }), { offlineHop: true }), 'NARROWING_CLAIM')
    expectCode(() => narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: {} }, { offlineHop: true, approval: { id: 'x', approver: 'y', approved_at: 1 } }), 'NARROWING_CLAIM')
    const digest = 'A'.repeat(43)
    expectCode(() => narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', argsDigest: digest }), 'NARROWING_CLAIM')
    expectCode(() => narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: {}, grant: { type: 'tool_access', tools: ['files.read'] } }), 'NARROWING_CLAIM')
    expectCode(() => narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', argsDigest: digest, arguments: {} }, { offlineHop: true }), 'NARROWING_CLAIM')
    expectCode(() => narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', argsDigest: 'short' }, { offlineHop: true }), 'NARROWING_CLAIM')
    const c = narrow(root, a, { kind: 'call', audience: AUD, tool: 'files.read', argsDigest: digest }, { offlineHop: true })
    expect(c.call).toEqual({ tool: 'files.read', args: digest })
    expect(c.authorization_details[0]?.constraints).toEqual(root.claims.authorization_details[0]?.constraints)
  })
  it('buildRootMandate keeps other members as before (no offline by default)', () => {
    const claims = buildRootMandate({ subject: 's', agent: { id: a.did, jkt: a.jkt }, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['x'] }] }, { issuer: ISSUER, now: auth.now, jti: randomId(), txn: randomId() })
    expect(Object.keys(claims)).not.toContain('offline')
  })
})
