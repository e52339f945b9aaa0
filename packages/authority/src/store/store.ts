/**
 * The one storage interface of the Authority. Every method is async so a networked store (Postgres)
 * fits behind it. Methods that change state take the audit draft of that change and commit both in
 * one transaction: a change is never stored without its audit record, and an answered request is
 * durable once the method resolves.
 */
import { MandateError, type RevocationQuery } from '@mandate/core'
import type { AuditSealer, ChainHead } from '../audit/seal.js'
import type { AuditDecision } from './audit_facets.js'
import type {
  AgentRecord, ApprovalRecord, ApprovalStatus, AuditDraft, AuditQuery, AuditRecord, AuditType, MandateRecord,
  RevocationEntry, RevocationKind, StoredCheckpoint, StoredSigningKey,
} from '../types.js'
import type { StoredFederationRule } from '../federation/types.js'

/** Asks a change that takes principals out of service to keep an admin who can act (at `now`, ms). */
export interface AdminGuard {
  now: number
}

/** An admin that can act at `now` (ms): enabled, not revoked, its registration not expired. */
export function actingAdmin(agent: AgentRecord, now: number): boolean {
  return agent.role === 'admin' && agent.status === 'enabled' && !agent.disabled && agent.revokedAt === undefined && (agent.expiresAt === undefined || agent.expiresAt > now)
}

/**
 * Refuse (LAST_ADMIN) taking `removed` out of service when one of them is an acting admin and no
 * acting admin outside them would remain: nobody could use the admin API again. `agents` is the
 * registry as the change's own transaction reads it.
 */
export function assertAdminRemains(agents: readonly AgentRecord[], removed: ReadonlySet<string>, now: number): void {
  if (!agents.some((a) => removed.has(a.did) && actingAdmin(a, now))) return
  if (agents.some((a) => !removed.has(a.did) && actingAdmin(a, now))) return
  throw new MandateError('LAST_ADMIN', 'this is the last enabled admin: register or enable another admin first, or nobody could administer the Authority')
}

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

/** Filters of a dashboard audit page (all exact but `q`; every given filter must match). */
export interface AuditPageQuery {
  txn?: string
  agent?: string
  subject?: string
  tool?: string
  types?: readonly AuditType[]
  decision?: AuditDecision
  /** Only records whose jti facet is one of these (at most 500). */
  jtis?: readonly string[]
  /** Only call-start records (AuditFacets.call). */
  callsOnly?: boolean
  /** ms, inclusive */
  since?: number
  /** ms, exclusive */
  until?: number
  /** Case-insensitive substring of txn, agent, subject, type, tool or jti, or an agent in `qAgents`. */
  q?: string
  /** dids whose registered name matched `q` (the caller resolves names). */
  qAgents?: readonly string[]
  /** Keyset cursor: only records with seq below this. */
  beforeSeq?: number
  /** 1..10 000 */
  limit: number
}

/** Filters of a task page. */
export interface TaskPageQuery {
  subject?: string
  /** Tasks in which this did holds a mandate. */
  agent?: string
  status?: 'active' | 'revoked' | 'expired'
  /** ms; on the root mandate's issue time (inclusive / exclusive) */
  since?: number
  until?: number
  /** Case-insensitive substring of txn, subject, purpose or root holder did, or a root holder in `qAgents`. */
  q?: string
  qAgents?: readonly string[]
  /** Now (ms) for `expired`. */
  now: number
  /** Keyset cursor: only tasks with cursor below this. */
  before?: number
  limit: number
}

/** A task as a store sees it. */
export interface TaskRow {
  /** Keyset position (store-specific, increasing with creation). */
  cursor: number
  root: MandateRecord
  /** The task or its root mandate is revoked. */
  revoked: boolean
  /** Mandates (root and delegations) and call credentials of the task. */
  mandates: number
  calls: number
}

