/**
 * The audit log: a hash chain of records in the store, signed checkpoints of its head, verification
 * that names the first record where the chain breaks, queries and JSONL export.
 */
import { MandateError, type KeyResolver, type Ed25519Key } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'
import type { AuditDraft, AuditQuery, AuditRecord, StoredCheckpoint } from '../types.js'
import { signCheckpoint, verifyCheckpoint } from './checkpoint.js'
import { auditHash } from './hash.js'

export type AuditVerification =
  | { ok: true; count: number; head?: { seq: number; hash: string }; checkpoint?: { seq: number } }
  | { ok: false; brokenAt: number; reason: string; count: number }

export interface AuditLogOptions {
  issuer: string
  store: AuthorityStore
  /** ms clock */
  now: () => number
  signingKey: () => Ed25519Key
  /** Keys that may have signed a checkpoint (current and retired). */
  checkpointKeys: () => KeyResolver
  /** Sign a checkpoint after this many appended records. Default 100. */
  checkpointEvery?: number
}

export type AuditListener = (record: AuditRecord) => void

/** The seq under which a record's stored hash verifies (searched near its position), if another. */
function originalSeq(r: AuditRecord): number | undefined {
  for (let d = 1; d <= 1024; d++) {
    for (const s of [r.seq - d, r.seq + d]) if (s >= 1 && auditHash({ ...r, seq: s }) === r.hash) return s
  }
  return undefined
}

export class AuditLog {
  readonly #o: AuditLogOptions
  readonly #listeners = new Set<AuditListener>()
  #sinceCheckpoint = 0

  constructor(options: AuditLogOptions) {
    this.#o = options
  }

  /** Register a listener for every appended record; returns the unsubscribe function. */
  onRecord(listener: AuditListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Append a record on its own. */
  async append(type: AuditDraft['type'], fields: AuditDraft['fields']): Promise<AuditRecord> {
    const rec = await this.#o.store.appendAudit({ time: this.#o.now(), type, fields })
    await this.recorded(rec)
    return rec
  }

  /** A draft with the current time, for store methods that append inside their own transaction. */
  draft(type: AuditDraft['type'], fields: AuditDraft['fields']): AuditDraft {
    return { time: this.#o.now(), type, fields }
  }

  /** Tell the log a record was appended (by a store transaction): notify and maybe checkpoint. */
  async recorded(rec: AuditRecord): Promise<void> {
    this.#notify(rec)
    if (++this.#sinceCheckpoint >= (this.#o.checkpointEvery ?? 100)) await this.checkpoint()
  }

  #notify(rec: AuditRecord): void {
    for (const l of this.#listeners) {
      try {
        l(rec)
      } catch {
        // a listener's failure must not fail the request that was already committed (documented)
      }
    }
  }

  /** Sign and store a checkpoint of the current head. */
  async checkpoint(): Promise<StoredCheckpoint | undefined> {
    this.#sinceCheckpoint = 0
    const head = await this.#o.store.auditHead()
    if (!head) return undefined
    const time = this.#o.now()
    const jws = signCheckpoint({ iss: this.#o.issuer, seq: head.seq, hash: head.hash, iat: Math.floor(time / 1000) }, this.#o.signingKey())
    const cp = { seq: head.seq, hash: head.hash, time, jws }
    await this.#o.store.putCheckpoint(cp)
    return cp
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#o.store.latestCheckpoint()
  }

  query(q: AuditQuery = {}): Promise<AuditRecord[]> {
    return this.#o.store.queryAudit(q)
  }

  /** Every record as one JSON line each, in order. */
  async *exportJsonl(q: Omit<AuditQuery, 'afterSeq' | 'limit'> = {}): AsyncIterable<string> {
    let after = 0
    for (;;) {
      const page = await this.#o.store.queryAudit({ ...q, afterSeq: after, limit: 1000 })
      for (const r of page) yield `${JSON.stringify(r)}\n`
      if (page.length < 1000) return
      after = (page[page.length - 1] as AuditRecord).seq
    }
  }

  /**
   * Verify the whole chain: contiguous seq from 1, each record's hash over its content, each link to
   * the previous hash, and the head against the latest signed checkpoint (or the one given, which
   * should come from outside the store). Reports the first seq where the chain breaks.
   */
  async verify(options: { checkpoint?: string } = {}): Promise<AuditVerification> {
    let expected = 1
    let prev = ''
    let count = 0
    let last: AuditRecord | undefined
    for (let after = 0; ; ) {
      const page = await this.#o.store.readAudit(after, 2000)
      for (const r of page) {
        count++
        if (r.seq !== expected) {
          return { ok: false, brokenAt: expected, count, reason: expected === r.seq - 1 ? `record ${expected} is missing (deleted)` : `records ${expected}..${r.seq - 1} are missing (deleted)` }
        }
        if (auditHash(r) !== r.hash) {
          // the hash covers seq: a record moved from elsewhere still hashes correctly under its old seq
          const belongs = originalSeq(r)
          if (belongs !== undefined) {
            return { ok: false, brokenAt: r.seq, count, reason: `record ${r.seq} holds the record that belongs at ${belongs} (reordered)` }
          }
          return { ok: false, brokenAt: r.seq, count, reason: `record ${r.seq} does not match its hash (edited)` }
        }
        if (r.prev !== prev) {
          return { ok: false, brokenAt: r.seq, count, reason: `record ${r.seq} does not link to record ${r.seq - 1} (a record was inserted, removed or rewritten before it)` }
        }
        prev = r.hash
        expected++
        last = r
      }
      if (page.length < 2000) break
      after = (page[page.length - 1] as AuditRecord).seq
    }
    const jws = options.checkpoint ?? (await this.#o.store.latestCheckpoint())?.jws
    if (jws === undefined) return last ? { ok: true, count, head: { seq: last.seq, hash: last.hash } } : { ok: true, count }
    let cp
    try {
      cp = await verifyCheckpoint(jws, { issuer: this.#o.issuer, keys: this.#o.checkpointKeys() })
    } catch (err) {
      return { ok: false, brokenAt: 0, count, reason: `checkpoint is not valid: ${MandateError.is(err) ? err.message : 'unverifiable'}` }
    }
    const lastSeq = last?.seq ?? 0
    if (cp.seq > lastSeq) {
      return { ok: false, brokenAt: lastSeq + 1, count, reason: `log truncated: the signed checkpoint covers ${cp.seq} records but the log ends at ${lastSeq}` }
    }
    if (cp.seq > 0) {
      const [atCp] = await this.#o.store.readAudit(cp.seq - 1, 1)
      if (!atCp || atCp.hash !== cp.hash) return { ok: false, brokenAt: cp.seq, count, reason: `record ${cp.seq} does not match the signed checkpoint` }
    }
    return { ok: true, count, ...(last ? { head: { seq: last.seq, hash: last.hash } } : {}), checkpoint: { seq: cp.seq } }
  }
}
