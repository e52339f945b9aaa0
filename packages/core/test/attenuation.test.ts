// Offline attenuation (issue #13): holder-signed hops appended to an Authority-signed root, verified
// hop by hop by re-running the Authority's own narrowing. Happy paths, then the adversarial set: every
// widening at a hop, wrong keys, broken links, splices, oversized chains, header and typ confusion.
// Real keys and real signatures; hand-made hops are signed by the real holder key so that only the rule
// under test can refuse them.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import {
  attenuateMandate, b64uEncode, createLocalKeySet, jwkThumbprint, createOfflineChainCache, createProof, cryptoBackend, decodeOfflineChainUnverified, Ed25519Key, isOfflineChain, MandateError, narrowMandate,
  isHopJti, parseCompactJws, randomHopId, randomId, tokenHash, verifyOfflineChain, verifyProof, HOP_TYP, MAX_CHAIN_LENGTH,
  type MandateClaims, type MandateErrorCode, type NarrowingRequest, type RootGrantRequest,
} from '@mandate/core'
import { didKeyOfCheckedRaw, importHopKey } from '../src/attenuation/hop_key.js'
import { b64uDecode } from '../src/encoding/base64url.js'
import { didKeyFromRaw } from '../src/identity/did_key.js'
import { AUD, AUD2, expectCode, expectReject, ISSUER, TestAuthority } from './helpers.js'

let auth: TestAuthority
let a: Ed25519Key
let b: Ed25519Key
let c: Ed25519Key
let d: Ed25519Key

beforeEach(() => {
  auth = new TestAuthority()
  a = Ed25519Key.generate()
  b = Ed25519Key.generate()
  c = Ed25519Key.generate()
  d = Ed25519Key.generate()
})

const offlineRoot = (maxHops = 3, overrides: Partial<RootGrantRequest> = {}) => auth.root(a, { offline: { maxHops }, ...overrides })
const verify = (presented: string, extra: Record<string, unknown> = {}) =>
  verifyOfflineChain(presented, { issuer: ISSUER, keys: auth.keys, now: auth.now, ...extra })
const delegation = (to: Ed25519Key, extra: Record<string, unknown> = {}): NarrowingRequest => ({ kind: 'delegation', actor: { id: to.did, jkt: to.jkt }, ...extra }) as NarrowingRequest
const attenuate = (presented: string, holder: Ed25519Key, req: NarrowingRequest, now = auth.now) => attenuateMandate(presented, holder, req, { now })
const enc = new TextEncoder()

const lastPart = (presented: string) => presented.split('~').at(-1) as string
const payloadOf = (jws: string) => JSON.parse(Buffer.from(jws.split('.')[1] as string, 'base64url').toString()) as MandateClaims & Record<string, unknown>

/** Sign a hop from raw header and payload text with `key` (whatever the header claims). */
function rawHop(header: string, payload: string, key: Ed25519Key): string {
  const input = `${b64uEncode(header)}.${b64uEncode(payload)}`
  return `${input}.${b64uEncode(key.sign(enc.encode(input)))}`
}
const hopHeader = (key: Ed25519Key, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ alg: 'EdDSA', typ: HOP_TYP, jwk: { kty: 'OKP', crv: 'Ed25519', x: key.publicJwk.x }, ...extra })
/** A hop with the given claims, signed by `key` under `key`'s jwk. */
const signHop = (claims: object, key: Ed25519Key, headerExtra: Record<string, unknown> = {}) => rawHop(hopHeader(key, headerExtra), JSON.stringify(claims), key)

/** The legitimate hop claims (exactly what attenuateMandate would sign), from a chain's last link. */
function hopClaims(presented: string, holder: Ed25519Key, req: NarrowingRequest, now = auth.now): MandateClaims {
  const last = lastPart(presented)
  return narrowMandate(payloadOf(last), req, {
    issuer: ISSUER, now, jti: randomHopId(), parentToken: last, caller: { id: holder.did, jkt: holder.jkt }, offlineHop: true,
    maxMandateLifetime: 86_400, maxCallLifetime: 60, maxAudienceLifetime: 900,
  })
}

async function expectInvalid(p: Promise<unknown>, hop: number, rule?: string, cause?: MandateErrorCode): Promise<MandateError> {
  const err = await expectReject(p, 'ATTENUATION_INVALID')
  expect(err.detail?.hop).toBe(hop)
  if (rule !== undefined) expect(err.detail?.rule).toBe(rule)
  if (cause !== undefined) expect(err.detail?.cause_code).toBe(cause)
  return err
}