/** Filters of an approval page. */
export interface ApprovalPageQuery {
  status?: ApprovalStatus
  txn?: string
  /** Requested by, or in the actor chain of the request. */
  agent?: string
  tool?: string
  /** ms on createdAt */
  since?: number
  until?: number
  /** Case-insensitive substring of id, tool, audience, subject, txn, requester or reason, or a requester in `qAgents`. */
  q?: string
  qAgents?: readonly string[]
  before?: number
  limit: number
}

/** One outbox row to write for an audit record (notifications: src/notify). */
export interface OutboxEntry {
  /** Endpoint id (notifications.webhooks[].id). */
  endpoint: string
  /** Notification event type (`approval.requested`, `revocation.task`, ...). */
  event: string
  /** The `webhook-id` of the message: the same on every retry. */
  messageId: string
  /** Deliveries with the same endpoint and key go out in order (e.g. `approval:<id>`). */
  orderKey?: string
}

/**
 * Called inside the transaction that appends `record`, for every record appended; the rows it returns
 * are written to the outbox in that transaction. Must be synchronous and must not throw.
 */
export type OutboxPlanner = (record: AuditRecord) => readonly OutboxEntry[]

export type OutboxStatus = 'pending' | 'delivered' | 'failed'

/** A stored outbox row, with the audit record it notifies of. */
export interface OutboxRow extends OutboxEntry {
  id: number
  /** The audit record (seq, time, type, fields). */
  record: AuditRecord
  status: OutboxStatus
  attempts: number
  /** ms: not attempted before this */
  nextAttemptAt: number
  /** ms */
  createdAt: number
  /** The body as first sent: retries send the very same bytes. */
  body?: string
  lastError?: string
  lastStatus?: number
  /** ms */
  lastFailureAt?: number
  /** ms */
  deliveredAt?: number
}

/** How a delivery attempt changes its row. */
export interface OutboxChange {
  status: OutboxStatus
  attempts: number
  nextAttemptAt: number
  body?: string
  lastError?: string
  lastStatus?: number
  lastFailureAt?: number
  deliveredAt?: number
}

/** Per-endpoint counts of the outbox. */
export interface OutboxEndpointStats {
  endpoint: string
  pending: number
  failed: number
  delivered: number
  /** ms */
  lastSuccessAt?: number
  /** ms */
  lastFailureAt?: number
  lastError?: string
}

/** The audit draft of a task revoked with the principal that granted it (the grantor cascade). */
export function grantedTaskDraft(txn: string, grantor: string, meta: { reason?: string; by?: string }, time: number): AuditDraft {
  return {
    time, type: 'revocation',
    fields: { target: 'task', txn, granted_by: grantor, cascade: 'grantor', ...(meta.by !== undefined ? { by: meta.by } : {}), ...(meta.reason !== undefined ? { reason: meta.reason } : {}) },
  }
}

/**
 * A change committed by ANOTHER Authority instance sharing the store (a networked store's
 * cross-instance events, e.g. Postgres LISTEN/NOTIFY). `audit`: audit records up to `seq` were
 * committed there (a wake-up only: readers re-read the log from the store by seq). `resync`: events
 * may have been missed (the event connection was lost and is back): re-read whatever is being
 * waited on.
 */
export type StoreChange =
  | { kind: 'approval'; id: string }
  | { kind: 'audit'; seq: number }
  | { kind: 'revocation' }
  | { kind: 'keys' }
  | { kind: 'resync' }

/**
 * Do two approvals ask the same thing (agent, parent mandate, task, audience, tool, argument
 * digest)? A pending one is then returned instead of a copy (ApprovalService, shared stores).
 */
export function sameApprovalRequest(a: ApprovalRecord, b: Pick<ApprovalRecord, 'requestedBy' | 'parent' | 'txn' | 'audience' | 'tool' | 'argumentsDigest'>): boolean {
  return a.requestedBy === b.requestedBy && a.parent === b.parent && a.txn === b.txn && a.audience === b.audience && a.tool === b.tool && a.argumentsDigest === b.argumentsDigest
}

/** What an approval insert checks atomically with itself ({@link AuthorityStore.insertApproval}). */
export interface ApprovalAdmission {
  /** Most pending, unexpired approvals one agent may hold. */
  maxPending: number
}

