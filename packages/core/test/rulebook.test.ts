// DESIGN §4, both ways: for every rule a legal narrowing is accepted and each widening is refused
// with its exact code. Real keys, real signatures, real guards; no mocks.
import { beforeEach, describe, expect, it } from 'vitest'
import {
  parseConstraintMap,
  attenuateMandate, b64uEncode, createProof, Ed25519Key, MemoryReplayStore, MemoryRevocationList, narrowMandate, parseCompactJws, randomId,
  signCompactJws, signMandate, verifyMandate, verifyProof, type MandateClaims, type NarrowingRequest,
} from '@mandate/core'
import { AUD, AUD2, expectCode, expectReject, ISSUER, TestAuthority } from './helpers.js'

let auth: TestAuthority
let a: Ed25519Key
let b: Ed25519Key
let c: Ed25519Key
let root: { token: string; claims: MandateClaims }

beforeEach(() => {
  auth = new TestAuthority()
  a = Ed25519Key.generate()
  b = Ed25519Key.generate()
  c = Ed25519Key.generate()
  root = auth.root(a)
})

const verify = (token: string, extra: Record<string, unknown> = {}) => verifyMandate(token, { issuer: ISSUER, keys: auth.keys, now: auth.now, ...extra })
/** Narrow synchronously from verified claims (as the Authority does), as holder `holder`. */
const narrow = (parent: { token: string; claims: MandateClaims }, holder: Ed25519Key, req: NarrowingRequest, now = auth.now) =>
  narrowMandate(parent.claims, req, { issuer: ISSUER, now, jti: randomId(), parentToken: parent.token, caller: { id: holder.did, jkt: holder.jkt } })
const signed = (claims: MandateClaims) => ({ token: signMandate(claims, auth.key), claims })
/** Re-sign a raw header/payload text with the trusted key, so only the rule under test can refuse it. */
function rawToken(header: string, payload: string, key: Ed25519Key = auth.key): string {
  const input = `${b64uEncode(header)}.${b64uEncode(payload)}`
  return `${input}.${b64uEncode(key.sign(new TextEncoder().encode(input)))}`
}
const call = (tool: string, args: unknown, audience = AUD): NarrowingRequest => ({ kind: 'call', audience, tool, arguments: args })

async function callThrough(parent: { token: string; claims: MandateClaims }, holder: Ed25519Key, tool: string, args: unknown, guard = auth.guard()) {
  const cred = signed(narrow(parent, holder, call(tool, args)))
  const proof = createProof(holder, { accessToken: cred.token, audience: AUD, tool, arguments: args })
  return guard.verifyToolCall({ mandate: cred.token, proof, tool, arguments: args })
}

describe('§4.1 crypto and typing', () => {
  const header = (h: Record<string, unknown>) => JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid, ...h })
  const payload = () => JSON.stringify(root.claims)
  it('accepts the canonical header and typ variants at+JWT / application/at+jwt', async () => {
    await verify(root.token)
    await verify(rawToken(header({ typ: 'at+JWT' }), payload()))
    await verify(rawToken(header({ typ: 'application/at+jwt' }), payload()))
    await verify(rawToken(header({ alg: 'Ed25519' }), payload()))
  })
  const cases: [string, Record<string, unknown>, string][] = [
    ['alg none', { alg: 'none' }, 'ALG_NOT_ALLOWED'],
    ['alg HS256', { alg: 'HS256' }, 'ALG_NOT_ALLOWED'],
    ['alg RS256', { alg: 'RS256' }, 'ALG_NOT_ALLOWED'],
    ['alg ES256', { alg: 'ES256' }, 'ALG_NOT_ALLOWED'],
    ['alg eddsa (case)', { alg: 'eddsa' }, 'ALG_NOT_ALLOWED'],
    ['jku', { jku: 'https://evil.example/jwks' }, 'HEADER_NOT_ALLOWED'],
    ['x5u', { x5u: 'https://evil.example/cert' }, 'HEADER_NOT_ALLOWED'],
    ['x5c', { x5c: ['MIIB'] }, 'HEADER_NOT_ALLOWED'],
    ['jwk in an access token', { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'x' } }, 'HEADER_NOT_ALLOWED'],
    ['b64 false', { b64: false }, 'HEADER_NOT_ALLOWED'],
    ['crit', { crit: ['exp'] }, 'CRIT_UNSUPPORTED'],
    ['unknown kid', { kid: 'not-a-trusted-kid' }, 'KEY_NOT_FOUND'],
    ['kid absent', { kid: undefined }, 'KEY_NOT_FOUND'],
    ['typ dpop+jwt (confusion)', { typ: 'dpop+jwt' }, 'TYP_MISMATCH'],
    ['typ JWT', { typ: 'JWT' }, 'TYP_MISMATCH'],
    ['typ absent', { typ: undefined }, 'TYP_MISMATCH'],
    ['typ client-authentication+jwt', { typ: 'client-authentication+jwt' }, 'TYP_MISMATCH'],
  ]
  for (const [name, h, code] of cases) it(`refuses ${name} → ${code}`, () => expectReject(verify(rawToken(header(h), payload())), code as never))
  it('refuses a token signed by an untrusted key under the trusted kid → SIGNATURE_INVALID', () =>
    expectReject(verify(rawToken(header({}), payload(), Ed25519Key.generate())), 'SIGNATURE_INVALID'))
  it('refuses a proof presented as a mandate and a mandate presented as a proof (typ confusion)', async () => {
    const proof = createProof(a, { audience: AUD, accessToken: root.token })
    // the proof's embedded jwk header is refused before its typ is even looked at
    await expectReject(verify(proof), 'HEADER_NOT_ALLOWED')
    const { jwk: _jwk, ...hdr } = JSON.parse(Buffer.from(proof.split('.')[0] as string, 'base64url').toString())
    await expectReject(verify(rawToken(JSON.stringify({ ...hdr, kid: auth.key.kid }), JSON.stringify(root.claims))), 'TYP_MISMATCH')
    await expectReject(verifyProof(root.token, { audience: AUD }), 'TYP_MISMATCH')
  })
  it('refuses JSON serialization and extra segments (compact only) → TOKEN_MALFORMED', async () => {
    const [h, p, s] = root.token.split('.')
    await expectReject(verify(JSON.stringify({ protected: h, payload: p, signature: s })), 'TOKEN_MALFORMED')
    await expectReject(verify(`${root.token}.x`), 'TOKEN_MALFORMED')
    await expectReject(verify(`${h}.${p}`), 'TOKEN_MALFORMED')
  })
})

