/**
 * RFC 7523 client assertions with and without `typ` (issue #11): an untyped assertion (what
 * oauth4webapi's stock PrivateKeyJwt sends) is accepted; a JWT typed as anything else, or an untyped
 * one carrying a mandate's, a call credential's or a proof's claims, is refused as INVALID_CLIENT.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { b64uDecode, b64uEncode, cryptoBackend, Ed25519Key, MemoryReplayStore, randomId, signCompactJws, verifyClientAssertion } from '../src/index.js'

const ISSUER = 'https://authority.example'
const key = Ed25519Key.generate()
const now = 1_800_000_000
const claims = () => ({ iss: key.did, sub: key.did, aud: ISSUER, jti: randomId(), iat: now, exp: now + 60 })
const verify = (jwt: unknown) => verifyClientAssertion(jwt, {
  audiences: [ISSUER], now, replay: new MemoryReplayStore(),
  resolveClientKey: (id) => {
    if (id !== key.did) throw new Error('unknown client')
    return cryptoBackend.importPublic(b64uDecode(key.publicJwk.x))
  },
})

describe('client assertions without typ', () => {
  it('accepts an untyped assertion (RFC 7523 §3), with or without kid, EdDSA or Ed25519', async () => {
    await expect(verify(signCompactJws({ alg: 'EdDSA' }, claims(), key))).resolves.toBe(key.did)
    await expect(verify(signCompactJws({ alg: 'Ed25519', kid: key.kid }, claims(), key))).resolves.toBe(key.did)
    await expect(verify(signCompactJws({ alg: 'EdDSA', typ: 'client-authentication+jwt' }, claims(), key))).resolves.toBe(key.did)
  })

  const typed = ['at+jwt', 'dpop+jwt', 'mandate-hop+jwt', 'JWT', 'oauth-id-jag+jwt', 'mandate-checkpoint+jwt', '']
  for (const typ of typed) {
    it(`refuses typ ${JSON.stringify(typ)}`, async () => {
      await expect(verify(signCompactJws({ alg: 'EdDSA', typ }, claims(), key))).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    })
  }

  const foreign: Record<string, unknown> = {
    cnf: { jkt: key.jkt }, act: { sub: key.did }, txn: 't', authorization_details: [], delegation: { depth: 0 }, call: { tool: 'x' },
    credential: 'audience', offline: { max_hops: 1 }, client_id: key.did, scope: 'a', htm: 'POST', htu: ISSUER, ath: 'x',
  }
  for (const [name, value] of Object.entries(foreign)) {
    it(`refuses an untyped JWT carrying ${name} (cross-JWT confusion)`, async () => {
      await expect(verify(signCompactJws({ alg: 'EdDSA' }, { ...claims(), [name]: value }, key))).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    })
  }

  it('refuses untyped assertions with a header member other than alg and kid, or a wrong alg', async () => {
    for (const h of [{ alg: 'EdDSA', jwk: key.publicJwk }, { alg: 'EdDSA', crit: ['exp'] }, { alg: 'EdDSA', jku: 'https://x' }, { alg: 'none' }, { alg: 'HS256' }, { alg: 'EdDSA', kid: '' }]) {
      await expect(verify(signCompactJws(h, claims(), key))).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    }
  })

  it('any header and claims: accepted only as an assertion; every refusal is INVALID_CLIENT (fast-check)', async () => {
    const member = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 8 }), fc.integer(), fc.constantFrom('EdDSA', 'Ed25519', 'at+jwt', 'client-authentication+jwt', 'dpop+jwt'))
    await fc.assert(fc.asyncProperty(
      fc.record({ alg: member, typ: member, kid: member, x: member }, { requiredKeys: [] }),
      fc.record({ iss: member, sub: member, aud: fc.oneof(member, fc.constant(ISSUER)), cnf: member, txn: member, exp: fc.oneof(member, fc.constant(now + 60)) }, { requiredKeys: [] }),
      async (h, p) => {
        const header = Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined))
        const payload: Record<string, unknown> = { ...claims(), ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) }
        const jwt = signCompactJws(header, payload, key)
        const ok = await verify(jwt).then(() => true, (e: unknown) => {
          expect(e).toMatchObject({ code: 'INVALID_CLIENT' })
          return false
        })
        const shouldAccept = (header.alg === 'EdDSA' || header.alg === 'Ed25519') && header.x === undefined
          && (header.typ === undefined || header.typ === 'client-authentication+jwt')
          && (header.kid === undefined || (typeof header.kid === 'string' && header.kid.length > 0))
          && payload.iss === key.did && payload.sub === key.did && payload.aud === ISSUER && payload.cnf === undefined && payload.txn === undefined && payload.exp === now + 60
        expect(ok).toBe(shouldAccept)
      },
    ), { numRuns: 300 })
  })

  it('refuses garbage and oversized input', async () => {
    for (const x of [undefined, 1, '', 'a.b', 'a.b.c.d', `${b64uEncode('{"alg":"EdDSA"}')}.${b64uEncode('{}')}.`, 'x'.repeat(5000)]) {
      await expect(verify(x)).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    }
  })
})