describe('happy paths', () => {
  it('a delegation hop: the sub-agent holds a narrower mandate bound to its key, with one fewer offline hop', async () => {
    const root = offlineRoot(3)
    const chain = attenuate(root.token, a, delegation(b, { scopes: ['read'], audiences: [AUD] }))
    expect(isOfflineChain(chain)).toBe(true)
    expect(chain.split('~')).toHaveLength(2)
    const v = await verify(chain, { audience: AUD })
    expect(v.root.jti).toBe(root.claims.jti)
    expect(v.claims.client_id).toBe(b.did)
    expect(v.claims.cnf.jkt).toBe(b.jkt)
    expect(v.holderJkt).toBe(b.jkt)
    expect(v.claims.act).toEqual({ sub: b.did, act: { sub: a.did } })
    expect(v.claims.scope).toBe('read')
    expect(v.claims.aud).toBe(AUD)
    expect(v.claims.offline).toEqual({ max_hops: 2 })
    expect(v.claims.delegation).toMatchObject({ depth: 1, parent: root.claims.jti, parent_hash: tokenHash(root.token), ancestors: [root.claims.jti] })
    expect(v.claims.txn).toBe(root.claims.txn)
    expect(v.claims.sub).toBe(root.claims.sub)
    expect(v.hops).toEqual([{
      jti: v.claims.jti, holder: b.did, parent: root.claims.jti, depth: 1, kind: 'delegation', iat: auth.now, exp: v.claims.exp, tools: ['files.*', 'billing.refund'],
    }])
  })

  it('an audience hop: same holder, one audience, credential "audience", no further delegation or offline hop', async () => {
    const root = offlineRoot(2)
    const chain = attenuate(root.token, a, { kind: 'audience', audience: AUD2 })
    const v = await verify(chain, { audience: AUD2 })
    expect(v.claims).toMatchObject({ credential: 'audience', aud: AUD2, client_id: a.did, delegation: { depth: 0, max_depth: 0, ancestors: [root.claims.jti] } })
    expect(v.claims.offline).toBeUndefined()
    expect(v.claims.exp - v.claims.iat).toBe(900)
    expect(v.hops[0]?.kind).toBe('audience')
    await expectReject(verify(chain, { audience: AUD }), 'AUDIENCE_MISMATCH')
    // terminal
    expectCode(() => attenuate(chain, a, { kind: 'call', audience: AUD2, tool: 'files.read', arguments: { path: '/data/x' } }), 'ATTENUATION_NOT_ALLOWED')
  })

  it('a call hop: one tool, one argument digest, single use, 60 s, terminal; a proof by the holder over the whole chain verifies', async () => {
    const root = offlineRoot(1)
    const args = { path: '/data/report.txt', amount: 5 }
    const chain = attenuate(root.token, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args })
    const v = await verify(chain, { audience: AUD })
    expect(v.claims.call?.tool).toBe('files.read')
    expect(v.claims.max_uses).toBe(1)
    expect(v.claims.exp - v.claims.iat).toBe(60)
    expect(v.claims.authorization_details).toEqual([{ type: 'tool_access', tools: ['files.read'], constraints: root.claims.authorization_details[0]?.constraints }])
    expect(v.hops[0]?.kind).toBe('call')
    const proof = createProof(a, { accessToken: chain, audience: AUD, tool: 'files.read', arguments: args })
    await verifyProof(proof, { accessToken: chain, jkt: v.holderJkt, audience: AUD, tool: 'files.read', argumentsDigest: v.claims.call?.args as string, now: auth.now })
    expectCode(() => attenuate(chain, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args }), 'ATTENUATION_NOT_ALLOWED')
  })

  it('three hops a → b → c → one call by c; the summaries list every hop', async () => {
    const root = offlineRoot(3)
    const h1 = attenuate(root.token, a, delegation(b))
    const h2 = attenuate(h1, b, delegation(c, { scopes: ['read'], tools: [{ type: 'tool_access', tools: ['files.read'], constraints: { amount: { type: 'max', value: 10 }, path: { type: 'path_prefix', prefix: '/data/c' } } }] }), auth.now + 5)
    const h3 = attenuate(h2, c, { kind: 'call', audience: AUD2, tool: 'files.read', arguments: { path: '/data/c/x', amount: 1 } }, auth.now + 9)
    const v = await verify(h3, { now: auth.now + 10 })
    expect(v.hops.map((h) => [h.kind, h.holder, h.depth])).toEqual([['delegation', b.did, 1], ['delegation', c.did, 2], ['call', c.did, 2]])
    expect(v.claims.delegation.ancestors).toHaveLength(3)
    expect(v.claims.delegation.ancestors[0]).toBe(root.claims.jti)
    expect(v.hops[2]?.iat).toBe(auth.now + 9)
    expect(v.holderJkt).toBe(c.jkt)
    // each hop is a readable, standard-shaped JWT
    const decoded = decodeOfflineChainUnverified(h3)
    expect(decoded.hops.map((h) => h.header.typ)).toEqual([HOP_TYP, HOP_TYP, HOP_TYP])
    expect(decoded.hops[1]?.payload.client_id).toBe(c.did)
  })

  it('the root may be an Authority-delegated mandate (which keeps the offline allowance)', async () => {
    const root = offlineRoot(2)
    const child = await auth.narrow(root.token, a, delegation(b))
    expect(child.claims.offline).toEqual({ max_hops: 2 })
    const chain = attenuate(child.token, b, delegation(c))
    const v = await verify(chain)
    expect(v.claims.delegation.depth).toBe(2)
    expect(v.claims.offline).toEqual({ max_hops: 1 })
  })

  it('offlineHops lowers (0 drops) the allowance, and the holder clock behind the root iat is clamped', async () => {
    const root = offlineRoot(3)
    const chain = attenuate(root.token, a, delegation(b, { offlineHops: 0 }), auth.now - 100)
    const v = await verify(chain)
    expect(v.claims.offline).toBeUndefined()
    expect(v.claims.iat).toBe(auth.now)
    expectCode(() => attenuate(chain, b, delegation(c)), 'ATTENUATION_NOT_ALLOWED')
  })

  it('time is checked against the wall clock once, on the last link, with skew', async () => {
    const root = offlineRoot(1)
    const chain = attenuate(root.token, a, delegation(b, { expiresIn: 120 }))
    await verify(chain, { now: auth.now + 120 + 29, skew: 30 })
    await expectReject(verify(chain, { now: auth.now + 120 + 30, skew: 30 }), 'TOKEN_EXPIRED')
    await expectReject(verify(chain, { now: auth.now - 31, skew: 30 }), 'TOKEN_NOT_YET_VALID')
  })
})

