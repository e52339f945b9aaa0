/**
 * The one storage interface of the Authority. Every method is async so a networked store (Postgres)
 * fits behind it. Methods that change state take the audit draft of that change and commit both in
 * one transaction: a change is never stored without its audit record, and an answered request is
 * durable once the method resolves.
 */
import type { RevocationQuery } from '@mandate/core'
import type { AuditSealer, ChainHead } from '../audit/seal.js'
import type {
  AgentRecord, ApprovalRecord, ApprovalStatus, AuditDraft, AuditQuery, AuditRecord, MandateRecord,
  RevocationEntry, RevocationKind, StoredCheckpoint, StoredSigningKey,
} from '../types.js'

export interface IssueMandateInput {
  mandate: MandateRecord
  /** Re-checked inside the transaction: refuse when any of these is revoked. */
  revocation?: RevocationQuery
  /** Mandates whose use counter must be below max_uses; each is incremented (all or nothing). */
  consumeUses?: readonly string[]
  /** An approved, unused approval that this issuance consumes. */
  consumeApproval?: string
  audit: AuditDraft
}

export type IssueMandateResult =
  | { ok: true; audit: AuditRecord }
  | { ok: false; reason: 'revoked' | 'uses_exhausted' | 'approval_unusable' | 'duplicate'; jti?: string }

export interface ApprovalDecision {
  status: Exclude<ApprovalStatus, 'pending'>
  decidedBy?: string
  decidedAt: number
  decisionReason?: string
}

export interface AuthorityStore {
  /** A short name for diagnostics ('memory', 'sqlite'). */
  readonly kind: string

  // principals
  /** Insert a principal; the appended audit record, or undefined (and nothing written) when the did is already registered. */
  insertAgent(agent: AgentRecord, audit: AuditDraft): Promise<AuditRecord | undefined>
  getAgent(did: string): Promise<AgentRecord | undefined>
  listAgents(): Promise<AgentRecord[]>
  /** Mark disabled (with the reason); the appended audit record, or undefined when unknown or already disabled. */
  disableAgent(did: string, at: number, audit: AuditDraft, reason?: string): Promise<AuditRecord | undefined>
  /**
   * Clear `disabled` (and its time and reason); the appended audit record, or undefined when unknown,
   * not disabled, or revoked (revocation is final: a revoked principal is never enabled again).
   */
  enableAgent(did: string, audit: AuditDraft): Promise<AuditRecord | undefined>

  // mandates
  issueMandate(input: IssueMandateInput): Promise<IssueMandateResult>
  getMandate(jti: string): Promise<MandateRecord | undefined>
  getMandateByTokenHash(hash: string): Promise<MandateRecord | undefined>
  countMandates(): Promise<number>
  /** Every descendant jti of a mandate (children, grandchildren, ...). */
  descendants(jti: string): Promise<string[]>

  // revocation
  /**
   * Add revocation entries (duplicates are skipped) with their audit record, atomically. An `agent`
   * entry also marks that principal's registry record revoked and disabled (`revokedAt`,
   * `revokedReason`; `disabledAt` unless already disabled) in the same transaction.
   */
  revoke(entries: ReadonlyArray<{ kind: RevocationKind; id: string }>, meta: { at: number; reason?: string; by?: string }, audit: AuditDraft): Promise<{ added: RevocationEntry[]; audit: AuditRecord }>
  isRevoked(query: RevocationQuery): Promise<boolean>
  /** Whether any mandate of this task (txn) was issued (revoking an unknown task is refused). */
  hasTask(txn: string): Promise<boolean>
  /** Entries with seq > afterSeq, in order. */
  revocationsSince(afterSeq: number, limit: number): Promise<RevocationEntry[]>
  revocationHead(): Promise<number>

  // approvals
  /** Insert an approval; returns the appended audit record. */
  insertApproval(approval: ApprovalRecord, audit: AuditDraft): Promise<AuditRecord>
  getApproval(id: string): Promise<ApprovalRecord | undefined>
  listApprovals(filter: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalRecord[]>
  /** Move a pending approval to a final state; the appended audit record, or undefined when it was not pending. */
  decideApproval(id: string, decision: ApprovalDecision, audit: AuditDraft): Promise<AuditRecord | undefined>
  /** Pending approvals whose expiry is at or before `now` (ms). */
  expiredPending(now: number, limit: number): Promise<string[]>

  // audit
  /**
   * Sealing: from now on every transaction that appends audit records also stores, in the same
   * transaction, a head signed by `sealer` over its last record (see audit/seal.ts). `trusted` is the
   * head last known to be signed (its signature checked by the caller), or undefined for none. A
   * store appends unsealed records until this is called (the Authority calls it when it opens).
   */
  sealAuditWith(sealer: AuditSealer, trusted: ChainHead | undefined): void
  appendAudit(draft: AuditDraft): Promise<AuditRecord>
  /** Append several records in one transaction, under one signed head. */
  appendAuditBatch(drafts: readonly AuditDraft[]): Promise<AuditRecord[]>
  auditHead(): Promise<{ seq: number; hash: string } | undefined>
  /** Raw records in storage order (seq ascending) for verification, starting after `afterSeq`. */
  readAudit(afterSeq: number, limit: number): Promise<AuditRecord[]>
  /**
   * For stores that keep query columns apart from the hashed record: those columns as stored, in
   * seq order after `afterSeq`, so verification can check that they say what the record says.
   */
  readAuditIndex?(afterSeq: number, limit: number): Promise<Array<{ seq: number; txn: string | null; agent: string | null; subject: string | null }>>
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>
  /** The latest signed head of the chain (stored by the sealed transactions). */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>

  // signing keys
  loadSigningKeys(): Promise<StoredSigningKey[]>
  saveSigningKeys(keys: readonly StoredSigningKey[]): Promise<void>

  close(): Promise<void>
}
