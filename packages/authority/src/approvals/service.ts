/**
 * Human approvals: created by an exchange that policy marks `require_approval`, bound to the holder,
 * the parent mandate, the audience, the tool and the argument digest; decided once by an approver
 * (role approver/admin, never an agent of the requesting chain); expire after a TTL; consumed by
 * exactly one credential. Listeners (SSE streams, waitForApproval) hear every change.
 */
import { MandateError, randomId, type JsonValue } from '@mandate/core'
import type { AuditLog } from '../audit/chain.js'
import { checkReasonText } from '../audit/reason_text.js'
import { sameApprovalRequest, type AuthorityStore } from '../store/store.js'
import type { ApprovalRecord, ApprovalStatus } from '../types.js'

/** The wire form of an approval (docs/protocol.md). Times are seconds since the epoch. */
export interface ApprovalView {
  id: string
  status: ApprovalStatus
  tool: string
  audience: string
  arguments_digest: string
  arguments?: JsonValue
  reason: string
  requested_by: string
  subject: string
  txn: string
  created_at: number
  expires_at: number
  decided_by?: string
  decided_at?: number
  decision_reason?: string
}

export type ApprovalListener = (approval: ApprovalView) => void

export interface ApprovalRequest {
  requestedBy: string
  parent: string
  subject: string
  txn: string
  actorChain: string[]
  audience: string
  tool: string
  argumentsDigest: string
  arguments?: JsonValue
  reason: string
}

export function approvalView(a: ApprovalRecord): ApprovalView {
  const v: ApprovalView = {
    id: a.id, status: a.status, tool: a.tool, audience: a.audience, arguments_digest: a.argumentsDigest, reason: a.reason,
    requested_by: a.requestedBy, subject: a.subject, txn: a.txn, created_at: Math.floor(a.createdAt / 1000), expires_at: Math.floor(a.expiresAt / 1000),
  }
  if (a.arguments !== undefined) v.arguments = a.arguments
  if (a.decidedBy !== undefined) v.decided_by = a.decidedBy
  if (a.decidedAt !== undefined) v.decided_at = Math.floor(a.decidedAt / 1000)
  if (a.decisionReason !== undefined) v.decision_reason = a.decisionReason
  return v
}

/** Is the approval's task, its parent mandate or an ancestor, or an agent of its chain revoked? */
export async function approvalRevoked(store: Pick<AuthorityStore, 'getMandate' | 'isRevoked'>, a: ApprovalRecord): Promise<boolean> {
  const parent = await store.getMandate(a.parent)
  const ids = [a.parent, ...(parent?.claims.delegation.ancestors ?? [])]
  return store.isRevoked({ ids, txn: a.txn, actors: [...a.actorChain, a.requestedBy] })
}

/** Pending approvals one agent may hold at once (each one asks a human for a decision). */
export const MAX_PENDING_PER_AGENT = 100

export class ApprovalService {
  readonly #listeners = new Map<string, Set<ApprovalListener>>()

  constructor(
    private readonly store: AuthorityStore,
    private readonly audit: AuditLog,
    private readonly now: () => number,
    private readonly ttlSeconds: number,
    private readonly isApprover: (did: string) => Promise<boolean>,
  ) {}