describe('attenuateMandate refuses', () => {
  it('a mandate without the offline claim, or with no hops left', () => {
    const plain = auth.root(a)
    expectCode(() => attenuate(plain.token, a, delegation(b)), 'ATTENUATION_NOT_ALLOWED')
    const chain = attenuate(offlineRoot(1).token, a, delegation(b))
    expectCode(() => attenuate(chain, b, delegation(c)), 'ATTENUATION_NOT_ALLOWED')
  })
  it('a holder that is not the key the last link is bound to', () => {
    const root = offlineRoot(2)
    expectCode(() => attenuate(root.token, b, delegation(c)), 'ATTENUATION_NOT_ALLOWED')
    const chain = attenuate(root.token, a, delegation(b))
    expectCode(() => attenuate(chain, a, delegation(c)), 'ATTENUATION_NOT_ALLOWED')
  })
  it('a key object without its private half', () => {
    const fake = { did: a.did, jkt: a.jkt, publicJwk: a.publicJwk, sign: () => new Uint8Array(64) } as unknown as Ed25519Key
    expectCode(() => attenuate(offlineRoot().token, fake, delegation(b)), 'CONFIG_INVALID')
  })
  it('widening requests with the narrowing code', () => {
    const root = offlineRoot(2)
    expectCode(() => attenuate(root.token, a, delegation(b, { scopes: ['admin'] })), 'NARROWING_SCOPE')
    expectCode(() => attenuate(root.token, a, delegation(b, { offlineHops: 2 })), 'NARROWING_CLAIM')
    expectCode(() => attenuate(root.token, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: '/etc/passwd' } }), 'NARROWING_CONSTRAINT')
  })
})