describe('§4.2 strict parsing before signature work', () => {
  it('duplicate member names → JSON_DUPLICATE_MEMBER (header and payload)', async () => {
    const p = JSON.stringify(root.claims)
    await expectReject(verify(rawToken(`{"alg":"EdDSA","typ":"at+jwt","kid":"${auth.key.kid}","alg":"EdDSA"}`, p)), 'JSON_DUPLICATE_MEMBER')
    await expectReject(verify(rawToken(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid }), `${p.slice(0, -1)},"sub":"mallory"}`)), 'JSON_DUPLICATE_MEMBER')
  })
  it('invalid UTF-8 → INVALID_UTF8', async () => {
    const h = b64uEncode(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid }))
    const bad = b64uEncode(Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))
    await expectReject(verify(`${h}.${bad}.${b64uEncode(new Uint8Array(64).fill(9))}`), 'INVALID_UTF8')
  })
  it('non-canonical base64url (padding, trailing bits, +/) → TOKEN_MALFORMED', async () => {
    const [h, p, s] = root.token.split('.') as [string, string, string]
    await expectReject(verify(`${h}=.${p}.${s}`), 'TOKEN_MALFORMED')
    await expectReject(verify(`${h}.${p}.${s.slice(0, -1)}${s.endsWith('B') ? 'C' : 'B'}`), 'TOKEN_MALFORMED')
    await expectReject(verify(`${h.replace(/-/g, '+')}.${p}.${s}`.replace('e', '+')), 'TOKEN_MALFORMED')
  })
  it('deep act nesting → CLAIM_INVALID; bounded arrays', async () => {
    let act: Record<string, unknown> = { sub: 'x' }
    for (let i = 0; i < 20; i++) act = { sub: `a${i}`, act }
    await expectReject(verify(rawToken(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid }), JSON.stringify({ ...root.claims, act }))), 'CLAIM_INVALID')
    const aud = Array.from({ length: 17 }, (_, i) => `https://x${i}.example`)
    await expectReject(verify(rawToken(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid }), JSON.stringify({ ...root.claims, aud }))), 'CLAIM_INVALID')
  })
  it('oversized token → TOKEN_TOO_LARGE', () => expectReject(verify(`${'a'.repeat(20_000)}.b.c`), 'TOKEN_TOO_LARGE'))
})

describe('§4.3 subject, task and issuer never change; §4.14 no new authority-bearing claims', () => {
  it('children keep sub, txn, iss, purpose', async () => {
    const child = narrow(root, a, auth.delegate(b))
    expect([child.sub, child.txn, child.iss, child.purpose]).toEqual([root.claims.sub, root.claims.txn, root.claims.iss, root.claims.purpose])
    const cred = narrow(signed(child), b, call('files.read', { path: '/data/x', amount: 1 }))
    expect([cred.sub, cred.txn, cred.iss]).toEqual([root.claims.sub, root.claims.txn, ISSUER])
  })
  for (const member of ['sub', 'txn', 'iss', 'approval', 'purpose', 'act', 'cnf', 'call']) {
    it(`a request that tries to set "${member}" → NARROWING_CLAIM`, () => {
      expectCode(() => narrow(root, a, { ...auth.delegate(b), [member]: 'x' } as NarrowingRequest), 'NARROWING_CLAIM')
      expectCode(() => narrow(root, a, { ...call('files.read', { path: '/data/x', amount: 1 }), [member]: 'x' } as NarrowingRequest), 'NARROWING_CLAIM')
    })
  }
  it('unknown request kind → NARROWING_CLAIM', () => expectCode(() => narrow(root, a, { kind: 'impersonate' } as unknown as NarrowingRequest), 'NARROWING_CLAIM'))
  it('an unknown claim in a signed token → CLAIM_UNKNOWN; unknown authorization_details type → CLAIM_UNKNOWN', async () => {
    const h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid })
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, admin: true }))), 'CLAIM_UNKNOWN')
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, authorization_details: [{ type: 'payment_initiation', tools: ['x'] }] }))), 'CLAIM_UNKNOWN')
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, cnf: { jkt: root.claims.cnf.jkt, x5t: 'x' } }))), 'CLAIM_INVALID')
  })
  it('a requested tool grant of another type → NARROWING_CLAIM', () => {
    expectCode(() => narrow(root, a, auth.delegate(b, { tools: [{ type: 'admin_access', tools: ['files.read'] } as never] })), 'NARROWING_CLAIM')
  })
  it('signMandate refuses to sign claims the verifier would refuse', () => {
    expectCode(() => signMandate({ ...root.claims, extra: 1 } as unknown as MandateClaims, auth.key), 'CLAIM_UNKNOWN')
  })
})

