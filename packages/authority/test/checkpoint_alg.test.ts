/**
 * Audit checkpoints follow RFC 9864 (issue #11): signed with alg `Ed25519`, the alg the Authority's
 * JWKS names, so jose verifies a checkpoint with that JWKS; heads stored by earlier releases (alg
 * `EdDSA`) still verify, so an upgrade does not break `mandate audit verify` on an existing database.
 */
import { createLocalKeySet, Ed25519Key, MandateError, signCompactJws } from '@mandate/core'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { CHECKPOINT_TYP, signCheckpoint, verifyCheckpoint, verifyCheckpointSync } from '../src/audit/checkpoint.js'

const ISSUER = 'https://authority.example'
const key = Ed25519Key.generate()
const keys = createLocalKeySet({ keys: [key.publicJwk] })
const claims = { iss: ISSUER, seq: 7, hash: 'a'.repeat(43), iat: 1_800_000_000 }
const header = (jws: string) => JSON.parse(Buffer.from(jws.split('.')[0] as string, 'base64url').toString('utf8')) as Record<string, unknown>

describe('audit checkpoint alg', () => {
  it('is signed alg Ed25519 and verifies with the Authority keys and with jose against its JWKS', async () => {
    const jws = signCheckpoint(claims, key)
    expect(header(jws)).toEqual({ alg: 'Ed25519', typ: CHECKPOINT_TYP, kid: key.kid })
    await expect(verifyCheckpoint(jws, { issuer: ISSUER, keys })).resolves.toEqual(claims)
    const { payload } = await jwtVerify(jws, createLocalJWKSet({ keys: [key.publicJwk] }), { typ: CHECKPOINT_TYP, issuer: ISSUER })
    expect(payload.seq).toBe(7)
  })

  it('a head signed alg EdDSA (earlier releases) still verifies; any other alg is refused', async () => {
    const old = signCompactJws({ alg: 'EdDSA', typ: CHECKPOINT_TYP, kid: key.kid }, { ...claims }, key)
    expect(verifyCheckpointSync(old, { issuer: ISSUER, keys })).toEqual(claims)
    for (const alg of ['ES256', 'none', 'HS256']) {
      const bad = signCompactJws({ alg, typ: CHECKPOINT_TYP, kid: key.kid }, { ...claims }, key)
      const err = await verifyCheckpoint(bad, { issuer: ISSUER, keys }).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err) && err.code, alg).toBe('ALG_NOT_ALLOWED')
    }
  })
})