describe('every widening at an offline hop is refused', () => {
  // a legitimate delegation a → b from an offline root, then one claim changed and re-signed by a
  type Mutation = [name: string, mutate: (h: Record<string, unknown>, root: MandateClaims) => void, cause?: MandateErrorCode]
  const grant = (h: Record<string, unknown>) => (h.authorization_details as Record<string, unknown>[])[0] as Record<string, unknown>
  const mutations: Mutation[] = [
    ['scope', (h) => { h.scope = 'read write admin' }, 'NARROWING_SCOPE'],
    ['audience', (h) => { h.aud = [AUD, 'https://evil.example/mcp'] }, 'NARROWING_AUDIENCE'],
    ['tool', (h) => { grant(h).tools = ['files.*', 'shell.exec'] }, 'NARROWING_TOOL'],
    ['tool pattern wider than the parent', (h) => { grant(h).tools = ['*'] }, 'NARROWING_TOOL'],
    ['constraint dropped', (h) => { delete grant(h).constraints }, 'NARROWING_CONSTRAINT'],
    ['constraint loosened', (h) => { grant(h).constraints = { amount: { type: 'max', value: 1000 }, path: { type: 'path_prefix', prefix: '/data' } } }, 'NARROWING_CONSTRAINT'],
    ['lifetime beyond the parent', (h, r) => { h.exp = r.exp + 60 }, 'NARROWING_TIME'],
    ['nbf before the parent', (h, r) => { h.nbf = r.nbf - 10 }],
    ['max depth grown', (h, r) => { (h.delegation as Record<string, unknown>).max_depth = r.delegation.max_depth + 1 }],
    ['depth not incremented', (h) => { (h.delegation as Record<string, unknown>).depth = 0; (h.delegation as Record<string, unknown>).max_depth = 4 }],
    ['budget grown', (h) => { h.budget = { amount: 500, unit: 'USD' } }, 'NARROWING_BUDGET'],
    ['budget unit changed', (h) => { h.budget = { amount: 5, unit: 'EUR' } }, 'NARROWING_BUDGET'],
    ['budget dropped', (h) => { delete h.budget }],
    ['max_uses grown', (h) => { h.max_uses = 11 }, 'NARROWING_BUDGET'],
    ['max_uses dropped', (h) => { delete h.max_uses }],
    ['offline hops not decremented', (h) => { h.offline = { max_hops: 3 } }, 'NARROWING_CLAIM'],
    ['credential claim added', (h) => { h.credential = 'audience' }],
    ['approval claim added', (h) => { h.approval = { id: 'apr_1', approver: 'alice', approved_at: auth.now } }],
    ['call claim added to a delegation', (h) => { h.call = { tool: 'files.read', args: 'A'.repeat(43) } }],
    ['purpose changed', (h) => { h.purpose = 'something else' }],
    ['purpose dropped', (h) => { delete h.purpose }],
    ['subject changed', (h) => { h.sub = 'mallory' }],
    ['task id changed', (h) => { h.txn = randomId() }],
    ['issuer changed', (h) => { h.iss = 'https://evil.example' }],
    ['earlier actor rewritten', (h) => { h.act = { sub: b.did, act: { sub: c.did } } }],
    ['ancestors rewritten', (h) => { (h.delegation as Record<string, unknown>).ancestors = [randomId()] }],
    ['unknown claim', (h) => { h.admin = true }, 'CLAIM_UNKNOWN'],
    ['iat before the parent', (h, r) => { h.iat = r.iat - 5 }],
    ['per_call: false (only true is a valid value)', (h) => { grant(h).per_call = false }, 'CLAIM_INVALID'],
  ]
  for (const [name, mutate, cause] of mutations) {
    it(`refuses: ${name}`, async () => {
      const root = offlineRoot(3)
      const h = hopClaims(root.token, a, delegation(b)) as unknown as Record<string, unknown>
      mutate(h, root.claims)
      const err = await expectInvalid(verify(`${root.token}~${signHop(h, a)}`), 1)
      if (cause) expect(err.detail?.cause_code).toBe(cause)
    })
  }

  it('refuses dropping per_call (a per_call grant can only be narrowed to a per_call grant)', async () => {
    const root = offlineRoot(2, { tools: [{ type: 'tool_access', tools: ['billing.*'], per_call: true }, { type: 'tool_access', tools: ['files.*'] }] })
    const legit = attenuate(root.token, a, delegation(b))
    const v = await verify(legit)
    expect(v.claims.authorization_details[0]?.per_call).toBe(true)
    const h = hopClaims(root.token, a, delegation(b)) as unknown as Record<string, unknown>
    delete grant(h).per_call
    await expectInvalid(verify(`${root.token}~${signHop(h, a)}`), 1, 'narrowing', 'NARROWING_TOOL')
    // and through attenuateMandate with an explicit grant
    expectCode(() => attenuate(root.token, a, delegation(b, { tools: [{ type: 'tool_access', tools: ['billing.refund'] }] })), 'NARROWING_TOOL')
    // a call hop for a per_call tool carries per_call (so the guard refuses it: offline is never Authority-minted)
    const call = attenuate(root.token, a, { kind: 'call', audience: AUD, tool: 'billing.refund', arguments: {} })
    expect((await verify(call)).claims.authorization_details[0]?.per_call).toBe(true)
    const hc = hopClaims(root.token, a, { kind: 'call', audience: AUD, tool: 'billing.refund', arguments: {} }) as unknown as Record<string, unknown>
    delete grant(hc).per_call
    await expectInvalid(verify(`${root.token}~${signHop(hc, a)}`), 1, 'narrowing', 'NARROWING_TOOL')
  })

  it('refuses a call hop whose grant is wider than the parent, or carries more than its tool', async () => {
    const root = offlineRoot(2)
    const req: NarrowingRequest = { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: '/data/a', amount: 1 } }
    const loosened = hopClaims(root.token, a, req) as unknown as Record<string, unknown>
    grant(loosened).constraints = { path: { type: 'path_prefix', prefix: '/' } }
    await expectInvalid(verify(`${root.token}~${signHop(loosened, a)}`), 1, 'narrowing', 'NARROWING_CONSTRAINT')
    const twoTools = hopClaims(root.token, a, req) as unknown as Record<string, unknown>
    grant(twoTools).tools = ['files.read', 'files.write']
    await expectInvalid(verify(`${root.token}~${signHop(twoTools, a)}`), 1, 'narrowing', 'NARROWING_CLAIM')
    const longer = hopClaims(root.token, a, req) as unknown as Record<string, unknown>
    longer.exp = (longer.iat as number) + 61
    await expectInvalid(verify(`${root.token}~${signHop(longer, a)}`), 1, 'lifetime-cap', 'LIFETIME_EXCEEDED')
    const reusable = hopClaims(root.token, a, req) as unknown as Record<string, unknown>
    reusable.max_uses = 5
    await expectInvalid(verify(`${root.token}~${signHop(reusable, a)}`), 1, 'narrowing-mismatch')
  })

  it('refuses an audience hop that lives past its cap or names a second audience', async () => {
    const root = offlineRoot(2)
    const h = hopClaims(root.token, a, { kind: 'audience', audience: AUD }) as unknown as Record<string, unknown>
    h.exp = (h.iat as number) + 901
    await expectInvalid(verify(`${root.token}~${signHop(h, a)}`), 1, 'lifetime-cap')
    const h2 = hopClaims(root.token, a, { kind: 'audience', audience: AUD }) as unknown as Record<string, unknown>
    h2.aud = [AUD, AUD2]
    await expectInvalid(verify(`${root.token}~${signHop(h2, a)}`), 1, 'hop-claims', 'CHAIN_INCONSISTENT')
  })

  it('refuses a hop that restates its parent with a new jti but the same holder (not a narrowing kind)', async () => {
    const root = offlineRoot(2)
    const h = { ...root.claims, jti: randomHopId(), delegation: { ...root.claims.delegation } }
    await expectInvalid(verify(`${root.token}~${signHop(h, a)}`), 1, 'parent')
  })
})