describe('§4.4 actor chain grows by exactly one; only the holder may exchange', () => {
  it('accepts: chain [a] → [a, b] → [a, b, c]', async () => {
    const r1 = await auth.narrow(root.token, a, auth.delegate(b))
    expect(r1.claims.act).toEqual({ sub: b.did, act: { sub: a.did } })
    expect(r1.claims.client_id).toBe(b.did)
    const r2 = await auth.narrow(r1.token, b, auth.delegate(c))
    expect(r2.claims.act).toEqual({ sub: c.did, act: { sub: b.did, act: { sub: a.did } } })
    const res = await callThrough(r2, c, 'files.read', { path: '/data/a', amount: 5 })
    expect(res.actorChain).toEqual([a.did, b.did, c.did])
    expect(res.actor).toBe(c.did)
  })
  it('refuses a caller who is not the current holder → NARROWING_CHAIN', () => {
    expectCode(() => narrow(root, b, auth.delegate(c)), 'NARROWING_CHAIN')
    expectCode(() => narrowMandate(root.claims, auth.delegate(c), { issuer: ISSUER, now: auth.now, jti: randomId(), parentToken: root.token, caller: { id: a.did, jkt: b.jkt } }), 'NARROWING_CHAIN')
  })
  it('refuses exchanging a call credential → NARROWING_CHAIN', () => {
    const cred = signed(narrow(root, a, call('files.read', { path: '/data/x', amount: 1 })))
    expectCode(() => narrow(cred, a, auth.delegate(b)), 'NARROWING_CHAIN')
  })
  it('a token whose act chain disagrees with its depth or client_id → CHAIN_INCONSISTENT', async () => {
    const h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid })
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, act: { sub: a.did, act: { sub: 'did:example:ghost' } } }))), 'CHAIN_INCONSISTENT')
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, client_id: b.did }))), 'CHAIN_INCONSISTENT')
  })
})

describe('§4.5 parent record, depth ≤ max depth, max depth only shrinks', () => {
  it('records parent, parent_hash and ancestors', async () => {
    const r1 = await auth.narrow(root.token, a, auth.delegate(b))
    expect(r1.claims.delegation).toMatchObject({ depth: 1, parent: root.claims.jti, ancestors: [root.claims.jti] })
    const { tokenHash } = await import('@mandate/core')
    expect(r1.claims.delegation.parent_hash).toBe(tokenHash(root.token))
  })
  it('accepts shrinking max depth (further delegations), refuses growing it and going past it → NARROWING_DEPTH', async () => {
    // root allows 4 delegations; the request's maxDepth counts delegations below the child
    const r1 = await auth.narrow(root.token, a, auth.delegate(b, { maxDepth: 1 }))
    expect(r1.claims.delegation).toMatchObject({ depth: 1, max_depth: 2 })
    expectCode(() => narrow(r1, b, auth.delegate(c, { maxDepth: 1 })), 'NARROWING_DEPTH') // only 0 left below c
    expectCode(() => narrow(root, a, auth.delegate(b, { maxDepth: 4 })), 'NARROWING_DEPTH') // 3 left below b
    expect(narrow(root, a, auth.delegate(b, { maxDepth: 3 })).delegation.max_depth).toBe(4)
    expectCode(() => narrow(root, a, auth.delegate(b, { maxDepth: -1 })), 'NARROWING_DEPTH')
    const r2 = await auth.narrow(r1.token, b, auth.delegate(c))
    expect(r2.claims.delegation).toMatchObject({ depth: 2, max_depth: 2 })
    expectCode(() => narrow(r2, c, auth.delegate(Ed25519Key.generate())), 'NARROWING_DEPTH')
  })
  it('max depth 0 root cannot delegate but can mint call credentials', () => {
    const r = auth.root(a, { maxDepth: 0 })
    expectCode(() => narrow(r, a, auth.delegate(b)), 'NARROWING_DEPTH')
    expect(narrow(r, a, call('files.read', { path: '/data/x', amount: 1 })).delegation.depth).toBe(0)
  })
  it('a token claiming depth > max_depth or max_depth > 16 → CLAIM_INVALID', async () => {
    const h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid })
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, delegation: { ...root.claims.delegation, max_depth: 17 } }))), 'CLAIM_INVALID')
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, delegation: { depth: 1, max_depth: 0, ancestors: ['x'.repeat(22)], parent: 'x'.repeat(22) } }))), 'CLAIM_INVALID')
  })
})

describe('§4.6 scopes: subset, exact ASCII, no normalisation', () => {
  it('accepts a subset and the same set', () => {
    expect(narrow(root, a, auth.delegate(b, { scopes: ['read'] })).scope).toBe('read')
    expect(narrow(root, a, auth.delegate(b)).scope).toBe('read write')
  })
  it('refuses a new scope and a case variant → NARROWING_SCOPE', () => {
    expectCode(() => narrow(root, a, auth.delegate(b, { scopes: ['admin'] })), 'NARROWING_SCOPE')
    expectCode(() => narrow(root, a, auth.delegate(b, { scopes: ['Read'] })), 'NARROWING_SCOPE')
    expectCode(() => narrow(root, a, { ...call('files.read', { path: '/data/x', amount: 1 }), scopes: ['read', 'admin'] }), 'NARROWING_SCOPE')
  })
  it('refuses malformed scope strings → SCOPE_MALFORMED', async () => {
    expectCode(() => narrow(root, a, auth.delegate(b, { scopes: ['re"ad'] })), 'SCOPE_MALFORMED')
    expectCode(() => narrow(root, a, auth.delegate(b, { scopes: ['read\\x'] })), 'SCOPE_MALFORMED')
    expectCode(() => narrow(root, a, auth.delegate(b, { scopes: ['read  write'] })), 'SCOPE_MALFORMED')
    const h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid })
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, scope: 'read read' }))), 'SCOPE_MALFORMED')
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, scope: 'read\twrite' }))), 'SCOPE_MALFORMED')
  })
  it('guard requiredScopes: present accepted, missing → INSUFFICIENT_SCOPE', async () => {
    await callThrough(root, a, 'files.read', { path: '/data/x', amount: 1 }, auth.guard({ requiredScopes: ['read'] }))
    await expectReject(callThrough(root, a, 'files.read', { path: '/data/x', amount: 1 }, auth.guard({ requiredScopes: ['admin'] })), 'INSUFFICIENT_SCOPE')
  })
})

