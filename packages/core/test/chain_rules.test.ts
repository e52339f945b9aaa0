// The guard re-checks what it can offline. Tokens here are signed with the TRUSTED key but minted by
// hand (bypassing the Authority's narrowing), the way a buggy or compromised issuer path would.
import { describe, expect, it } from 'vitest'
import {
  assertChainConsistent, b64uEncode, createProof, Ed25519Key, MemoryRevocationList, narrowMandate, randomId, signMandate,
  type MandateClaims, type MandateErrorCode,
} from '@mandate/core'
import { AUD, expectCode, expectReject, ISSUER, TestAuthority } from './helpers.js'

const auth = new TestAuthority()
const a = Ed25519Key.generate()
const b = Ed25519Key.generate()
const c = Ed25519Key.generate()
const args = { path: '/data/x', amount: 1 }

/** Sign claims as the trusted key without any of signMandate's checks. */
function mint(claims: unknown): string {
  const input = `${b64uEncode(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid }))}.${b64uEncode(JSON.stringify(claims))}`
  return `${input}.${b64uEncode(auth.key.sign(new TextEncoder().encode(input)))}`
}

function narrow(parent: { token: string; claims: MandateClaims }, holder: Ed25519Key, request: Parameters<typeof narrowMandate>[1]): MandateClaims {
  return narrowMandate(parent.claims, request, { issuer: ISSUER, now: auth.now, jti: randomId(), parentToken: parent.token, caller: { id: holder.did, jkt: holder.jkt } })
}

/** Present `token` held by `holder` to the guard for one call. */
function present(token: string, holder: Ed25519Key, guard = auth.guard({ clock: () => auth.now * 1000 })) {
  return guard.verifyToolCall({ mandate: token, proof: createProof(holder, { accessToken: token, audience: AUD, tool: 'files.read', arguments: args, now: auth.now }), tool: 'files.read', arguments: args })
}

const root = auth.root(a)
const child = { claims: narrow(root, a, auth.delegate(b)), token: '' }
child.token = signMandate(child.claims, auth.key)
const cred = narrow(child, b, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args })
const grand = narrow(child, b, auth.delegate(c))

describe('lifetime caps per kind of token (LIFETIME_EXCEEDED)', () => {
  it('a call credential living 2 hours or 30 days is refused; 60 s is accepted', async () => {
    await present(mint(cred), b)
    for (const life of [2 * 3600, 30 * 86_400, 61]) {
      await expectReject(present(mint({ ...cred, jti: randomId(), exp: cred.iat + life }), b), 'LIFETIME_EXCEEDED')
    }
  })
  it('an audience-level mandate over 24 h is refused; the caps are configurable', async () => {
    const long = { ...root.claims, jti: randomId(), exp: root.claims.iat + 2 * 86_400 }
    await expectReject(present(mint(long), a), 'LIFETIME_EXCEEDED')
    await present(mint(long), a, auth.guard({ clock: () => auth.now * 1000, maxLifetime: { mandate: 3 * 86_400 } }))
    await expectReject(present(mint({ ...cred, jti: randomId(), exp: cred.iat + 30 }), b, auth.guard({ clock: () => auth.now * 1000, maxLifetime: { call: 10 } })), 'LIFETIME_EXCEEDED')
    expect(() => auth.guard({ maxLifetime: { call: 0 } })).toThrow()
  })
  it('nbf before iat does not stretch the window past the cap', async () => {
    await expectReject(present(mint({ ...cred, jti: randomId(), nbf: cred.iat - 3600, exp: cred.iat + 30 }), b), 'LIFETIME_EXCEEDED')
  })
})

describe('ancestry consistent with depth (CHAIN_INCONSISTENT)', () => {
  const cases: [string, unknown, Ed25519Key][] = [
    ['depth 2, the root omitted from the ancestors (hides it from revocation)', { ...grand, delegation: { ...grand.delegation, ancestors: [child.claims.jti] } }, c],
    ['depth 1 with no parent at all', { ...child.claims, delegation: { depth: 1, max_depth: 4, ancestors: [] } }, b],
    ['depth 1, parent but no parent_hash', { ...child.claims, delegation: { depth: 1, max_depth: 4, parent: root.claims.jti, ancestors: [root.claims.jti] } }, b],
    ['depth 0 with a parent', { ...root.claims, delegation: { depth: 0, max_depth: 4, parent: randomId(), parent_hash: 'A'.repeat(43), ancestors: [] } }, a],
    ['depth 1, two ancestors', { ...child.claims, delegation: { ...child.claims.delegation, ancestors: [randomId(), root.claims.jti] } }, b],
    ['parent is not the last ancestor', { ...child.claims, delegation: { ...child.claims.delegation, parent: randomId() } }, b],
    ['call credential without its mandate among the ancestors', { ...cred, delegation: { ...cred.delegation, ancestors: [root.claims.jti], parent: root.claims.jti } }, b],
    ['act chain shorter than depth + 1', { ...child.claims, act: { sub: b.did } }, b],
    ['act chain longer than depth + 1', { ...child.claims, act: { sub: b.did, act: { sub: a.did, act: { sub: c.did } } } }, b],
  ]
  for (const [name, claims, holder] of cases) {
    it(name, async () => {
      const e = await expectReject(present(mint(claims), holder), 'CHAIN_INCONSISTENT')
      expect(e.detail?.rule).toBeTypeOf('string')
    })
  }
  it('a token missing the ancestry member entirely is refused too (CLAIM_INVALID, shape)', async () => {
    await expectReject(present(mint({ ...child.claims, delegation: { depth: 1, max_depth: 4 } }), b), 'CLAIM_INVALID')
  })
  it('the root is found by revocation when the ancestry is complete', async () => {
    const revocation = new MemoryRevocationList()
    revocation.revokeMandate(root.claims.jti)
    await expectReject(present(signMandate(grand, auth.key), c, auth.guard({ clock: () => auth.now * 1000, revocation })), 'REVOKED')
  })
  it('signMandate refuses to sign an inconsistent chain (the Authority cannot mint one by mistake)', () => {
    expectCode(() => signMandate({ ...child.claims, delegation: { depth: 1, max_depth: 4, ancestors: [] } }, auth.key), 'CHAIN_INCONSISTENT')
  })
})