describe('keys and links', () => {
  it('a hop signed by the wrong key (its own jwk, not the bound one)', async () => {
    const root = offlineRoot(2)
    const h = hopClaims(root.token, a, delegation(b))
    await expectInvalid(verify(`${root.token}~${signHop(h, c)}`), 1, 'signer-bound')
  })
  it('a hop naming the bound key in its header but signed by another key', async () => {
    const root = offlineRoot(2)
    const h = hopClaims(root.token, a, delegation(b))
    await expectInvalid(verify(`${root.token}~${rawHop(hopHeader(a), JSON.stringify(h), c)}`), 1, 'signature')
  })
  it('a hop bound to a key that did not sign the next hop', async () => {
    const root = offlineRoot(3)
    const h1 = attenuate(root.token, a, delegation(b))
    // c signs what should have been b's hop
    const h2 = hopClaims(h1, b, delegation(d))
    await expectInvalid(verify(`${h1}~${signHop(h2, c)}`), 2, 'signer-bound')
    // and the holder cannot produce it with the wrong key either
    expectCode(() => attenuate(h1, c, delegation(d)), 'ATTENUATION_NOT_ALLOWED')
  })
  it('reordered, dropped and duplicated hops', async () => {
    const root = offlineRoot(3)
    const full = attenuate(attenuate(attenuate(root.token, a, delegation(b)), b, delegation(c)), c, delegation(d))
    const [r, h1, h2, h3] = full.split('~') as [string, string, string, string]
    await verify(full)
    await expectInvalid(verify([r, h2, h1, h3].join('~')), 1, 'signer-bound')
    await expectInvalid(verify([r, h1, h3, h2].join('~')), 2, 'signer-bound')
    await expectInvalid(verify([r, h2, h3].join('~')), 1, 'signer-bound')
    await expectInvalid(verify([r, h1, h3].join('~')), 2, 'signer-bound')
    await expectInvalid(verify([r, h1, h1].join('~')), 2, 'signer-bound')
    await expectInvalid(verify([r, h1, h2, h2].join('~')), 3, 'signer-bound')
  })
  it('a hop beyond the root\'s offline-hop limit', async () => {
    const root = offlineRoot(2)
    const two = attenuate(attenuate(root.token, a, delegation(b)), b, delegation(c))
    expect((await verify(two)).claims.offline).toBeUndefined()
    expectCode(() => attenuate(two, c, delegation(d)), 'ATTENUATION_NOT_ALLOWED')
    // hand-made third hop by the real holder c, as an Authority would narrow (no offline check)
    const last = lastPart(two)
    const h3 = narrowMandate(payloadOf(last), delegation(d), { issuer: ISSUER, now: auth.now, jti: randomHopId(), parentToken: last, caller: { id: c.did, jkt: c.jkt } })
    await expectInvalid(verify(`${two}~${signHop(h3, c)}`), 3, 'hop-limit')
    // within the count but after a hop that gave up its allowance
    const root3 = offlineRoot(3)
    const gaveUp = attenuate(root3.token, a, delegation(b, { offlineHops: 0 }))
    const l = lastPart(gaveUp)
    const next = narrowMandate(payloadOf(l), delegation(c), { issuer: ISSUER, now: auth.now, jti: randomHopId(), parentToken: l, caller: { id: b.did, jkt: b.jkt } })
    await expectInvalid(verify(`${gaveUp}~${signHop(next, b)}`), 2, 'narrowing', 'ATTENUATION_NOT_ALLOWED')
  })
  it('a hop that reuses the jti of a link before it', async () => {
    const root = offlineRoot(3)
    const h1 = attenuate(root.token, a, delegation(b))
    const reuse = (jti: string) => {
      const last = lastPart(h1)
      return narrowMandate(payloadOf(last), delegation(c), { issuer: ISSUER, now: auth.now, jti, parentToken: last, caller: { id: b.did, jkt: b.jkt }, offlineHop: true })
    }
    // the root's id (an Authority id, 22 characters) is not even a hop id
    await expectInvalid(verify(`${h1}~${signHop(reuse(root.claims.jti), b)}`), 2, 'jti-form')
    await expectInvalid(verify(`${h1}~${signHop(reuse(payloadOf(lastPart(h1)).jti), b)}`), 2, 'jti-reuse')
    await verify(`${h1}~${signHop(reuse(randomHopId()), b)}`)
  })
  it('a hop cannot take an id the Authority mints (128-bit, 22 characters): single use and revocation stay apart', async () => {
    const root = offlineRoot(3)
    const victim = auth.root(c) // an Authority credential of someone else: its jti is known from a log
    const last = root.token
    const named = (jti: string) => narrowMandate(root.claims, delegation(b), { issuer: ISSUER, now: auth.now, jti, parentToken: last, caller: { id: a.did, jkt: a.jkt }, offlineHop: true })
    await expectInvalid(verify(`${root.token}~${signHop(named(victim.claims.jti), a)}`), 1, 'jti-form')
    for (const jti of [randomId(), randomHopId().slice(0, 42), `${randomHopId()}A`.slice(0, 64)]) {
      await expectInvalid(verify(`${root.token}~${signHop(named(jti), a)}`), 1, 'jti-form')
    }
    // not base64url at all: refused with the claims already
    await expectInvalid(verify(`${root.token}~${signHop(named(`${randomHopId().slice(0, 42)}=`), a)}`), 1, 'hop-claims')
    expectCode(() => attenuateMandate(root.token, a, delegation(b), { now: auth.now, jti: victim.claims.jti }), 'ATTENUATION_NOT_ALLOWED')
    expect(isHopJti(payloadOf(lastPart(attenuate(root.token, a, delegation(b)))).jti)).toBe(true)
  })
  it('a root without the offline claim cannot carry hops', async () => {
    const root = auth.root(a)
    const h = narrowMandate(root.claims, delegation(b), { issuer: ISSUER, now: auth.now, jti: randomId(), parentToken: root.token, caller: { id: a.did, jkt: a.jkt } })
    await expectInvalid(verify(`${root.token}~${signHop(h, a)}`), 0, 'offline-not-allowed')
  })
  it('a chain spliced from two chains of the same agent and Authority', async () => {
    const r1 = offlineRoot(3)
    const r2 = offlineRoot(3)
    const c1 = attenuate(r1.token, a, delegation(b))
    const c2 = attenuate(r2.token, a, delegation(b))
    await verify(c1)
    await verify(c2)
    // r1 with c2's hop: names the other parent
    await expectInvalid(verify(`${r1.token}~${lastPart(c2)}`), 1, 'parent')
    // c2's hop re-pointed at r1 (parent jti) but still hashing r2
    const h = payloadOf(lastPart(c2)) as unknown as Record<string, unknown>
    const del = h.delegation as Record<string, unknown>
    del.parent = r1.claims.jti
    del.ancestors = [r1.claims.jti]
    await expectInvalid(verify(`${r1.token}~${signHop(h, a)}`), 1, 'parent-hash')
    // … and with r1's hash too: r2's task id and times give it away
    del.parent_hash = tokenHash(r1.token)
    await expectInvalid(verify(`${r1.token}~${signHop(h, a)}`), 1, 'narrowing-mismatch')
    // a two-hop splice: c1's first hop followed by c2's second hop
    const c1b = attenuate(c1, b, delegation(c))
    const c2b = attenuate(c2, b, delegation(c))
    await expectInvalid(verify(`${c1}~${lastPart(c2b)}`), 2, 'parent')
    await verify(c1b)
  })
  it('a low-order or malformed hop key, and a did:key that is not the holder', async () => {
    const root = offlineRoot(2)
    const h = hopClaims(root.token, a, delegation(b))
    const lowOrder = b64uEncode(new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? 1 : 0)))
    const tok = rawHop(JSON.stringify({ alg: 'EdDSA', typ: HOP_TYP, jwk: { kty: 'OKP', crv: 'Ed25519', x: lowOrder } }), JSON.stringify(h), a)
    // a key that is not the bound one is refused by its thumbprint, before any point arithmetic
    await expectInvalid(verify(`${root.token}~${tok}`), 1, 'signer-bound')
    const short = rawHop(JSON.stringify({ alg: 'EdDSA', typ: HOP_TYP, jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } }), JSON.stringify(h), a)
    await expectInvalid(verify(`${root.token}~${short}`), 1, 'signer-bound')
    // and the point check still stands behind it (a bound low-order key cannot exist: did:key refuses it)
    const lowJwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: lowOrder }
    expectCode(() => importHopKey(lowJwk, jwkThumbprint(lowJwk)), 'KEY_LOW_ORDER')
    const shortJwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: 'AAAA' }
    expectCode(() => importHopKey(shortJwk, jwkThumbprint(shortJwk)), 'KEY_INVALID')
    expect(importHopKey({ kty: 'OKP', crv: 'Ed25519', x: a.publicJwk.x }, a.jkt)?.did).toBe(a.did)
    // a strong did named as already checked exempts only that very key from the point check
    expectCode(() => importHopKey(lowJwk, jwkThumbprint(lowJwk), a.did), 'KEY_LOW_ORDER')
    expectCode(() => importHopKey(shortJwk, jwkThumbprint(shortJwk), a.did), 'KEY_INVALID')
    const fresh = Ed25519Key.generate()
    expect(importHopKey({ kty: 'OKP', crv: 'Ed25519', x: fresh.publicJwk.x }, fresh.jkt, fresh.did)?.did).toBe(fresh.did)
    // the hop key's did:key skips the second point check, never the encoding: same string as did_key's
    for (let i = 0; i < 64; i++) {
      const raw = b64uDecode(Ed25519Key.generate().publicJwk.x)
      expect(didKeyOfCheckedRaw(raw)).toBe(didKeyFromRaw(raw))
    }
    expect(importHopKey({ kty: 'OKP', crv: 'Ed25519', x: a.publicJwk.x }, b.jkt)).toBeUndefined()
    // the same key under another spelling of its did:key (the versioned did:key:1:…) is no name at
    // all: refused wherever an identifier is read, so it can never be a second name of one key
    const alias = `did:key:1:${a.did.slice('did:key:'.length)}`
    expectCode(() => auth.root(a, { offline: { maxHops: 2 }, agent: { id: alias, jkt: a.jkt } }), 'CHAIN_INCONSISTENT')
    for (const extra of [{ kid: a.kid }, { d: 'AAAA' }, { alg: 'EdDSA' }, { use: 'sig' }]) {
      const t = rawHop(JSON.stringify({ alg: 'EdDSA', typ: HOP_TYP, jwk: { kty: 'OKP', crv: 'Ed25519', x: a.publicJwk.x, ...extra } }), JSON.stringify(h), a)
      await expectInvalid(verify(`${root.token}~${t}`), 1, 'hop-key')
    }
    const ec = rawHop(JSON.stringify({ alg: 'EdDSA', typ: HOP_TYP, jwk: { kty: 'EC', crv: 'P-256', x: a.publicJwk.x } }), JSON.stringify(h), a)
    await expectInvalid(verify(`${root.token}~${ec}`), 1, 'hop-key')
  })
})