describe('§4.7 audience', () => {
  it('accepts a subset; a call credential has exactly one audience', () => {
    expect(narrow(root, a, auth.delegate(b, { audiences: [AUD] })).aud).toBe(AUD)
    expect(narrow(root, a, call('files.read', { path: '/data/x', amount: 1 }, AUD2)).aud).toBe(AUD2)
  })
  it('refuses a new audience, a trailing-slash variant, a fragment → exact codes', () => {
    expectCode(() => narrow(root, a, auth.delegate(b, { audiences: ['https://evil.example'] })), 'NARROWING_AUDIENCE')
    expectCode(() => narrow(root, a, auth.delegate(b, { audiences: [`${AUD}/`] })), 'NARROWING_AUDIENCE')
    expectCode(() => narrow(root, a, call('files.read', { path: '/data/x', amount: 1 }, 'https://evil.example')), 'NARROWING_AUDIENCE')
    expectCode(() => narrow(root, a, auth.delegate(b, { audiences: [`${AUD}#x`] })), 'CLAIM_INVALID')
    expectCode(() => narrow(root, a, auth.delegate(b, { audiences: [] })), 'NARROWING_AUDIENCE')
  })
  it('a narrowed child cannot be used at a dropped audience → AUDIENCE_MISMATCH at the guard', async () => {
    const child = signed(narrow(root, a, auth.delegate(b, { audiences: [AUD2] })))
    const proof = createProof(b, { accessToken: child.token, audience: AUD, tool: 'files.read', arguments: { path: '/data/x', amount: 1 } })
    await expectReject(auth.guard().verifyToolCall({ mandate: child.token, proof, tool: 'files.read', arguments: { path: '/data/x', amount: 1 } }), 'AUDIENCE_MISMATCH')
  })
})

describe('§4.8 tools on segment boundaries', () => {
  const grant = (tools: string[]) => auth.delegate(b, { tools: [{ type: 'tool_access', tools, constraints: { amount: { type: 'max', value: 100 }, path: { type: 'path_prefix', prefix: '/data' } } }] })
  it('accepts subsets: files.read, files.*, files.sub.*, billing.refund', () => {
    for (const t of [['files.read'], ['files.*'], ['files.sub.*'], ['billing.refund'], ['files.read', 'billing.refund']]) expect(narrow(root, a, grant(t)).authorization_details[0]?.tools).toEqual(t)
  })
  for (const t of ['*', 'filesx.read', 'files', 'billing.refund_all', 'billing.*', 'billing.refund.sub', 'admin.x']) {
    it(`refuses widening to ${t} → NARROWING_TOOL`, () => expectCode(() => narrow(root, a, grant([t])), 'NARROWING_TOOL'))
  }
  it('call credentials: covered tool accepted, billing.refund_all and filesx.read refused → NARROWING_TOOL', () => {
    narrow(root, a, call('billing.refund', { path: '/data/x', amount: 1 }))
    expectCode(() => narrow(root, a, call('billing.refund_all', { path: '/data/x', amount: 1 })), 'NARROWING_TOOL')
    expectCode(() => narrow(root, a, call('filesx.read', { path: '/data/x', amount: 1 })), 'NARROWING_TOOL')
    expectCode(() => narrow(root, a, call('files', { path: '/data/x', amount: 1 })), 'NARROWING_TOOL')
  })
  it('guard: a credential for one tool cannot call another → TOOL_NOT_ALLOWED', async () => {
    const cred = signed(narrow(root, a, call('files.read', { path: '/data/x', amount: 1 })))
    const proof = createProof(a, { accessToken: cred.token, audience: AUD, tool: 'files.write', arguments: { path: '/data/x', amount: 1 } })
    await expectReject(auth.guard().verifyToolCall({ mandate: cred.token, proof, tool: 'files.write', arguments: { path: '/data/x', amount: 1 } }), 'TOOL_NOT_ALLOWED')
    // audience-level mandate: the grant decides
    const proof2 = createProof(a, { accessToken: root.token, audience: AUD, tool: 'billing.refund_all', arguments: {} })
    await expectReject(auth.guard().verifyToolCall({ mandate: root.token, proof: proof2, tool: 'billing.refund_all', arguments: {} }), 'TOOL_NOT_ALLOWED')
  })
})

