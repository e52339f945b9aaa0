/**
 * The audit log: a hash chain of records in the store, sealed by the Authority's signature in every
 * transaction that appends to it (audit/seal.ts), verification that names the first record where
 * the log breaks and what was found there, queries, and a streamed JSONL export.
 */
import { MandateError, type Ed25519Key, type KeyResolver } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'
import type { AuditDraft, AuditQuery, AuditRecord, StoredCheckpoint } from '../types.js'
import { newestWitnessHead, signCheckpoint, verifyCheckpoint, verifyCheckpointSync, type CheckpointClaims } from './checkpoint.js'
import { open as openFile } from 'node:fs/promises'
import { auditFacets } from '../store/audit_facets.js'
import { auditHash, auditHashInput } from './hash.js'
import type { AuditSealer, ChainHead } from './seal.js'
import { AuditWitness, type AuditWitnessOptions } from './witness.js'

/** What verification found wrong (stable names; `reason` says it in words). */
export type AuditBreakKind =
  /** a seq is absent: records deleted */
  | 'missing'
  /** a row outside the chain: a seq below 1, or a second row under one seq */
  | 'inserted'
  /** a record sits at another record's place */
  | 'reordered'
  /** a record's content does not match its own hash */
  | 'edited'
  /** a record does not link to the one before it (inserted, removed or rewritten before it) */
  | 'unlinked'
  /** a query column (txn, agent, subject) says something other than the hashed record */
  | 'index_mismatch'
  /** the Authority found the log changed behind its back and recorded so (`audit.unsealed`) */
  | 'foreign_write'
  /** records that no signed head covers (appended without the Authority's key) */
  | 'unsealed'
  /** there are records but no signed head at all (the heads were deleted) */
  | 'head_missing'
  /** the stored signed head is not a valid signature of this Authority */
  | 'head_invalid'
  /** the record at the signed head's seq is not the one that was signed (the chain was rewritten) */
  | 'head_mismatch'
  /** the log ends before a signed head (stored or held outside) says it did */
  | 'truncated'
  /** the checkpoint held outside is not a valid signature of this Authority */
  | 'checkpoint_invalid'
  /** the log no longer holds the record a checkpoint held outside was signed over */
  | 'checkpoint_mismatch'

export type AuditVerification =
  | {
      ok: true
      count: number
      head?: { seq: number; hash: string }
      /** The signed head the log was checked against (the stored one). */
      signed?: { seq: number; iat: number }
      /** The checkpoint held outside (when given) that the log still contains and extends. */
      checkpoint?: { seq: number }
    }
  | { ok: false; code: 'AUDIT_BROKEN'; kind: AuditBreakKind; brokenAt: number; reason: string; count: number }

export interface AuditLogOptions {
  issuer: string
  store: AuthorityStore
  /** ms clock */
  now: () => number
  signingKey: () => Ed25519Key
  /** Keys that may have signed a head (current and retired); must answer synchronously (a local key set). */
  checkpointKeys: () => KeyResolver
  /** Publish every signed head to a file and/or webhook. */
  witness?: AuditWitnessOptions
}

export type AuditListener = (record: AuditRecord) => void

/** The seq under which a record's stored hash verifies (searched near its position), if another. */
function originalSeq(r: AuditRecord): number | undefined {
  // every try hashes the whole record: a huge edited record must not stall the event loop for
  // seconds (at most ~32 MiB hashed in all; a reorder of huge records is then reported as an edit)
  let size: number
  try {
    size = auditHashInput(r).length
  } catch {
    return undefined
  }
  const reach = Math.min(1024, Math.max(1, Math.floor((32 * 1024 * 1024) / (2 * size))))
  for (let d = 1; d <= reach; d++) {
    for (const s of [r.seq - d, r.seq + d]) if (s >= 1 && auditHash({ ...r, seq: s }) === r.hash) return s
  }
  return undefined
}

/** The record's own hash, or undefined when its content cannot be hashed (non-finite numbers, too deep, not an object). */
function ownHash(r: AuditRecord): string | undefined {
  try {
    if (typeof r.fields !== 'object' || r.fields === null || Array.isArray(r.fields)) return undefined
    return auditHash(r)
  } catch {
    return undefined
  }
}