describe('headers and typ confusion', () => {
  const cases: [string, Record<string, unknown>, string, MandateErrorCode?][] = [
    ['alg none', { alg: 'none' }, 'hop-jws', 'ALG_NOT_ALLOWED'],
    ['alg HS256', { alg: 'HS256' }, 'hop-jws', 'ALG_NOT_ALLOWED'],
    ['alg ES256', { alg: 'ES256' }, 'hop-jws', 'ALG_NOT_ALLOWED'],
    ['kid', { kid: 'k1' }, 'hop-header'],
    ['jku', { jku: 'https://evil.example/jwks' }, 'hop-jws', 'HEADER_NOT_ALLOWED'],
    ['x5u', { x5u: 'https://evil.example/cert' }, 'hop-jws', 'HEADER_NOT_ALLOWED'],
    ['x5c', { x5c: ['MIIB'] }, 'hop-jws', 'HEADER_NOT_ALLOWED'],
    ['crit', { crit: ['exp'] }, 'hop-jws', 'CRIT_UNSUPPORTED'],
    ['typ at+jwt (a root presented as a hop)', { typ: 'at+jwt' }, 'hop-jws', 'TYP_MISMATCH'],
    ['typ dpop+jwt (a proof presented as a hop)', { typ: 'dpop+jwt' }, 'hop-jws', 'TYP_MISMATCH'],
    ['typ in another case', { typ: 'Mandate-Hop+JWT' }, 'hop-typ'],
    ['typ with application/ prefix', { typ: `application/${HOP_TYP}` }, 'hop-typ'],
    ['typ absent', { typ: undefined }, 'hop-jws', 'TYP_MISMATCH'],
    ['jwk absent', { jwk: undefined }, 'hop-jws'],
  ]
  for (const [name, extra, rule, cause] of cases) {
    it(`refuses a hop header with ${name}`, async () => {
      const root = offlineRoot(2)
      const h = hopClaims(root.token, a, delegation(b))
      await expectInvalid(verify(`${root.token}~${signHop(h, a, extra)}`), 1, rule, cause)
    })
  }
  it('accepts alg Ed25519 (RFC 9864 fully specified name)', async () => {
    const root = offlineRoot(2)
    await verify(`${root.token}~${signHop(hopClaims(root.token, a, delegation(b)), a, { alg: 'Ed25519' })}`)
  })
  it('refuses a root presented as a hop, a hop presented as a root, a DPoP proof as a hop', async () => {
    const root = offlineRoot(2)
    const chain = attenuate(root.token, a, delegation(b))
    const hop = lastPart(chain)
    await expectInvalid(verify(`${root.token}~${root.token}`), 1, 'hop-jws', 'TYP_MISMATCH')
    // the root keeps a mandate's own code: the hop's header has a jwk and no kid
    await expectReject(verify(`${hop}~${hop}`), 'HEADER_NOT_ALLOWED')
    const proof = createProof(a, { accessToken: root.token, audience: AUD })
    await expectInvalid(verify(`${root.token}~${proof}`), 1, 'hop-jws', 'TYP_MISMATCH')
    // a plain verifier of the root alone refuses the whole chain string, and so does a proof verifier
    await expectReject(verifyProof(chain, { audience: AUD }), 'TOKEN_MALFORMED')
    expectCode(() => parseCompactJws(chain, { typ: 'at+jwt', maxLength: 1 << 20 }), 'TOKEN_MALFORMED')
  })
  it('refuses duplicate JSON members and invalid JSON in a hop payload', async () => {
    const root = offlineRoot(2)
    const json = JSON.stringify(hopClaims(root.token, a, delegation(b)))
    const dup = `${json.slice(0, -1)},"sub":"mallory"}`
    await expectInvalid(verify(`${root.token}~${rawHop(hopHeader(a), dup, a)}`), 1, 'hop-jws', 'JSON_DUPLICATE_MEMBER')
    await expectInvalid(verify(`${root.token}~${rawHop(hopHeader(a), json.slice(0, -1), a)}`), 1, 'hop-jws')
  })
})