describe('§4.9 argument constraints, per comparator', () => {
  const base = (constraints: Record<string, unknown>) => auth.root(a, { tools: [{ type: 'tool_access', tools: ['t.*'], constraints: constraints as never }] })
  const child = (parent: { token: string; claims: MandateClaims }, constraints: Record<string, unknown>) =>
    narrow(parent, a, auth.delegate(b, { tools: [{ type: 'tool_access', tools: ['t.x'], constraints: constraints as never }] }))
  const table: [string, Record<string, unknown>, Record<string, unknown>[], [Record<string, unknown>, string][]][] = [
    ['exact', { v: { type: 'exact', value: 'a' } }, [{ v: { type: 'exact', value: 'a' } }], [[{ v: { type: 'exact', value: 'b' } }, 'NARROWING_CONSTRAINT'], [{ v: { type: 'enum', values: ['a', 'b'] } }, 'NARROWING_CONSTRAINT']]],
    ['enum', { v: { type: 'enum', values: ['a', 'b'] } }, [{ v: { type: 'enum', values: ['a'] } }, { v: { type: 'exact', value: 'b' } }], [[{ v: { type: 'enum', values: ['a', 'c'] } }, 'NARROWING_CONSTRAINT'], [{ v: { type: 'exact', value: 'c' } }, 'NARROWING_CONSTRAINT']]],
    ['max', { v: { type: 'max', value: 10 } }, [{ v: { type: 'max', value: 10 } }, { v: { type: 'max', value: 3 } }, { v: { type: 'exact', value: 5 } }, { v: { type: 'enum', values: [1, 10] } }], [[{ v: { type: 'max', value: 11 } }, 'NARROWING_CONSTRAINT'], [{ v: { type: 'min', value: 0 } }, 'NARROWING_CONSTRAINT'], [{ v: { type: 'exact', value: '5' } }, 'NARROWING_CONSTRAINT']]],
    ['min', { v: { type: 'min', value: 10 } }, [{ v: { type: 'min', value: 12 } }], [[{ v: { type: 'min', value: 9 } }, 'NARROWING_CONSTRAINT'], [{ v: { type: 'max', value: 100 } }, 'NARROWING_CONSTRAINT']]],
    ['path_prefix', { v: { type: 'path_prefix', prefix: '/data' } }, [{ v: { type: 'path_prefix', prefix: '/data' } }, { v: { type: 'path_prefix', prefix: '/data/sub' } }, { v: { type: 'exact', value: '/data/f.txt' } }], [
      [{ v: { type: 'path_prefix', prefix: '/dat' } }, 'NARROWING_CONSTRAINT'],
      [{ v: { type: 'path_prefix', prefix: '/data2' } }, 'NARROWING_CONSTRAINT'],
      [{ v: { type: 'path_prefix', prefix: '/' } }, 'NARROWING_CONSTRAINT'],
      [{ v: { type: 'path_prefix', prefix: '/data/../etc' } }, 'CONSTRAINT_INVALID'],
      [{ v: { type: 'path_prefix', prefix: '/data/./x' } }, 'CONSTRAINT_INVALID'],
      [{ v: { type: 'path_prefix', prefix: '/data%2f..' } }, 'CONSTRAINT_INVALID'],
      [{ v: { type: 'path_prefix', prefix: '/data\\..\\etc' } }, 'CONSTRAINT_INVALID'],
      [{ v: { type: 'path_prefix', prefix: '/data//x' } }, 'CONSTRAINT_INVALID'],
      [{ v: { type: 'exact', value: '/data/../etc' } }, 'NARROWING_CONSTRAINT'],
    ]],
  ]
  for (const [name, parentC, legal, widenings] of table) {
    it(`${name}: legal narrowings accepted`, () => {
      const p = base(parentC)
      for (const l of legal) expect(child(p, l).authorization_details[0]?.constraints).toEqual(l)
    })
    for (const [w, code] of widenings) it(`${name}: ${JSON.stringify(w.v)} → ${code}`, () => expectCode(() => child(base(parentC), w), code as never))
    it(`${name}: dropping the constraint → NARROWING_CONSTRAINT`, () => expectCode(() => child(base(parentC), {}), 'NARROWING_CONSTRAINT'))
  }
  it('a constraint on an argument named "__proto__" is refused, never silently dropped (CONSTRAINT_INVALID)', () => {
    // JSON.parse makes "__proto__" an own member; copying it with plain assignment would set a prototype instead
    const raw = JSON.parse('{"__proto__":{"type":"max","value":1},"amount":{"type":"max","value":5}}') as unknown
    expectCode(() => parseConstraintMap(raw), 'CONSTRAINT_INVALID')
  })

  it('unknown constraint type → CONSTRAINT_UNKNOWN_TYPE (in a request and in a signed token)', async () => {
    const p = base({ v: { type: 'max', value: 10 } })
    expectCode(() => child(p, { v: { type: 'regex', pattern: '.*' } }), 'CONSTRAINT_UNKNOWN_TYPE')
    const h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid })
    await expectReject(verify(rawToken(h, JSON.stringify({ ...p.claims, authorization_details: [{ type: 'tool_access', tools: ['t.x'], constraints: { v: { type: 'regex' } } }] }))), 'CONSTRAINT_UNKNOWN_TYPE')
  })
  describe('at the call: every constraint must match the actual arguments', () => {
    const ok = { path: '/data/reports/q1.csv', amount: 100 }
    it('accepts matching arguments (call credential and audience-level mandate)', async () => {
      await callThrough(root, a, 'files.read', ok)
      const proof = createProof(a, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: ok })
      await auth.guard().verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: ok })
    })
    const bad: [string, unknown][] = [
      ['amount over max', { ...ok, amount: 101 }], ['amount as string', { ...ok, amount: '1' }], ['amount missing', { path: ok.path }],
      ['path ..', { ...ok, path: '/data/../etc/passwd' }], ['path .', { ...ok, path: '/data/./x' }], ['path %2f', { ...ok, path: '/data%2f..%2fetc' }],
      ['path backslash', { ...ok, path: '/data\\..\\etc' }], ['path sibling', { ...ok, path: '/database/x' }], ['path prefix only', { ...ok, path: '/dat' }],
      ['path not a string', { ...ok, path: ['/data/x'] }], ['path NUL', { ...ok, path: '/data/x\u0000' }],
    ]
    for (const [name, args] of bad) {
      it(`${name}: NARROWING_CONSTRAINT at the Authority, CONSTRAINT_VIOLATED at the guard`, async () => {
        expectCode(() => narrow(root, a, call('files.read', args)), 'NARROWING_CONSTRAINT')
        const proof = createProof(a, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: args })
        await expectReject(auth.guard().verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: args }), 'CONSTRAINT_VIOLATED')
      })
    }
    it('a call credential bound to other arguments → ARGUMENTS_MISMATCH', async () => {
      const cred = signed(narrow(root, a, call('files.read', ok)))
      const other = { ...ok, amount: 99 }
      const proof = createProof(a, { accessToken: cred.token, audience: AUD, tool: 'files.read', arguments: other })
      await expectReject(auth.guard().verifyToolCall({ mandate: cred.token, proof, tool: 'files.read', arguments: other }), 'ARGUMENTS_MISMATCH')
      const proof2 = createProof(a, { accessToken: cred.token, audience: AUD, tool: 'files.read', arguments: ok })
      await expectReject(auth.guard().verifyToolCall({ mandate: cred.token, proof: proof2, tool: 'files.read', arguments: other }), 'ARGUMENTS_MISMATCH')
    })
  })
})