  /**
   * Create a pending approval (called by the exchange), or return the pending one already asking
   * the same thing: the same agent, parent mandate, task, audience, tool and argument digest. An
   * agent repeating a request (or looping on it) must not flood approvers with copies, and one agent
   * holds at most {@link MAX_PENDING_PER_AGENT} pending approvals (CAPACITY_EXCEEDED beyond).
   */
  request(req: ApprovalRequest): Promise<ApprovalRecord> {
    // one request per agent at a time in this process: the check below and the insert are then one
    // step (concurrent requests each saw room and all inserted: 240 pending past the cap of 100)
    const prev = this.#requesting.get(req.requestedBy) ?? Promise.resolve()
    const run = prev.then(() => this.#request(req), () => this.#request(req))
    const settled = run.then(() => undefined, () => undefined)
    this.#requesting.set(req.requestedBy, settled)
    void settled.then(() => {
      if (this.#requesting.get(req.requestedBy) === settled) this.#requesting.delete(req.requestedBy)
    })
    return run
  }

  readonly #requesting = new Map<string, Promise<void>>()

  async #request(req: ApprovalRequest): Promise<ApprovalRecord> {
    const now = this.now()
    const pending = await this.store.pendingApprovalsBy(req.requestedBy, now, MAX_PENDING_PER_AGENT)
    const same = pending.find((a) => sameApprovalRequest(a, req))
    if (same) return same
    if (pending.length >= MAX_PENDING_PER_AGENT) {
      throw new MandateError('CAPACITY_EXCEEDED', `this agent has ${MAX_PENDING_PER_AGENT} approvals pending; retry when some are decided or expire`)
    }
    const rec: ApprovalRecord = { id: randomId(), status: 'pending', ...req, createdAt: now, expiresAt: now + this.ttlSeconds * 1000, used: false }
    const fields: Record<string, JsonValue> = {
      approval: rec.id, agent: rec.requestedBy, subject: rec.subject, txn: rec.txn, parent: rec.parent, audience: rec.audience,
      tool: rec.tool, args: rec.argumentsDigest, reason: rec.reason, expires_at: Math.floor(rec.expiresAt / 1000),
    }
    // a store shared with other processes re-checks both inside its insert transaction
    const inserted = await this.store.insertApproval(rec, this.audit.draft('approval.requested', fields), { maxPending: MAX_PENDING_PER_AGENT })
    if ('existing' in inserted) return inserted.existing
    await this.audit.recorded(inserted)
    this.#emit(rec)
    return rec
  }

  /** Read an approval; a pending one past its expiry is expired first. */
  async get(id: string): Promise<ApprovalRecord> {
    const a = await this.store.getApproval(id)
    if (!a) throw new MandateError('NOT_FOUND', 'no such approval')
    if (a.status === 'pending' && a.expiresAt <= this.now()) {
      await this.#expire(a.id)
      return (await this.store.getApproval(id)) as ApprovalRecord
    }
    return a
  }

  async list(filter: { status?: ApprovalStatus; limit?: number } = {}): Promise<ApprovalRecord[]> {
    await this.sweep()
    return this.store.listApprovals(filter)
  }

  async approve(id: string, by: { approver: string; reason?: string }): Promise<ApprovalRecord> {
    return this.#decide(id, 'approved', by.approver, by.reason)
  }

  async deny(id: string, by: { approver: string; reason?: string }): Promise<ApprovalRecord> {
    return this.#decide(id, 'denied', by.approver, by.reason)
  }

  async #decide(id: string, status: 'approved' | 'denied', approver: string, reason: string | undefined): Promise<ApprovalRecord> {
    if (typeof approver !== 'string' || !(await this.isApprover(approver))) {
      throw new MandateError('ACCESS_DENIED', 'only a registered, enabled approver or admin can decide approvals')
    }
    checkReasonText(reason)
    const a = await this.get(id)
    if (a.requestedBy === approver || a.actorChain.includes(approver)) {
      throw new MandateError('ACCESS_DENIED', 'an agent of the requesting chain cannot decide its own approval')
    }
    if (a.status !== 'pending') throw new MandateError('INVALID_REQUEST', `approval is already ${a.status}`)
    // an approval of revoked work could never be redeemed (the exchange refuses it), but it would
    // read as an approval in the audit and the dashboard; a denial still clears it from the queue
    if (status === 'approved' && (await this.#revoked(a))) {
      // INVALID_REQUEST, as for a decided approval: REVOKED (401) would read as the approver's own credential refused
      throw new MandateError('INVALID_REQUEST', 'the task, the mandate this approval derives from or an agent of its chain has been revoked; it can only be denied', { detail: { reason: 'revoked' } })
    }
    const now = this.now()
    const fields: Record<string, JsonValue> = { approval: id, approver, agent: a.requestedBy, subject: a.subject, txn: a.txn, tool: a.tool, args: a.argumentsDigest }
    if (reason !== undefined) fields.reason = reason
    const rec = await this.store.decideApproval(id, { status, decidedBy: approver, decidedAt: now, ...(reason !== undefined ? { decisionReason: reason } : {}) }, this.audit.draft(status === 'approved' ? 'approval.approved' : 'approval.denied', fields))
    if (!rec) throw new MandateError('INVALID_REQUEST', 'approval is no longer pending')
    await this.audit.recorded(rec)
    const updated = (await this.store.getApproval(id)) as ApprovalRecord
    this.#emit(updated)
    return updated
  }

  #revoked(a: ApprovalRecord): Promise<boolean> {
    return approvalRevoked(this.store, a)
  }

  async #expire(id: string): Promise<void> {
    const a = await this.store.getApproval(id)
    if (!a) return
    const rec = await this.store.decideApproval(id, { status: 'expired', decidedAt: this.now() }, this.audit.draft('approval.expired', { approval: id, agent: a.requestedBy, subject: a.subject, txn: a.txn }))
    if (rec) {
      await this.audit.recorded(rec)
      this.#emit((await this.store.getApproval(id)) as ApprovalRecord)
    }
  }

  /** Expire every pending approval past its expiry (run on a timer and before listings). */
  async sweep(): Promise<number> {
    const ids = await this.store.expiredPending(this.now(), 500)
    for (const id of ids) await this.#expire(id)
    return ids.length
  }

  /** Listen to changes of one approval; returns the unsubscribe function. */
  subscribe(id: string, listener: ApprovalListener): () => void {
    let set = this.#listeners.get(id)
    if (!set) this.#listeners.set(id, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0) this.#listeners.delete(id)
    }
  }

  /**
   * Another Authority instance on the same store changed approval `id` (or, without an id, events
   * may have been missed): re-read what is being waited on here and tell its listeners, so an agent
   * waiting on this instance wakes on a decision made on another.
   */
  async refresh(id?: string): Promise<void> {
    const ids = id === undefined ? [...this.#listeners.keys()] : this.#listeners.has(id) ? [id] : []
    for (const one of ids) {
      const a = await this.store.getApproval(one)
      if (a) this.#emit(a)
    }
  }

  #emit(a: ApprovalRecord): void {
    const view = approvalView(a)
    for (const l of [...(this.#listeners.get(a.id) ?? [])]) {
      try {
        l(view)
      } catch {
        // listeners are notification sinks; their failure does not undo a committed decision
      }
    }
  }
}