describe('the actor is the bound key (CHAIN_INCONSISTENT)', () => {
  it('act.sub / client_id naming another agent than cnf.jkt is refused', async () => {
    // a's key holds it, but it claims to be c acting (c would be blamed in the audit)
    const wrong = { ...root.claims, jti: randomId(), client_id: c.did, act: { sub: c.did } }
    const e = await expectReject(present(mint(wrong), a), 'CHAIN_INCONSISTENT')
    expect(e.detail?.rule).toBe('actor-key')
  })
  it('an actor that is not a did:key is refused', async () => {
    const codes: MandateErrorCode[] = []
    for (const id of ['agent-1', 'did:example:123', `${a.did}x`]) {
      const e = await expectReject(present(mint({ ...root.claims, jti: randomId(), client_id: id, act: { sub: id } }), a), 'CHAIN_INCONSISTENT')
      codes.push(e.code)
    }
    expect(codes).toHaveLength(3)
    await expectReject(present(mint({ ...child.claims, act: { sub: b.did, act: { sub: 'ghost' } } }), b), 'CHAIN_INCONSISTENT')
  })
  it('assertChainConsistent is the one shared rule set', () => {
    expect(() => assertChainConsistent(child.claims)).not.toThrow()
    expect(() => assertChainConsistent(cred)).not.toThrow()
    expectCode(() => assertChainConsistent({ ...cred, cnf: { jkt: a.jkt } }), 'CHAIN_INCONSISTENT')
  })
})

describe('repeated actors', () => {
  it('narrowing refuses a delegate already in the chain (A → B → A, and A → A) → NARROWING_CHAIN', () => {
    expectCode(() => narrow(child, b, auth.delegate(a)), 'NARROWING_CHAIN')
    expectCode(() => narrow(root, a, auth.delegate(a)), 'NARROWING_CHAIN')
    expectCode(() => narrow(child, b, auth.delegate(b)), 'NARROWING_CHAIN')
  })
  it('call credentials keep the holder and are not new hops', async () => {
    await present(signMandate(cred, auth.key), b)
  })
  it('the guard refuses a hand-minted A → B → A chain → CHAIN_INCONSISTENT', async () => {
    const grandchild = { ...child.claims, jti: randomId(), client_id: a.did, act: { sub: a.did, act: child.claims.act }, cnf: { jkt: a.jkt }, delegation: { depth: 2, max_depth: 4, parent: child.claims.jti, parent_hash: 'A'.repeat(43), ancestors: [root.claims.jti, child.claims.jti] } }
    const e = await expectReject(present(mint(grandchild), a), 'CHAIN_INCONSISTENT')
    expect(e.detail?.rule).toBe('repeated-actor')
  })
})

describe('maxDepth counts further delegations', () => {
  it('root grant maxDepth 0 ⇒ the agent cannot delegate (but can mint call credentials)', () => {
    const r = auth.root(a, { maxDepth: 0 })
    expectCode(() => narrow(r, a, auth.delegate(b)), 'NARROWING_DEPTH')
    expect(narrow(r, a, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args }).call?.tool).toBe('files.read')
  })
  it('delegation maxDepth 0 ⇒ the child cannot delegate', () => {
    const r = auth.root(a, { maxDepth: 3 })
    const c1 = narrow(r, a, auth.delegate(b, { maxDepth: 0 }))
    expect(c1.delegation).toMatchObject({ depth: 1, max_depth: 1 })
    const t1 = signMandate(c1, auth.key)
    expectCode(() => narrow({ claims: c1, token: t1 }, b, auth.delegate(c)), 'NARROWING_DEPTH')
  })
  it('maxDepth larger than the parent has left ⇒ NARROWING_DEPTH; equal is fine; omitted inherits', () => {
    const r = auth.root(a, { maxDepth: 2 })
    expectCode(() => narrow(r, a, auth.delegate(b, { maxDepth: 2 })), 'NARROWING_DEPTH')
    expect(narrow(r, a, auth.delegate(b, { maxDepth: 1 })).delegation.max_depth).toBe(2)
    expect(narrow(r, a, auth.delegate(b)).delegation.max_depth).toBe(2)
  })
})
