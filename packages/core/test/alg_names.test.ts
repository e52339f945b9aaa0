// RFC 9864 (issue #11): Mandate signs every token kind with the fully specified `alg` "Ed25519" and
// publishes keys whose JWK `alg` says the same; it still accepts RFC 8037's deprecated "EdDSA" for
// every kind (tokens from earlier releases, third-party proofs) and refuses every other name.
// Each kind is re-signed with the real key under a patched header, so only the alg can decide.
import { createLocalJWKSet, EmbeddedJWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  ACCEPTED_ALGS, attenuateMandate, b64uDecode, createClientAssertion, createProof, cryptoBackend, Ed25519Key, EMITTED_ALG, MandateError, MemoryReplayStore,
  signCompactJws, verifyClientAssertion, verifyMandate, verifyOfflineChain, verifyProof,
} from '../src/index.js'
import { AUD, expectReject, ISSUER, TestAuthority } from './helpers.js'

const auth = new TestAuthority()
const agent = Ed25519Key.generate()
const peer = Ed25519Key.generate()

const part = (jws: string, i: 0 | 1) => JSON.parse(Buffer.from(jws.split('.')[i] as string, 'base64url').toString('utf8')) as Record<string, unknown>
/** The same JWS re-signed by `key` with `alg` replaced (or removed when undefined). */
function withAlg(jws: string, alg: string | undefined, key: Ed25519Key): string {
  const { alg: _old, ...rest } = part(jws, 0)
  return signCompactJws(alg === undefined ? rest : { ...rest, alg }, part(jws, 1), key)
}

interface Kind {
  name: string
  /** Mandate's own output. */
  emit: () => string
  /** Re-sign under another alg with the key that signed it. */
  key: Ed25519Key
  /** Verify; resolves when accepted. */
  verify: (jws: string) => Promise<unknown>
  /** For chained formats: the JWS inside the presented string whose header is patched. */
  split?: (presented: string) => [prefix: string, jws: string]
}

const root = () => auth.root(agent, { offline: { maxHops: 2 } })
const kinds: Kind[] = [
  {
    name: 'mandate',
    emit: () => root().token,
    key: auth.key,
    verify: (t) => verifyMandate(t, { issuer: ISSUER, keys: auth.keys, now: auth.now }),
  },
  {
    name: 'client assertion',
    emit: () => createClientAssertion(agent, { clientId: agent.did, audience: ISSUER, now: auth.now }),
    key: agent,
    verify: (t) => verifyClientAssertion(t, {
      audiences: [ISSUER], now: auth.now, replay: new MemoryReplayStore(),
      resolveClientKey: () => cryptoBackend.importPublic(b64uDecode(agent.publicJwk.x)),
    }),
  },
  {
    name: 'DPoP proof',
    emit: () => createProof(agent, { accessToken: 'credential', method: 'POST', url: 'https://tools.example/mcp', now: auth.now }),
    key: agent,
    verify: (t) => verifyProof(t, { accessToken: 'credential', jkt: agent.jkt, method: 'POST', url: 'https://tools.example/mcp', now: auth.now }),
  },
  {
    name: 'offline hop',
    emit: () => attenuateMandate(root().token, agent, { kind: 'delegation', actor: { id: peer.did, jkt: peer.jkt } }, { now: auth.now }),
    key: agent,
    verify: (t) => verifyOfflineChain(t, { issuer: ISSUER, keys: auth.keys, now: auth.now }),
    split: (presented) => {
      const i = presented.lastIndexOf('~')
      return [presented.slice(0, i + 1), presented.slice(i + 1)]
    },
  },
]

/** Client assertions answer every refusal INVALID_CLIENT (RFC 6749 §5.2) and chains ATTENUATION_INVALID; both keep the rule's code. */
function underlyingCode(err: MandateError): string | undefined {
  if (err.code === 'INVALID_CLIENT' && MandateError.is(err.cause)) return err.cause.code
  if (err.code === 'ATTENUATION_INVALID') return err.detail?.cause_code as string | undefined
  return err.code
}

