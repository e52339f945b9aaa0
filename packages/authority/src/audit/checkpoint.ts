/**
 * Signed checkpoints of the audit head: a JWS (`typ: mandate-checkpoint+jwt`, EdDSA, `kid`) over
 * `{iss, seq, hash, iat}`. A checkpoint kept outside the log proves how long the log was, so a
 * truncated log is detected.
 */
import { cryptoBackend, MandateError, parseCompactJws, signCompactJws, type Ed25519Key, type KeyResolver } from '@mandate/core'

export const CHECKPOINT_TYP = 'mandate-checkpoint+jwt'

export interface CheckpointClaims {
  iss: string
  seq: number
  hash: string
  /** seconds */
  iat: number
}

export function signCheckpoint(claims: CheckpointClaims, key: Ed25519Key): string {
  return signCompactJws({ alg: 'EdDSA', typ: CHECKPOINT_TYP, kid: key.kid }, { ...claims }, key)
}

/** Verify a checkpoint's signature (against the Authority's keys) and shape. */
export async function verifyCheckpoint(jws: string, options: { issuer: string; keys: KeyResolver }): Promise<CheckpointClaims> {
  const parsed = parseCompactJws(jws, { typ: CHECKPOINT_TYP, requireKid: true, maxLength: 4096 })
  const key = await options.keys.resolve(parsed.header.kid as string)
  if (!cryptoBackend.verify(key, parsed.signingInput, parsed.signature)) throw new MandateError('SIGNATURE_INVALID', 'checkpoint signature is invalid')
  const p = parsed.payload
  if (p.iss !== options.issuer) throw new MandateError('ISSUER_MISMATCH', 'checkpoint was not issued by this Authority')
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0) throw new MandateError('CLAIM_INVALID', 'checkpoint seq is invalid')
  if (typeof p.hash !== 'string' || typeof p.iat !== 'number') throw new MandateError('CLAIM_INVALID', 'checkpoint hash or iat is invalid')
  return { iss: p.iss, seq: p.seq, hash: p.hash, iat: p.iat }
}