describe('§4.10 time', () => {
  it('accepts a child inside the parent; caps call credentials at 60 s', () => {
    const ch = narrow(root, a, auth.delegate(b, { expiresIn: 600 }))
    expect(ch.exp).toBe(auth.now + 600)
    const cr = narrow(root, a, call('files.read', { path: '/data/x', amount: 1 }))
    expect(cr.exp - cr.iat).toBeLessThanOrEqual(60)
  })
  it('refuses outliving the parent, exceeding caps, bad lifetimes, expired parents → NARROWING_TIME', () => {
    expectCode(() => narrow(root, a, auth.delegate(b, { expiresIn: 3601 })), 'NARROWING_TIME')
    expectCode(() => narrow(root, a, { ...call('files.read', { path: '/data/x', amount: 1 }), expiresIn: 61 }), 'NARROWING_TIME')
    expectCode(() => narrow(root, a, auth.delegate(b, { expiresIn: 0 })), 'NARROWING_TIME')
    expectCode(() => narrow(root, a, auth.delegate(b, { expiresIn: 1.5 })), 'NARROWING_TIME')
    expectCode(() => narrow(root, a, auth.delegate(b), root.claims.exp), 'NARROWING_TIME')
  })
  it('without expiresIn a child still never outlives its parent', () => {
    const short = auth.root(a, { expiresIn: 30 })
    expect(narrow(short, a, auth.delegate(b)).exp).toBe(short.claims.exp)
  })
  it('guard: expired → TOKEN_EXPIRED; not yet valid → TOKEN_NOT_YET_VALID; skew is wall-clock only', async () => {
    await expectReject(verify(root.token, { now: root.claims.exp + 31 }), 'TOKEN_EXPIRED')
    await verify(root.token, { now: root.claims.exp + 29 })
    await expectReject(verify(root.token, { now: root.claims.exp, skew: 0 }), 'TOKEN_EXPIRED')
    await expectReject(verify(root.token, { now: root.claims.nbf - 31 }), 'TOKEN_NOT_YET_VALID')
    const h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid })
    await expectReject(verify(rawToken(h, JSON.stringify({ ...root.claims, nbf: root.claims.exp + 1 }))), 'CLAIM_INVALID')
  })
})