function patch(kind: Kind, presented: string, alg: string | undefined): string {
  const [prefix, jws] = kind.split ? kind.split(presented) : ['', presented]
  return prefix + withAlg(jws, alg, kind.key)
}

describe('RFC 9864 alg names', () => {
  it('one emitted name, Ed25519, among the accepted ones; published keys carry it as their JWK alg', () => {
    expect(EMITTED_ALG).toBe('Ed25519')
    expect(new Set(ACCEPTED_ALGS)).toEqual(new Set(['EdDSA', 'Ed25519']))
    expect(agent.publicJwk.alg).toBe(EMITTED_ALG)
    expect(Ed25519Key.fromPrivateJwk(agent.exportPrivateJwk()).publicJwk.alg).toBe(EMITTED_ALG)
  })

  for (const kind of kinds) {
    describe(kind.name, () => {
      it('is emitted with alg Ed25519 and verifies', async () => {
        const t = kind.emit()
        const [, jws] = kind.split ? kind.split(t) : ['', t]
        expect(part(jws, 0).alg).toBe('Ed25519')
        await kind.verify(t)
      })
      it('signed with the deprecated EdDSA (RFC 8037) still verifies', async () => {
        await kind.verify(patch(kind, kind.emit(), 'EdDSA'))
      })
      it('any other alg is refused: ES256, none, HS256, eddsa, Ed448, absent', async () => {
        for (const alg of ['ES256', 'none', 'HS256', 'eddsa', 'ED25519', 'Ed448', undefined]) {
          const err = await kind.verify(patch(kind, kind.emit(), alg)).then(() => undefined, (e: unknown) => e as MandateError)
          expect(err, `alg ${String(alg)}`).toBeInstanceOf(MandateError)
          expect(underlyingCode(err as MandateError), `alg ${String(alg)}`).toBe('ALG_NOT_ALLOWED')
        }
      })
    })
  }

  it('jose verifies what Mandate emits against a JWKS of its published keys, and a verifier pinned to EdDSA alone does not', async () => {
    const jwks = createLocalJWKSet({ keys: [auth.key.publicJwk] })
    const { protectedHeader, payload } = await jwtVerify(root().token, jwks, { typ: 'at+jwt', issuer: ISSUER, audience: AUD, currentDate: new Date(auth.now * 1000) })
    expect(protectedHeader.alg).toBe('Ed25519')
    expect(payload.sub).toBe('alice')
    const proof = kinds[2]?.emit() as string
    expect((await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', currentDate: new Date(auth.now * 1000) })).protectedHeader.alg).toBe('Ed25519')
    // the documented consequence of following RFC 9864: a verifier configured for `EdDSA` only must add `Ed25519`
    await expect(jwtVerify(root().token, jwks, { algorithms: ['EdDSA'], currentDate: new Date(auth.now * 1000) })).rejects.toMatchObject({ code: 'ERR_JOSE_ALG_NOT_ALLOWED' })
  })
})

// guard-level sanity: the header of a mandate the guard receives may use either name
describe('guard accepts a call under either name', () => {
  it('EdDSA-signed mandate and proof pass verifyToolCall', async () => {
    const r = root()
    const mandate = withAlg(r.token, 'EdDSA', auth.key)
    const args = { path: '/data/x', amount: 1 }
    const proof = createProof(agent, { accessToken: mandate, audience: AUD, tool: 'files.read', arguments: args, alg: 'EdDSA' })
    expect(part(proof, 0).alg).toBe('EdDSA')
    const call = await auth.guard().verifyToolCall({ mandate, proof, tool: 'files.read', arguments: args })
    expect(call.actor).toBe(agent.did)
    const es256 = withAlg(r.token, 'ES256', auth.key)
    const proof2 = createProof(agent, { accessToken: es256, audience: AUD, tool: 'files.read', arguments: args })
    await expectReject(auth.guard().verifyToolCall({ mandate: es256, proof: proof2, tool: 'files.read', arguments: args }), 'ALG_NOT_ALLOWED')
  })
})
