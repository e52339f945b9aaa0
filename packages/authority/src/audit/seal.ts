/**
 * Store-side sealing of the audit chain, shared by the stores: every transaction that appends audit
 * records also stores a head signed over its last record (one signature per transaction, however
 * many records it appends), inside the same transaction. So a record is never committed without a
 * signature of the Authority covering it, and a crash can leave no unsigned tail.
 *
 * Before a transaction appends, the chain head in the store is compared with the head this process
 * last sealed. If they differ, someone else wrote to the log (records appended, cut or replaced
 * outside the Authority): the Authority does not silently sign over that. It first appends an
 * `audit.unsealed` record saying what it found, which `verify` then reports for good. A head sealed
 * by another process on the same store (read back and signature-checked) is accepted when it is
 * ahead of the one this process sealed: seq never goes back.
 */
import type { AuditDraft, StoredCheckpoint } from '../types.js'

export interface ChainHead {
  seq: number
  hash: string
}

/** What a store needs to seal its audit transactions (supplied by the Authority's AuditLog). */
export interface AuditSealer {
  /** Sign the head of the chain; throwing aborts the transaction. */
  sign(head: ChainHead): StoredCheckpoint
  /** The head a stored signed head attests, when its signature is the Authority's; otherwise undefined. */
  trust(stored: StoredCheckpoint): ChainHead | undefined
  /** ms clock */
  now(): number
  /** Called after a transaction with a new signed head committed (e.g. to publish it to a witness). */
  committed?(head: StoredCheckpoint): void
}

const same = (a: ChainHead | undefined, b: ChainHead | undefined): boolean => (a === undefined ? b === undefined : b !== undefined && a.seq === b.seq && a.hash === b.hash)

/** The draft of the record that says the stored chain is not what this Authority last signed. */
export function unsealedDraft(found: ChainHead | undefined, expected: ChainHead | undefined, time: number): AuditDraft {
  const fs = found?.seq ?? 0
  const es = expected?.seq ?? 0
  let reason: string
  if (fs > es && expected !== undefined) reason = `records ${es + 1}..${fs} were not written by this Authority (no signed head covers them)`
  else if (fs > es) reason = `records 1..${fs} are covered by no valid signed head`
  else if (fs < es) reason = `records ${fs + 1}..${es} are missing: the log was cut after its last signed head`
  else reason = `record ${fs} was replaced after it was signed`
  return {
    time,
    type: 'audit.unsealed',
    fields: { reason, found: found ? { seq: found.seq, hash: found.hash } : null, expected: expected ? { seq: expected.seq, hash: expected.hash } : null },
  }
}

/** Per-store sealing state: the head last sealed, and the head signed inside the open transaction. */
export class SealState {
  #sealer: AuditSealer | undefined
  #trusted: ChainHead | undefined
  #pending: StoredCheckpoint | undefined
  #checked = false

  /** Seal from now on; `trusted` is the head known to be signed (checked by the caller), if any. */
  attach(sealer: AuditSealer, trusted: ChainHead | undefined): void {
    this.#sealer = sealer
    this.#trusted = trusted
  }

  get attached(): boolean {
    return this.#sealer !== undefined
  }

  /** Start of a transaction. */
  begin(): void {
    this.#pending = undefined
    this.#checked = false
  }

  /** State to restore when one operation inside a transaction is rolled back (a savepoint). */
  snapshot(): boolean {
    return this.#checked
  }

  restore(checked: boolean): void {
    this.#checked = checked
  }

  /**
   * Before an append: the stored chain head and a reader of the stored signed head. Returns the
   * draft of an `audit.unsealed` record to append first, when the log is not what was last sealed.
   */
  check(head: ChainHead | undefined, storedHead: () => StoredCheckpoint | undefined): AuditDraft | undefined {
    const sealer = this.#sealer
    if (!sealer || this.#checked) return undefined
    this.#checked = true
    if (same(head, this.#trusted)) return undefined
    // another process on the same store may have sealed since: accept its head when it is signed
    // and moves the chain forward. A signed head at or below the one this process sealed is an old
    // genuine head put back (records and head rolled back together): never accepted.
    const stored = storedHead()
    const attested = stored ? sealer.trust(stored) : undefined
    if (attested && same(head, attested) && (this.#trusted === undefined || attested.seq > this.#trusted.seq)) {
      this.#trusted = attested
      return undefined
    }
    return unsealedDraft(head, this.#trusted, sealer.now())
  }

  /** After the last append of a transaction: the signed head to store in it. */
  seal(last: ChainHead): StoredCheckpoint | undefined {
    if (!this.#sealer) return undefined
    this.#pending = this.#sealer.sign(last)
    return this.#pending
  }

  /**
   * The transaction committed. Its head is published (to the witness) at once, unless `publish` is
   * false: a store that makes the commit durable later publishes it then, with `published`.
   */
  commit(options: { publish?: boolean } = {}): StoredCheckpoint | undefined {
    const p = this.#pending
    this.#pending = undefined
    if (!p) return undefined
    this.#trusted = { seq: p.seq, hash: p.hash }
    if (options.publish !== false) this.published(p)
    return p
  }

  /** A committed head is durable: publish it (best effort; never fails the committed write). */
  published(head: StoredCheckpoint): void {
    try {
      this.#sealer?.committed?.(head)
    } catch {
      // publishing is best effort and never fails a committed write
    }
  }

  /** The transaction rolled back. */
  rollback(): void {
    this.#pending = undefined
  }
}