describe('§4.11 budget and uses only decrease; single use across guards', () => {
  it('accepts lower budget / uses', () => {
    const ch = narrow(root, a, auth.delegate(b, { budget: { amount: 20, unit: 'USD' }, maxUses: 3 }))
    expect(ch.budget).toEqual({ amount: 20, unit: 'USD' })
    expect(ch.max_uses).toBe(3)
  })
  it('refuses growth and unit changes → NARROWING_BUDGET', () => {
    expectCode(() => narrow(root, a, auth.delegate(b, { budget: { amount: 51, unit: 'USD' } })), 'NARROWING_BUDGET')
    expectCode(() => narrow(root, a, auth.delegate(b, { budget: { amount: 1, unit: 'EUR' } })), 'NARROWING_BUDGET')
    expectCode(() => narrow(root, a, auth.delegate(b, { budget: { amount: -1, unit: 'USD' } })), 'NARROWING_BUDGET')
    expectCode(() => narrow(root, a, auth.delegate(b, { maxUses: 11 })), 'NARROWING_BUDGET')
    expectCode(() => narrow(root, a, auth.delegate(b, { maxUses: 0 })), 'NARROWING_BUDGET')
  })
  it('a call credential is single use across two guards sharing a replay store → TOKEN_REPLAYED', async () => {
    const replay = new MemoryReplayStore()
    const g1 = auth.guard({ replay })
    const g2 = auth.guard({ replay })
    const args = { path: '/data/x', amount: 1 }
    const cred = signed(narrow(root, a, call('files.read', args)))
    expect(cred.claims.max_uses).toBe(1)
    await g1.verifyToolCall({ mandate: cred.token, proof: createProof(a, { accessToken: cred.token, audience: AUD, tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args })
    await expectReject(g2.verifyToolCall({ mandate: cred.token, proof: createProof(a, { accessToken: cred.token, audience: AUD, tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args }), 'TOKEN_REPLAYED')
  })
})

describe('§4.12 every hop re-bound; no Bearer downgrade', () => {
  it('the delegate\'s proof is accepted, the delegator\'s is refused → PROOF_BINDING_MISMATCH', async () => {
    const child = signed(narrow(root, a, auth.delegate(b)))
    expect(child.claims.cnf.jkt).toBe(b.jkt)
    const args = { path: '/data/x', amount: 1 }
    const guard = auth.guard()
    await guard.verifyToolCall({ mandate: child.token, proof: createProof(b, { accessToken: child.token, audience: AUD, tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args })
    await expectReject(guard.verifyToolCall({ mandate: child.token, proof: createProof(a, { accessToken: child.token, audience: AUD, tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args }), 'PROOF_BINDING_MISMATCH')
  })
  it('HTTP: Bearer scheme, missing DPoP header, missing proof → PROOF_MISSING', async () => {
    const guard = auth.guard()
    const url = `${AUD}/x`
    const proof = createProof(a, { accessToken: root.token, method: 'GET', url })
    await expectReject(guard.verifyRequest({ method: 'GET', url, headers: { authorization: `Bearer ${root.token}`, dpop: proof } }), 'PROOF_MISSING')
    await expectReject(guard.verifyRequest({ method: 'GET', url, headers: { authorization: `Bearer ${root.token}` } }), 'PROOF_MISSING')
    await expectReject(guard.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${root.token}` } }), 'PROOF_MISSING')
    await expectReject(guard.verifyRequest({ method: 'GET', url, headers: {} }), 'PROOF_MISSING')
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: undefined as unknown as string, tool: 'files.read' }), 'PROOF_MISSING')
    const ok = await guard.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${root.token}`, dpop: proof } })
    expect(ok.actor).toBe(a.did)
  })
})

describe('§4.13 a revoked ancestor kills every descendant', () => {
  const args = { path: '/data/x', amount: 1 }
  async function chain() {
    const r1 = await auth.narrow(root.token, a, auth.delegate(b))
    const r2 = await auth.narrow(r1.token, b, auth.delegate(c))
    return { r1, r2 }
  }
  for (const what of ['root mandate', 'middle mandate', 'task', 'ancestor agent'] as const) {
    it(`revoking the ${what} → REVOKED for a depth-2 call credential`, async () => {
      const { r1, r2 } = await chain()
      const revocation = new MemoryRevocationList()
      const guard = auth.guard({ revocation })
      await callThrough(r2, c, 'files.read', args, guard)
      if (what === 'root mandate') revocation.revokeMandate(root.claims.jti)
      if (what === 'middle mandate') revocation.revokeMandate(r1.claims.jti)
      if (what === 'task') revocation.revokeTask(root.claims.txn)
      if (what === 'ancestor agent') revocation.revokeAgent(a.did)
      await expectReject(callThrough(r2, c, 'files.read', args, guard), 'REVOKED')
    })
  }
  it('revoking an unrelated mandate does not affect the chain', async () => {
    const { r2 } = await chain()
    const revocation = new MemoryRevocationList()
    revocation.revokeMandate(randomId())
    await callThrough(r2, c, 'files.read', args, auth.guard({ revocation }))
  })
})

describe('proof jwk members are checked on every proof (regression: a cached key skipped the check)', () => {
  it('a known key with an extra x5u member or a private d is refused → PROOF_INVALID', async () => {
    const ok = createProof(a, { audience: AUD, accessToken: root.token })
    await verifyProof(ok, { audience: AUD, jkt: a.jkt }) // caches a's key
    for (const extra of [{ x5u: 'https://evil.example/c' }, { d: 'AAAA' }, { kid: '' }, { alg: 'HS256' }]) {
      const [h, p] = ok.split('.') as [string, string]
      const header = JSON.parse(Buffer.from(h, 'base64url').toString())
      const input = `${b64uEncode(JSON.stringify({ ...header, jwk: { ...header.jwk, ...extra } }))}.${p}`
      const forged = `${input}.${b64uEncode(a.sign(new TextEncoder().encode(input)))}`
      await expectReject(verifyProof(forged, { audience: AUD, jkt: a.jkt }), 'PROOF_INVALID')
    }
  })
})

describe('parseCompactJws policy is the same for every token kind', () => {
  it('signCompactJws output round-trips', () => {
    const t = signCompactJws({ alg: 'EdDSA', typ: 'x+jwt' }, { a: 1 }, a)
    expect(parseCompactJws(t, { typ: 'x+jwt', maxLength: 1000 }).payload).toEqual({ a: 1 })
  })
})

describe('§4 per_call holds across grants (outside probe)', () => {
  // the guard demands a call credential when ANY applicable per_call grant covers the tool; a child
  // narrowing the other, unmarked grant must not shed that requirement
  const tools = [{ type: 'tool_access' as const, tools: ['files.*'], per_call: true as const }, { type: 'tool_access' as const, tools: ['files.read'] }]
  it('the root itself is refused at the guard without a call credential', async () => {
    const r = auth.root(a, { tools })
    const args = { path: '/x' }
    const proof = createProof(a, { accessToken: r.token, audience: AUD, tool: 'files.read', arguments: args })
    await expectReject(auth.guard().verifyToolCall({ mandate: r.token, proof, tool: 'files.read', arguments: args }), 'CALL_CREDENTIAL_REQUIRED')
  })
  it('a delegation or audience credential narrowing the unmarked grant must keep per_call; keeping it is accepted', () => {
    const r = auth.root(a, { tools })
    const plain = [{ type: 'tool_access' as const, tools: ['files.read'] }]
    expect(expectCode(() => narrow(r, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: plain }), 'NARROWING_TOOL').detail?.rule).toBe('per-call')
    expect(expectCode(() => narrow(r, a, { kind: 'audience', audience: AUD, tools: plain }), 'NARROWING_TOOL').detail?.rule).toBe('per-call')
    // a tool no per_call pattern can reach stays free of it
    const other = auth.root(a, { tools: [...tools, { type: 'tool_access', tools: ['billing.refund'] }] })
    expect(narrow(other, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['billing.refund'] }] }).authorization_details[0]?.per_call).toBeUndefined()
    const kept = narrow(r, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ ...plain[0]!, per_call: true }] })
    expect(kept.authorization_details[0]?.per_call).toBe(true)
  })
  it('a per_call grant limited to another audience does not bind a child at this one', () => {
    const r = auth.root(a, { tools: [{ type: 'tool_access', tools: ['files.*'], per_call: true, locations: [AUD2] }, { type: 'tool_access', tools: ['files.read'] }] })
    const child = narrow(r, a, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['files.read'] }] })
    expect(child.authorization_details[0]?.per_call).toBeUndefined()
  })
})