/** Hears StoreChanges; a returned promise is awaited where the store needs the reaction first (keys). */
export type StoreChangeListener = (change: StoreChange) => void | Promise<void>

export interface AuthorityStore {
  /** A short name for diagnostics ('memory', 'sqlite', 'postgres'). */
  readonly kind: string

  /**
   * Cross-instance events (optional; stores used by one process only need none): the listener hears
   * changes committed by other instances, so that an approval decided elsewhere wakes a waiting
   * agent here and signing keys rotated elsewhere are reloaded. Returns the unsubscribe function.
   */
  subscribe?(listener: StoreChangeListener): () => void
  /**
   * Run `fn` holding the store-wide signing-key lock (optional): no two instances rotate (or create
   * the first key) at once; `fn` reloads the keys inside it before deciding.
   */
  withSigningKeyLock?<T>(fn: () => Promise<T>): Promise<T>

  // principals
  /** Insert a principal; the appended audit record, or undefined (and nothing written) when the did is already registered. */
  insertAgent(agent: AgentRecord, audit: AuditDraft): Promise<AuditRecord | undefined>
  getAgent(did: string): Promise<AgentRecord | undefined>
  listAgents(): Promise<AgentRecord[]>
  /**
   * Mark disabled (with the reason); the appended audit record, or undefined when unknown or already
   * disabled. With `keepAdmin`, refuse (LAST_ADMIN, nothing written) when `did` is the last acting
   * admin, checked inside the write transaction so that instances sharing the store cannot each take
   * out a different last admin at once ({@link assertAdminRemains}).
   */
  disableAgent(did: string, at: number, audit: AuditDraft, reason?: string, keepAdmin?: AdminGuard): Promise<AuditRecord | undefined>
  /**
   * Clear `disabled` (and its time and reason); the appended audit record, or undefined when unknown,
   * not disabled, or revoked (revocation is final: a revoked principal is never enabled again).
   */
  enableAgent(did: string, audit: AuditDraft): Promise<AuditRecord | undefined>

