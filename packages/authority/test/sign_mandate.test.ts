/**
 * signMandate (core) is the Authority's only way to sign: it must produce the same bytes as a plain
 * compact JWS of the claims, and refuse claims the verifier would refuse or that are not plain JSON.
 */
import { createLocalKeySet, decodeMandateUnverified, Ed25519Key, parseMandateClaims, signCompactJws, signMandate, verifyMandate, type MandateClaims } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority, MemoryStore } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

async function issued() {
  const store = new MemoryStore()
  const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store })
  const g = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS, budget: { amount: 10, unit: 'EUR' } })
  const cred = await authority.exchange(a, { kind: 'call', subjectToken: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 3 } })
  const [k] = await store.loadSigningKeys()
  await authority.close()
  return { key: Ed25519Key.fromPrivateJwk(k?.privateJwk), root, cred, jwks: authority.jwks() }
}

const code = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return 'no error'
}

describe('signMandate', () => {
  it('signs exactly the compact JWS of the claims, and the result verifies', async () => {
    const { key, root, cred, jwks } = await issued()
    for (const t of [root, cred]) {
      expect(signMandate(t.claims, key)).toBe(signCompactJws({ alg: 'Ed25519', typ: 'at+jwt', kid: key.kid }, t.claims as unknown as Record<string, unknown>, key))
      expect(signMandate(t.claims, key)).toBe(t.token)
      const again = parseMandateClaims(decodeMandateUnverified(t.token).payload)
      expect(again).toEqual(t.claims)
      await expect(verifyMandate(t.token, { issuer: 'http://127.0.0.1:7400', keys: createLocalKeySet(jwks) })).resolves.toBeTruthy()
    }
  })

  it('refuses claims that are not plain JSON data or that the strict verifier would refuse', async () => {
    const { key, cred } = await issued()
    const c = cred.claims
    const bad: Array<[string, unknown]> = [
      ['unknown claim', { ...c, extra: 1 }],
      ['non-finite budget', { ...c, budget: { amount: Number.POSITIVE_INFINITY, unit: 'EUR' } }],
      ['NaN time', { ...c, exp: Number.NaN }],
      ['lone surrogate', { ...c, sub: 'alice\ud800' }],
      ['lone surrogate member name', { ...c, authorization_details: [{ ...c.authorization_details[0], constraints: { ['a\udc00']: { type: 'max', value: 1 } } }] }],
      ['Date object', { ...c, purpose: new Date(0) }],
      ['toJSON', { ...c, cnf: { jkt: c.cnf.jkt, toJSON: () => ({ jkt: c.cnf.jkt }) } }],
      ['class instance', { ...c, act: Object.assign(Object.create({ inherited: true }) as object, c.act) }],
      ['array hole', { ...c, delegation: { ...c.delegation, ancestors: new Array(1) } }],
      ['bigint', { ...c, iat: 1n }],
      ['array with its own toJSON', { ...c, authorization_details: Object.assign([...c.authorization_details], { toJSON: () => [{ type: 'tool_access', tools: ['*'] }] }) }],
      ['array subclass', { ...c, authorization_details: Object.assign(new (class extends Array {})(), [...c.authorization_details]) }],
    ]
    for (const [what, claims] of bad) expect([what, code(() => signMandate(claims as MandateClaims, key))]).not.toEqual([what, 'no error'])
    // a getter is read once: what is checked is what is signed, however it answers later
    let reads = 0
    const tricky = { ...c, get sub() { return reads++ === 0 ? c.sub : 'mallory' } }
    expect(decodeMandateUnverified(signMandate(tricky as MandateClaims, key)).payload.sub).toBe(c.sub)
    expect(reads).toBe(1)
    // a polluted Array.prototype.toJSON changes what every array serialises to: refused
    const proto = Array.prototype as unknown as { toJSON?: () => unknown }
    proto.toJSON = () => []
    try {
      expect(code(() => signMandate(c, key))).toBe('CLAIM_INVALID')
    } finally {
      delete proto.toJSON
    }
    // a member whose value is undefined is left out of the JSON and treated as absent, as before
    expect(signMandate({ ...c, purpose: undefined } as unknown as MandateClaims, key)).toBe(signMandate(c, key))
  })
})