const PAGE = 2000
/** How much of the witness file's end is read at start-up (a head line is ~400 bytes). */
const WITNESS_TAIL = 256 * 1024

/** The JWS of the newest head in the last bytes of a witness file, or undefined (no file yet, unreadable, empty). */
async function readWitnessTail(file: string): Promise<string | undefined> {
  let fh: Awaited<ReturnType<typeof openFile>> | undefined
  try {
    fh = await openFile(file, 'r')
    const { size } = await fh.stat()
    const start = Math.max(0, size - WITNESS_TAIL)
    const buf = Buffer.alloc(Math.min(size, WITNESS_TAIL))
    const { bytesRead } = await fh.read(buf, 0, buf.length, start)
    return newestWitnessHead(buf.subarray(0, bytesRead).toString('utf8'), start > 0)
  } catch {
    return undefined
  } finally {
    await fh?.close().catch(() => undefined)
  }
}

/** One row of a store's query columns (readAuditIndex); facet columns where the store keeps them. */
type AuditIndexRow = {
  seq: number
  txn: string | null
  agent: string | null
  subject: string | null
  tool?: string | null
  jti?: string | null
  decision?: string | null
  call?: number | boolean | null
  /** SQLite's typeof(time): anything but 'integer' was written behind the store's back. */
  timeType?: string
}

/** The columns of an index row that differ from what the hashed record says, or undefined. */
function indexMismatch(col: AuditIndexRow | undefined, r: AuditRecord): string | undefined {
  if (!col || Number(col.seq) !== r.seq) return 'index'
  const want = auditFacets(r.type, r.fields)
  const off: string[] = []
  for (const k of ['txn', 'agent', 'subject'] as const) if (col[k] !== want[k]) off.push(k)
  // the facet columns the dashboard filters on, where the store keeps them
  for (const k of ['tool', 'jti', 'decision'] as const) if (col[k] !== undefined && col[k] !== want[k]) off.push(k)
  // exactly the values the stores write and query on (`call = 1`): 2, -1 or 0.5 would hide a call from the call list
  if (col.call !== undefined && !(want.call ? col.call === 1 || col.call === true : col.call === 0 || col.call === false)) off.push('call')
  // a time stored as another type (SQLite TEXT '0x…' reads back as the same number, but sorts after every number)
  if (col.timeType !== undefined && col.timeType !== 'integer') off.push('time')
  return off.length > 0 ? off.join(', ') : undefined
}

/** An audit-log text shown in a verification result: control and format characters escaped, at most 300 characters. */
function printableReason(text: string): string {
  // eslint-disable-next-line no-control-regex
  const out = text.replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return out.length > 300 ? `${out.slice(0, 300)}…` : out
}

export class AuditLog {
  readonly #o: AuditLogOptions
  readonly #listeners = new Set<AuditListener>()
  readonly #witness: AuditWitness | undefined

  constructor(options: AuditLogOptions) {
    this.#o = options
    this.#witness = options.witness && (options.witness.file !== undefined || options.witness.webhook !== undefined) ? new AuditWitness(options.witness) : undefined
  }