  // federation rules (the store's own; rules from the config file are never stored)
  /**
   * Store a federation rule with its audit record; an id already stored is refused
   * (MandateError INVALID_REQUEST, nothing written): a rule is never silently replaced.
   */
  putFederationRule(rec: StoredFederationRule, audit: AuditDraft): Promise<AuditRecord>
  /** Every stored rule, in creation order. */
  listFederationRules(): Promise<StoredFederationRule[]>
  /** Delete a stored rule with its audit record; undefined (and nothing written) when no rule has that id. */
  deleteFederationRule(id: string, audit: AuditDraft): Promise<AuditRecord | undefined>

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
   * `revokedReason`; `disabledAt` unless already disabled), and revokes every task whose root
   * mandate that principal granted (`MandateRecord.grantor`), each with its own audit record from
   * `grantedTask(txn, grantor)` (default: `grantedTaskDraft`) appended after `audit`, all in the
   * same transaction. The task entries are part of `added`.
   */
  revoke(
    entries: ReadonlyArray<{ kind: RevocationKind; id: string }>,
    meta: { at: number; reason?: string; by?: string },
    audit: AuditDraft,
    grantedTask?: (txn: string, grantor: string) => AuditDraft,
    /** As disableAgent's: the agent entries must not take out the last acting admin. */
    keepAdmin?: AdminGuard,
  ): Promise<{ added: RevocationEntry[]; audit: AuditRecord; cascade: AuditRecord[] }>
  /** The tasks (txn) whose root mandate this principal granted, in the order they were granted. */
  tasksGrantedBy(did: string): Promise<string[]>
  isRevoked(query: RevocationQuery): Promise<boolean>
  /** Whether any mandate of this task (txn) was issued (revoking an unknown task is refused). */
  hasTask(txn: string): Promise<boolean>
  /** Entries with seq > afterSeq, in order. */
  revocationsSince(afterSeq: number, limit: number): Promise<RevocationEntry[]>
  revocationHead(): Promise<number>

  // approvals
  /**
   * Insert an approval; returns the appended audit record. With `admit`, a store shared by several
   * processes checks it in the same transaction as the insert (ApprovalService checks it too, one
   * request per agent at a time, which is enough for a store only one process writes): a pending,
   * unexpired approval asking the same thing (agent, parent, task, audience, tool, argument digest)
   * is returned as `{ existing }` instead, and CAPACITY_EXCEEDED is thrown when the agent already has
   * `maxPending` pending.
   */
  insertApproval(approval: ApprovalRecord, audit: AuditDraft, admit?: ApprovalAdmission): Promise<AuditRecord | { existing: ApprovalRecord }>
  getApproval(id: string): Promise<ApprovalRecord | undefined>
  listApprovals(filter: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalRecord[]>
  /** Pending approvals requested by `requestedBy` that expire after `now` (ms), oldest first, at most `limit`. */
  pendingApprovalsBy(requestedBy: string, now: number, limit: number): Promise<ApprovalRecord[]>
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
  readAuditIndex?(afterSeq: number, limit: number): Promise<Array<{
    seq: number; txn: string | null; agent: string | null; subject: string | null
    tool?: string | null; jti?: string | null; decision?: string | null; call?: number | boolean | null; timeType?: string
  }>>
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>
  /**
   * Dashboard reads (indexed in every built-in store; optional for other stores, which the
   * dashboard then serves by bounded scans of queryAudit): one page of records, NEWEST FIRST.
   */
  queryAuditPage?(query: AuditPageQuery): Promise<AuditRecord[]>
  /** Counts of records since `since` (ms): call starts, and refusals (Authority or guard). */
  countAuditSince?(since: number): Promise<{ calls: number; refused: number }>
  /** One page of tasks (root mandates), newest first, with what the summary needs. */
  queryTasks?(query: TaskPageQuery): Promise<TaskRow[]>
  /** How many tasks (root mandates) exist. */
  countTasks?(): Promise<number>
  /** Mandates of one task, in issuance order (the delegation tree). */
  taskMandates?(txn: string, limit: number): Promise<MandateRecord[]>
  /** One page of approvals, newest first. */
  queryApprovals?(query: ApprovalPageQuery): Promise<Array<{ cursor: number; approval: ApprovalRecord }>>
  /** The latest signed head of the chain (stored by the sealed transactions). */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>

  // notification outbox (src/notify; optional for other stores: notifications then refuse to start)
  /** From now on, offer every appended audit record to `planner` inside its transaction (undefined: stop). */
  planOutboxWith?(planner: OutboxPlanner | undefined): void
  /**
   * Pending rows due at `now` (ms), oldest first, leaving out `exclude` (in flight) and any row with
   * an earlier pending row of the same endpoint and order key. Only committed rows.
   */
  outboxDue?(query: { now: number; exclude: readonly number[]; limit: number }): Promise<OutboxRow[]>
  /** The earliest `nextAttemptAt` of a pending row, or undefined when none is pending. */
  outboxNextDue?(): Promise<number | undefined>
  outboxUpdate?(id: number, change: OutboxChange): Promise<void>
  outboxStats?(): Promise<OutboxEndpointStats[]>
  /** The most recently failed rows (status `failed`), newest first. */
  outboxFailed?(limit: number): Promise<OutboxRow[]>
  /** Delete delivered rows delivered before `before` (ms); how many. */
  outboxPrune?(before: number): Promise<number>

  // signing keys
  loadSigningKeys(): Promise<StoredSigningKey[]>
  saveSigningKeys(keys: readonly StoredSigningKey[]): Promise<void>

  /**
   * Readiness (`GET /readyz`): resolve once the backend answered a trivial round trip, reject
   * (STORE_UNAVAILABLE, no connection details in the message) otherwise. Optional: without it the
   * Authority reads `auditHead()` instead.
   */
  ping?(): Promise<void>

  close(): Promise<void>
}