describe('chain syntax and size caps', () => {
  it('refuses `~` edge cases: no hop, empty parts, trailing and leading `~`', async () => {
    const root = offlineRoot(2)
    const chain = attenuate(root.token, a, delegation(b))
    await expectInvalid(verify(root.token), 0, 'no-hops')
    await expectInvalid(verify(`${root.token}~`), 1, 'syntax')
    await expectInvalid(verify(`${chain}~`), 2, 'syntax')
    await expectInvalid(verify(`~${chain}`), 0, 'syntax')
    await expectInvalid(verify(chain.replace('~', '~~')), 1, 'syntax')
    await expectInvalid(verify('~'), 0, 'syntax')
    await expectInvalid(verify(undefined as unknown as string), 0, 'syntax')
  })
  it('refuses more than 8 hops and more than 64 KiB before any signature work', async () => {
    const root = offlineRoot(2)
    const hop = lastPart(attenuate(root.token, a, delegation(b)))
    const nine = [root.token, ...Array<string>(9).fill(hop)].join('~')
    // the keys are never consulted: a resolver that throws would surface otherwise
    const keys = { resolve: () => { throw new Error('no signature work expected') } }
    await expectInvalid(verifyOfflineChain(nine, { issuer: ISSUER, keys, now: auth.now }), 0, 'hop-count')
    const huge = `${root.token}~${'A'.repeat(MAX_CHAIN_LENGTH)}`
    await expectInvalid(verifyOfflineChain(huge, { issuer: ISSUER, keys, now: auth.now }), 0, 'size')
    const bigPart = `${root.token}~${'A'.repeat(17 * 1024)}`
    await expectInvalid(verifyOfflineChain(bigPart, { issuer: ISSUER, keys, now: auth.now }), 1, 'size')
    // a malformed last hop is found before the root signature is checked
    const chain = attenuate(root.token, a, delegation(b))
    await expectInvalid(verifyOfflineChain(`${chain}~xx.yy.zz`, { issuer: ISSUER, keys, now: auth.now }), 2, 'hop-jws')
    // and a mis-linked last hop too
    await expectInvalid(verifyOfflineChain(`${chain}~${lastPart(chain)}`, { issuer: ISSUER, keys, now: auth.now }), 2, 'signer-bound')
  })
  it('refuses a root not signed by the trusted key with the mandate codes', async () => {
    const other = new TestAuthority()
    const root = other.root(a, { offline: { maxHops: 2 } })
    const chain = attenuateMandate(root.token, a, delegation(b), { now: other.now })
    await expectReject(verify(chain), 'KEY_NOT_FOUND')
    await expectReject(verifyOfflineChain(chain, { issuer: 'https://other.example', keys: other.keys, now: other.now }), 'ISSUER_MISMATCH')
    await verifyOfflineChain(chain, { issuer: ISSUER, keys: other.keys, now: other.now })
  })
  it('refuses a root past the guard\'s lifetime cap with the mandate code (a delegation hop nests inside it)', async () => {
    const root = offlineRoot(2, { expiresIn: 7200 })
    const chain = attenuate(root.token, a, delegation(b))
    await verify(chain)
    await expectReject(verify(chain, { caps: { mandate: 3600 } }), 'LIFETIME_EXCEEDED')
  })
})

