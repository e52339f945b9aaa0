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

/** One head line of a checkpoint or witness file, as claimed (verification reads the signed claims). */
interface HeadLine {
  seq: number
  jws: string
}

const BARE_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * The heads of a checkpoint file, in file order; a truncated last line is skipped, any other
 * unreadable line refused (`lenient`: skipped too, and no head is an empty list).
 */
function headLines(text: string, lenient = false): HeadLine[] {
  if (text.length > MAX_CHECKPOINT_FILE) throw new MandateError('PAYLOAD_TOO_LARGE', 'checkpoint file is too large')
  const trimmed = text.trim()
  if (BARE_JWS.test(trimmed)) return [{ seq: Number.MAX_SAFE_INTEGER, jws: trimmed }]
  const lines = trimmed.split('\n')
  const heads: HeadLine[] = []
  lines.forEach((line, i) => {
    if (line.trim() === '') return
    let head: Partial<StoredCheckpoint>
    try {
      head = JSON.parse(line) as Partial<StoredCheckpoint>
    } catch {
      // a witness that crashed mid-write
      if (lenient || (i === lines.length - 1 && i > 0)) return
      throw new MandateError('INVALID_REQUEST', `checkpoint file line ${i + 1} is not a JSON head`)
    }
    if (typeof head !== 'object' || head === null || typeof head.jws !== 'string' || typeof head.seq !== 'number') {
      if (lenient) return
      throw new MandateError('INVALID_REQUEST', `checkpoint file line ${i + 1} has no seq and jws`)
    }
    heads.push({ seq: head.seq, jws: head.jws })
  })
  if (heads.length === 0 && !lenient) throw new MandateError('INVALID_REQUEST', 'checkpoint file holds no head')
  return heads
}

/**
 * Read a checkpoint copy held outside the database: a bare JWS, one JSON head `{seq, hash, time,
 * jws}` (what `GET /audit/checkpoint` and `mandate audit checkpoint` write), or a witness file of
 * such heads, one JSON per line. Returns the JWS of the head with the highest `seq`; a truncated last
 * line (a witness that crashed mid-write) is skipped, any other unreadable line is refused. The
 * claimed `seq` only picks the line: verification reads the signed claims. For a witness file,
 * {@link witnessCheckpointsIn} also finds a rollback that the log has since grown past.
 */
export function latestCheckpointIn(text: string): string {
  let best: HeadLine | undefined
  for (const h of headLines(text)) if (!best || h.seq > best.seq) best = h
  return (best as HeadLine).jws
}

/**
 * The heads of a checkpoint or witness file that a verifier must check, lowest seq first: the
 * newest, and every head that a later line goes back from (a later line with the same or a lower
 * seq). A witness only ever appends, so the seq of its lines goes back only when the log was rolled
 * back and written on again (or when several Authority processes share the file and their lines
 * interleave, which checking costs nothing but time): the head before the drop was signed over
 * records that the log must still hold. Checking only the newest would miss a rollback the log
 * has since grown past. Same input rules as {@link latestCheckpointIn}.
 */
export function witnessCheckpointsIn(text: string): string[] {
  const heads = headLines(text)
  const picked = new Map<string, number>()
  let best = heads[0] as HeadLine
  for (let i = 0; i < heads.length; i++) {
    const h = heads[i] as HeadLine
    const next = heads[i + 1]
    if (next !== undefined && next.seq <= h.seq) picked.set(h.jws, h.seq)
    if (h.seq > best.seq) best = h
  }
  picked.set(best.jws, best.seq)
  return [...picked].sort((a, b) => a[1] - b[1]).map(([jws]) => jws)
}

/**
 * The newest head in the end of a witness file's text (`cutAtStart`: its first line may be cut, and
 * is skipped), or undefined when there is none; unreadable lines are skipped. Read at start-up;
 * never throws.
 */
export function newestWitnessHead(tail: string, cutAtStart: boolean): string | undefined {
  const text = cutAtStart ? tail.slice(tail.indexOf('\n') + 1) : tail
  let best: HeadLine | undefined
  try {
    for (const h of headLines(text, true)) if (!best || h.seq > best.seq) best = h
  } catch {
    // too large: no head read
  }
  return best?.jws
}