describe('§4 a request naming no tool stays refused under narrowing when the parent allows only per_call there (outside probe)', () => {
  // the guard refuses a tool-less request when every grant for its audience is per_call; a child
  // with no grant there at all (tools: [], or its grant moved to another location) must not pass
  const perCallOnly = [{ type: 'tool_access' as const, tools: ['billing.*'], per_call: true as const }]
  const url = 'https://tools.example/mcp'
  const request = (holder: Ed25519Key, token: string) => auth.guard().verifyRequest({
    method: 'POST', url, headers: { authorization: `DPoP ${token}`, dpop: createProof(holder, { accessToken: token, method: 'POST', url }) },
  })
  it('the root is refused without a tool; a child dropping every grant at that audience is a narrowing error', async () => {
    // per_call only at AUD; AUD2 has an ordinary grant
    const r = auth.root(a, { audiences: [AUD, AUD2], tools: [{ ...perCallOnly[0]!, locations: [AUD] }, { type: 'tool_access', tools: ['files.read'], locations: [AUD2] }], offline: { maxHops: 2 } })
    await expectReject(request(a, r.token), 'CALL_CREDENTIAL_REQUIRED')
    const actor = { id: b.did, jkt: b.jkt }
    for (const tools of [[], [{ type: 'tool_access' as const, tools: ['files.read'], locations: [AUD2] }]]) {
      const e = expectCode(() => narrow(r, a, { kind: 'delegation', actor, tools }), 'NARROWING_TOOL')
      expect(e.detail).toMatchObject({ rule: 'per-call', audience: AUD })
      // offline: the holder alone cannot make that hop either (attenuateMandate runs the same narrowing)
      expect(() => attenuateMandate(r.token, a, { kind: 'delegation', actor, tools }, { now: auth.now })).toThrow(/per-call|per_call/)
    }
    // leaving the audience out, or keeping a per_call grant there, is a narrowing
    expect(narrow(r, a, { kind: 'delegation', actor, audiences: [AUD2], tools: [] }).aud).toBe(AUD2)
    const kept = narrow(r, a, { kind: 'delegation', actor, tools: [{ type: 'tool_access', tools: ['billing.refund'], per_call: true, locations: [AUD] }] })
    await expectReject(request(b, signed(kept).token), 'CALL_CREDENTIAL_REQUIRED')
  })
  it('a parent with no grant at the audience (scope only) still delegates without grants', async () => {
    const r = auth.root(a, { tools: [] })
    const child = signed(narrow(r, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [] }))
    expect((await request(b, child.token)).mode).toBe('mandate')
  })
})

describe('§4 malformed requests are typed refusals, never a TypeError (outside probe)', () => {
  const bad: [string, unknown, string][] = [
    ['scopes {}', { kind: 'delegation', actor: { id: 'did:key:z', jkt: 'x' }, scopes: {} }, 'NARROWING_SCOPE'],
    ['scopes null', { kind: 'audience', audience: AUD, scopes: null }, 'NARROWING_SCOPE'],
    ['scopes 7', { kind: 'call', audience: AUD, tool: 'files.read', arguments: {}, scopes: 7 }, 'NARROWING_SCOPE'],
    ['audiences {}', { kind: 'delegation', actor: { id: 'did:key:z', jkt: 'x' }, audiences: {} }, 'NARROWING_AUDIENCE'],
    ['audiences 3', { kind: 'delegation', actor: { id: 'did:key:z', jkt: 'x' }, audiences: 3 }, 'NARROWING_AUDIENCE'],
    ['actor missing', { kind: 'delegation' }, 'NARROWING_CHAIN'],
    ['actor null', { kind: 'delegation', actor: null }, 'NARROWING_CHAIN'],
    ['actor id 5', { kind: 'delegation', actor: { id: 5, jkt: 'x' } }, 'NARROWING_CHAIN'],
  ]
  for (const [name, req, code] of bad) {
    it(name, () => {
      expectCode(() => narrow(root, a, req as NarrowingRequest), code as Parameters<typeof expectCode>[1])
    })
  }
})
