/**
 * Signed heads of the audit chain ("checkpoints"): a JWS (`typ: mandate-checkpoint+jwt`, Ed25519,
 * `kid`) over `{iss, seq, hash, iat}`. Every store transaction that appends audit records also
 * stores a head signed over its last record, so every answered record is covered by a signature of
 * the Authority from the moment it commits. A head kept outside the database (exported, or
 * published to a witness) proves how long the log was and what it said, so truncating or rewriting
 * it is detected even when the attacker also rewrote the heads inside the database.
 */
import { cryptoBackend, EMITTED_ALG, MandateError, parseCompactJws, signCompactJws, type Ed25519Key, type KeyResolver } from '@mandate/core'
import type { StoredCheckpoint } from '../types.js'

export const CHECKPOINT_TYP = 'mandate-checkpoint+jwt'

export interface CheckpointClaims {
  iss: string
  seq: number
  hash: string
  /** seconds */
  iat: number
}

/** Sign a head. */
export function signCheckpoint(claims: CheckpointClaims, key: Ed25519Key): string {
  return signCompactJws({ alg: EMITTED_ALG, typ: CHECKPOINT_TYP, kid: key.kid }, { ...claims }, key)
}

type Handle = Awaited<ReturnType<KeyResolver['resolve']>>

function checkClaims(parsed: ReturnType<typeof parseCompactJws>, key: Handle, issuer: string): CheckpointClaims {
  if (!cryptoBackend.verify(key, parsed.signingInput, parsed.signature)) throw new MandateError('SIGNATURE_INVALID', 'checkpoint signature is invalid')
  const p = parsed.payload
  if (p.iss !== issuer) throw new MandateError('ISSUER_MISMATCH', 'checkpoint was not issued by this Authority')
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0) throw new MandateError('CLAIM_INVALID', 'checkpoint seq is invalid')
  if (typeof p.hash !== 'string' || typeof p.iat !== 'number') throw new MandateError('CLAIM_INVALID', 'checkpoint hash or iat is invalid')
  return { iss: p.iss, seq: p.seq, hash: p.hash, iat: p.iat }
}

function parse(jws: string): ReturnType<typeof parseCompactJws> {
  return parseCompactJws(jws, { typ: CHECKPOINT_TYP, requireKid: true, maxLength: 4096 })
}

/** Verify a checkpoint's signature (against the Authority's keys) and shape. */
export async function verifyCheckpoint(jws: string, options: { issuer: string; keys: KeyResolver }): Promise<CheckpointClaims> {
  const parsed = parse(jws)
  return checkClaims(parsed, await options.keys.resolve(parsed.header.kid as string), options.issuer)
}

/** The same, for resolvers that answer synchronously (local key sets); an asynchronous one is refused. */
export function verifyCheckpointSync(jws: string, options: { issuer: string; keys: KeyResolver }): CheckpointClaims {
  const parsed = parse(jws)
  const key = options.keys.resolve(parsed.header.kid as string)
  if (key instanceof Promise) {
    key.catch(() => undefined)
    throw new MandateError('KEY_NOT_FOUND', 'checkpoint keys must resolve synchronously here')
  }
  return checkClaims(parsed, key, options.issuer)
}

const MAX_CHECKPOINT_FILE = 64 * 1024 * 1024

/**
 * Read a checkpoint copy held outside the database: a bare JWS, one JSON head `{seq, hash, time,
 * jws}` (what `GET /audit/checkpoint` and `mandate audit checkpoint` write), or a witness file of
 * such heads, one JSON per line. Returns the JWS of the head with the highest `seq`; a truncated last
 * line (a witness that crashed mid-write) is skipped, any other unreadable line is refused. The
 * claimed `seq` only picks the line: verification reads the signed claims.
 */
export function latestCheckpointIn(text: string): string {
  if (text.length > MAX_CHECKPOINT_FILE) throw new MandateError('PAYLOAD_TOO_LARGE', 'checkpoint file is too large')
  const trimmed = text.trim()
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(trimmed)) return trimmed
  const lines = trimmed.split('\n')
  let best: { seq: number; jws: string } | undefined
  lines.forEach((line, i) => {
    if (line.trim() === '') return
    let head: Partial<StoredCheckpoint>
    try {
      head = JSON.parse(line) as Partial<StoredCheckpoint>
    } catch {
      if (i === lines.length - 1 && i > 0) return
      throw new MandateError('INVALID_REQUEST', `checkpoint file line ${i + 1} is not a JSON head`)
    }
    if (typeof head !== 'object' || head === null || typeof head.jws !== 'string' || typeof head.seq !== 'number') {
      throw new MandateError('INVALID_REQUEST', `checkpoint file line ${i + 1} has no seq and jws`)
    }
    if (!best || head.seq > best.seq) best = { seq: head.seq, jws: head.jws }
  })
  if (!best) throw new MandateError('INVALID_REQUEST', 'checkpoint file holds no head')
  return best.jws
}