describe('the cache of verified links', () => {
  const spyVerify = () => {
    let n = 0
    const original = cryptoBackend.verify
    const spy = vi.spyOn(cryptoBackend, 'verify').mockImplementation((...args) => {
      n++
      return original.apply(cryptoBackend, args)
    })
    return { count: () => n, restore: () => spy.mockRestore() }
  }

  it('verifies each link once: a repeated chain costs no signature, a new call hop on a known prefix one', async () => {
    const cache = createOfflineChainCache()
    const root = offlineRoot(3)
    const prefix = attenuate(root.token, a, delegation(b))
    const v1 = await verify(prefix, { cache })
    expect(cache.size).toBe(2)
    const spy = spyVerify()
    try {
      const v2 = await verify(prefix, { cache })
      expect(spy.count()).toBe(0)
      expect(v2.claims).toEqual(v1.claims)
      expect(v2.hops).toEqual(v1.hops)
      const call = attenuate(prefix, b, { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: '/data/x', amount: 1 } })
      const v3 = await verify(call, { cache })
      expect(spy.count()).toBe(1)
      expect(v3.hops.map((h) => h.kind)).toEqual(['delegation', 'call'])
    } finally {
      spy.restore()
    }
  })

  it('re-verifies the root when its kid resolves to another key, refuses it when the key is gone', async () => {
    const cache = createOfflineChainCache()
    const root = offlineRoot(2)
    const chain = attenuate(root.token, a, delegation(b))
    await verify(chain, { cache })
    const spy = spyVerify()
    try {
      // the same public key, imported again (a rotation that re-imports the key set)
      await verify(chain, { cache, keys: createLocalKeySet({ keys: [auth.key.publicJwk] }) })
      expect(spy.count()).toBe(1)
    } finally {
      spy.restore()
    }
    await expectReject(verify(chain, { cache, keys: createLocalKeySet({ keys: [Ed25519Key.generate().publicJwk] }) }), 'KEY_NOT_FOUND')
  })

  it('never reuses a link under other caps, a cached hop after another parent, or an expired link', async () => {
    const cache = createOfflineChainCache({ maxEntries: 8 })
    const r1 = offlineRoot(2)
    const r2 = offlineRoot(2)
    const c1 = attenuate(r1.token, a, delegation(b, { expiresIn: 100 }))
    await verify(c1, { cache })
    // under a smaller cap, the hop is checked again (and refused), not served from the cache
    await expectInvalid(verify(attenuate(r1.token, a, { kind: 'audience', audience: AUD }), { cache, caps: { audience: 60 } }), 1, 'lifetime-cap')
    await expectReject(verify(c1, { cache, caps: { mandate: 60 } }), 'LIFETIME_EXCEEDED')
    // c1's cached hop spliced after r2
    await verify(r2.token + '~' + lastPart(attenuate(r2.token, a, delegation(b))), { cache })
    await expectInvalid(verify(`${r2.token}~${lastPart(c1)}`, { cache }), 1, 'parent')
    // expired: refused by the clock, and dropped
    await expectReject(verify(c1, { cache, now: auth.now + 200 }), 'TOKEN_EXPIRED')
    expect(cache.size).toBeLessThanOrEqual(8)
    expectCode(() => createOfflineChainCache({ maxEntries: 0 }), 'CONFIG_INVALID')
    await expectReject(verify(c1, { cache: {} as never }), 'CONFIG_INVALID')
  })

  it('a tampered copy of a cached hop is a different string: verified, and refused', async () => {
    const cache = createOfflineChainCache()
    const root = offlineRoot(2)
    const chain = attenuate(root.token, a, delegation(b))
    await verify(chain, { cache })
    const [r, h] = chain.split('~') as [string, string]
    const sig = h.split('.')[2] as string
    const forged = `${h.slice(0, h.length - sig.length)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`
    await expectInvalid(verify(`${r}~${forged}`, { cache }), 1)
  })
})

describe('per_call-only audiences through a hand-made hop (outside probe)', () => {
  it('a hop that keeps the audience but drops every per_call grant there is refused', async () => {
    const root = offlineRoot(2, { audiences: [AUD, AUD2], tools: [{ type: 'tool_access', tools: ['billing.*'], per_call: true }] })
    const legit = hopClaims(root.token, a, delegation(b, { tools: [{ type: 'tool_access', tools: ['billing.refund'], per_call: true }] }))
    for (const grants of [[], [{ type: 'tool_access', tools: ['billing.refund'], per_call: true, locations: [AUD2] }]]) {
      const chain = `${root.token}~${signHop({ ...legit, authorization_details: grants }, a)}`
      await expectInvalid(verify(chain, { audience: AUD }), 1, 'narrowing', 'NARROWING_TOOL')
      const url = 'https://tools.example/mcp'
      const proof = createProof(b, { accessToken: chain, method: 'POST', url })
      await expectReject(auth.guard().verifyRequest({ method: 'POST', url, headers: { authorization: `DPoP ${chain}`, dpop: proof } }), 'ATTENUATION_INVALID')
    }
  })
})