  /** Start sealing: hand the store the sealer and the stored head, when its signature is this Authority's. */
  async open(): Promise<void> {
    const stored = await this.#o.store.latestCheckpoint()
    const sealer: AuditSealer = {
      sign: (head) => this.#sign(head),
      trust: (cp) => this.#trust(cp),
      now: this.#o.now,
      ...(this.#witness ? { committed: (cp: StoredCheckpoint) => this.#witness?.publish(cp) } : {}),
    }
    this.#o.store.sealAuditWith(sealer, stored ? this.#trust(stored) : undefined)
    // the witness file holds heads the database's attacker cannot rewrite: a log rolled back behind
    // them (offline, with an old head put back) is recorded before this process writes anything
    const file = this.#o.witness?.file
    const behind = file !== undefined ? await this.#behindWitness(file) : undefined
    if (behind !== undefined) await this.append('audit.unsealed', behind)
  }

  /**
   * What the newest head of the witness file says the store lost, if anything (best effort: an
   * unreadable witness says nothing). Decided from the store as it is after the witness was read:
   * another process sharing the store and the file publishes a head only once its record is
   * committed, so a head it published meanwhile is found in the store.
   */
  async #behindWitness(file: string): Promise<AuditDraft['fields'] | undefined> {
    const jws = await readWitnessTail(file)
    const w = jws === undefined ? undefined : this.#trust({ seq: 0, hash: '', time: 0, jws })
    if (w === undefined || w.seq === 0) return undefined
    const rec = (await this.#o.store.readAudit(w.seq - 1, 1))[0]
    if (rec?.seq === w.seq && rec.hash === w.hash) return undefined
    const head = await this.#o.store.auditHead()
    const found = head ? { seq: head.seq, hash: head.hash } : null
    const expected = { seq: w.seq, hash: w.hash }
    if (rec?.seq !== w.seq) {
      const from = (head?.seq ?? 0) + 1
      return {
        reason: `records ${from}..${w.seq} are missing: the log is behind the witness's signed head (rolled back or cut, or lost in a crash of a store that does not sync each commit)`,
        found, expected,
      }
    }
    return { reason: `record ${w.seq} is not the record the witness's signed head covers (the log was rolled back and written again)`, found, expected }
  }

  #sign(head: ChainHead): StoredCheckpoint {
    const time = this.#o.now()
    const jws = signCheckpoint({ iss: this.#o.issuer, seq: head.seq, hash: head.hash, iat: Math.floor(time / 1000) }, this.#o.signingKey())
    return { seq: head.seq, hash: head.hash, time, jws }
  }

  /** The head a stored checkpoint attests (read from its signed claims, never from its columns). */
  #trust(cp: StoredCheckpoint): ChainHead | undefined {
    try {
      const c = verifyCheckpointSync(cp.jws, { issuer: this.#o.issuer, keys: this.#o.checkpointKeys() })
      return { seq: c.seq, hash: c.hash }
    } catch {
      return undefined
    }
  }

  /** Register a listener for every appended record; returns the unsubscribe function. */
  onRecord(listener: AuditListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Append a record on its own (committed with its signed head when this resolves). */
  async append(type: AuditDraft['type'], fields: AuditDraft['fields']): Promise<AuditRecord> {
    const rec = await this.#o.store.appendAudit({ time: this.#o.now(), type, fields })
    await this.recorded(rec)
    return rec
  }

  /** A draft with the current time, for store methods that append inside their own transaction. */
  draft(type: AuditDraft['type'], fields: AuditDraft['fields']): AuditDraft {
    return { time: this.#o.now(), type, fields }
  }

  /** Tell the log a record was appended (by a store transaction, which also sealed it): notify listeners. */
  async recorded(rec: AuditRecord): Promise<void> {
    for (const l of this.#listeners) {
      try {
        l(rec)
      } catch {
        // a listener's failure must not fail the request that was already committed (documented)
      }
    }
  }

  /**
   * The current signed head (every committed transaction that appended records stored one): seq
   * and hash as its signature says, never as the store's plain columns say (an export bounded by
   * a lowered column would stop early and still look complete). AUDIT_BROKEN when the stored head
   * does not verify.
   */
  async checkpoint(): Promise<StoredCheckpoint | undefined> {
    const stored = await this.#o.store.latestCheckpoint()
    if (stored === undefined) return undefined
    let c: CheckpointClaims
    try {
      c = verifyCheckpointSync(stored.jws, { issuer: this.#o.issuer, keys: this.#o.checkpointKeys() })
    } catch {
      throw new MandateError('AUDIT_BROKEN', 'the stored signed audit head does not verify: run audit verify')
    }
    const time = Math.floor(stored.time / 1000) === c.iat ? stored.time : c.iat * 1000
    return { seq: c.seq, hash: c.hash, time, jws: stored.jws }
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#o.store.latestCheckpoint()
  }

  query(q: AuditQuery = {}): Promise<AuditRecord[]> {
    return this.#o.store.queryAudit(q)
  }

  /**
   * Every record as one JSON line each, in order, read from the store a page at a time (so memory
   * stays bounded and a slow reader slows the reads). Stops at `untilSeq` when given.
   */
  async *exportJsonl(q: Omit<AuditQuery, 'afterSeq' | 'limit'> = {}): AsyncIterable<string> {
    let after = 0
    for (;;) {
      const page = await this.#o.store.queryAudit({ ...q, afterSeq: after, limit: 1000 })
      for (const r of page) yield `${JSON.stringify(r)}\n`
      if (page.length < 1000) return
      after = (page[page.length - 1] as AuditRecord).seq
    }
  }

  /** Stop publishing to the witness (after publishing what is pending, at most `ms`). */
  async close(ms?: number): Promise<void> {
    await this.#witness?.close(ms)
  }

  /**
   * Verify the whole log: contiguous seq from 1, each record's hash over its content, each link to
   * the previous hash, query columns equal to the hashed record, no record of the Authority finding
   * the log changed behind its back, the stored signed head valid and covering the last record, and
   * (when given) each checkpoint held outside the store still contained and extended (a witness
   * file's heads to check: witnessCheckpointsIn). Reports the first thing found, with the seq where
   * the log breaks.
   */
  async verify(options: { checkpoint?: string | readonly string[] } = {}): Promise<AuditVerification> {
    const store = this.#o.store
    let expected = 1
    let prev = ''
    let count = 0
    let last = undefined as AuditRecord | undefined
    const broken = (kind: AuditBreakKind, brokenAt: number, reason: string): AuditVerification => ({ ok: false, code: 'AUDIT_BROKEN', kind, brokenAt, reason, count })
    /** Check records after the last one checked, up to `until` (or the end). */
    const walk = async (until = Infinity): Promise<AuditVerification | undefined> => {
      for (;;) {
        const after = last?.seq ?? 0
        const limit = Math.min(PAGE, until - after)
        if (limit <= 0) return undefined
        // the first page starts below 1: a row planted at seq 0 or below is read (and reported), not skipped
        const from = last === undefined ? Number.MIN_SAFE_INTEGER : after
        const page = await store.readAudit(from, limit)
        const index = store.readAuditIndex ? await store.readAuditIndex(from, limit) : undefined
        for (let i = 0; i < page.length; i++) {
          const r = page[i] as AuditRecord
          count++
          if (r.seq < expected) {
            // a row below 1, or a second row under a seq already walked: never written by the chain
            return broken('inserted', Math.max(r.seq, 0), r.seq < 1 ? `a row with seq ${r.seq} is outside the chain (seq starts at 1): inserted behind the Authority's back` : `record ${r.seq} is stored twice (a row was inserted)`)
          }
          if (r.seq !== expected) {
            return broken('missing', expected, expected === r.seq - 1 ? `record ${expected} is missing (deleted)` : `records ${expected}..${r.seq - 1} are missing (deleted)`)
          }
          const hash = ownHash(r)
          if (hash === undefined) return broken('edited', r.seq, `record ${r.seq} cannot be read as an audit record (edited)`)
          if (hash !== r.hash) {
            // the hash covers seq: a record moved from elsewhere still hashes correctly under its old seq
            const belongs = originalSeq(r)
            if (belongs !== undefined) return broken('reordered', r.seq, `record ${r.seq} holds the record that belongs at ${belongs} (reordered)`)
            return broken('edited', r.seq, `record ${r.seq} does not match its hash (edited)`)
          }
          if (r.prev !== prev) {
            return broken('unlinked', r.seq, `record ${r.seq} does not link to record ${r.seq - 1} (a record was inserted, removed or rewritten before it)`)
          }
          if (index) {
            const col = index[i]
            const which = indexMismatch(col, r)
            if (which !== undefined) {
              return broken('index_mismatch', r.seq, `record ${r.seq}: its query column ${which} differs from the hashed record (queries would return other records)`)
            }
          }
          if (r.type === 'audit.unsealed') {
            // its reason is the Authority's own wording, unless someone wrote this record: one line, printable, bounded
            const why = typeof r.fields.reason === 'string' ? printableReason(r.fields.reason) : 'the log differed from its last signed head'
            return broken('foreign_write', r.seq, `record ${r.seq}: the Authority found the log changed behind its back: ${why}`)
          }
          prev = r.hash
          expected++
          last = r
        }
        if (page.length < limit) return undefined
      }
    }
    const walked = await walk()
    if (walked) return walked

    // the stored signed head must cover exactly the last record; it is read after the walk, so
    // records committed meanwhile (each with its head) are walked up to it
    const stored = await store.latestCheckpoint()
    let signed: CheckpointClaims | undefined
    if (stored !== undefined) {
      try {
        signed = await verifyCheckpoint(stored.jws, { issuer: this.#o.issuer, keys: this.#o.checkpointKeys() })
      } catch (err) {
        return broken('head_invalid', last?.seq ?? 0, `the stored signed head is not valid: ${MandateError.is(err) ? err.message : 'unverifiable'}`)
      }
      if (signed.seq > (last?.seq ?? 0)) {
        const more = await walk(signed.seq)
        if (more) return more
      }
    }
    const lastSeq = last?.seq ?? 0
    const at = async (seq: number): Promise<AuditRecord | undefined> => (seq === lastSeq ? last : (await store.readAudit(seq - 1, 1))[0])

    if (stored === undefined) {
      if (last) return broken('head_missing', 1, `no signed head covers records 1..${lastSeq} (the signed heads were deleted, or the records were written without the Authority)`)
    } else if (signed) {
      if (signed.seq > lastSeq) return broken('truncated', lastSeq + 1, `log truncated: the signed head covers ${signed.seq} records but the log ends at ${lastSeq}`)
      if (signed.seq < lastSeq) {
        // the head must still sign the record it was signed over: if not, the chain below it was rewritten
        if (signed.seq > 0 && (await at(signed.seq))?.hash !== signed.hash) {
          return broken('head_mismatch', signed.seq, `record ${signed.seq} is not the record the signed head was signed over (the chain was rewritten)`)
        }
        return broken('unsealed', signed.seq + 1, `records ${signed.seq + 1}..${lastSeq} are covered by no signed head (appended without the Authority's key)`)
      }
      if (signed.seq > 0 && last?.hash !== signed.hash) return broken('head_mismatch', lastSeq, `record ${lastSeq} is not the record the signed head was signed over (the chain was rewritten)`)
    }

    // checkpoints held outside the store: the log must still contain each one's record, and extend it
    let outside: CheckpointClaims | undefined
    const held = options.checkpoint === undefined ? [] : typeof options.checkpoint === 'string' ? [options.checkpoint] : options.checkpoint
    for (const jws of held) {
      let c: CheckpointClaims
      try {
        c = await verifyCheckpoint(jws, { issuer: this.#o.issuer, keys: this.#o.checkpointKeys() })
      } catch (err) {
        return broken('checkpoint_invalid', 0, `the checkpoint held outside is not valid: ${MandateError.is(err) ? err.message : 'unverifiable'}`)
      }
      if (c.seq > lastSeq) return broken('truncated', lastSeq + 1, `log truncated: the checkpoint held outside covers ${c.seq} records but the log ends at ${lastSeq}`)
      if (c.seq > 0 && (await at(c.seq))?.hash !== c.hash) {
        return broken('checkpoint_mismatch', c.seq, `record ${c.seq} is not the record the checkpoint held outside was signed over (the log was rewritten)`)
      }
      if (!outside || c.seq > outside.seq) outside = c
    }
    return {
      ok: true, count,
      ...(last ? { head: { seq: last.seq, hash: last.hash } } : {}),
      ...(signed ? { signed: { seq: signed.seq, iat: signed.iat } } : {}),
      ...(outside ? { checkpoint: { seq: outside.seq } } : {}),
    }
  }
}
