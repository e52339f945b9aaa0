/**
 * Shared types of @mandate/authority: principals, stored mandates, revocations, approvals and audit
 * records. Stored records never hold a token, a private key or an approval secret.
 */
import type { JsonValue, MandateClaims } from '@mandate/core'

/** What a registered principal may do. `resource` = a guard that reports guarded calls. */
export type Role = 'agent' | 'grantor' | 'approver' | 'admin' | 'resource'
export const ROLES: readonly Role[] = ['agent', 'grantor', 'approver', 'admin', 'resource']

/**
 * Whether a principal may act. `disabled`: stopped by an admin, reversible (`enableAgent`).
 * `revoked`: final for that did (its key is presumed compromised; register a new key).
 */
export type AgentStatus = 'enabled' | 'disabled' | 'revoked'

export interface AgentRecord {
  did: string
  /** RFC 7638 thumbprint of the key behind `did` (the `cnf.jkt` of its mandates). */
  jkt: string
  name: string
  owner?: string
  role: Role
  metadata?: Record<string, JsonValue>
  /** `revoked` implies `disabled`. */
  status: AgentStatus
  /** True when disabled or revoked: such a principal can do nothing. */
  disabled: boolean
  /** ms since the epoch */
  createdAt: number
  /** ms since the epoch (for a revoked agent: when it was revoked, unless it was disabled before). */
  disabledAt?: number
  disabledReason?: string
  /** ms since the epoch */
  revokedAt?: number
  revokedReason?: string
  /** The workload identity this key is bound to (an agent admitted by a federation rule). */
  binding?: AgentBinding
  /** ms since the epoch: after it the principal can do nothing (registered for a bounded time). */
  expiresAt?: number
}

/**
 * The external workload identity a registered key is bound to: the platform token's issuer and
 * subject, the federation rule that admitted it, and the few matched claims worth showing
 * (repository/ref, namespace/serviceaccount...). Never a token.
 */
export interface AgentBinding {
  iss: string
  sub: string
  rule: string
  claims?: Record<string, string>
}

export interface RegisterAgentInput {
  did: string
  name: string
  owner?: string
  /** Default `agent`. */
  role?: Role
  metadata?: Record<string, JsonValue>
  /** The workload identity the key is bound to (federation; not accepted from the admin API). */
  binding?: AgentBinding
  /** ms since the epoch: the registration ends then. */
  expiresAt?: number
}

/** `audience`: an audience credential (cached call mode), same holder as its parent, one audience. */
export type MandateKind = 'root' | 'delegation' | 'audience' | 'call'

/** A mandate the Authority issued: its claims and ancestry, never the token itself. */
export interface MandateRecord {
  jti: string
  parent?: string
  txn: string
  subject: string
  /** `client_id`: the holder (current actor). */
  holder: string
  /**
   * did of the principal that granted the task (root mandates only). Revoking that principal revokes
   * the task. Absent on derived mandates, and on root mandates stored before grantors were recorded.
   */
  grantor?: string
  kind: MandateKind
  depth: number
  /** seconds */
  iat: number
  exp: number
  /** base64url SHA-256 of the compact token (for lookups by token without storing it). */
  tokenHash: string
  maxUses?: number
  /** Call credentials issued under this mandate or its descendants (counted where maxUses is set). */
  uses: number
  claims: MandateClaims
}

export type RevocationKind = 'mandate' | 'task' | 'agent'

export interface RevocationEntry {
  /** Monotonic sequence; the revocation-status cursor. */
  seq: number
  kind: RevocationKind
  id: string
  /** ms since the epoch */
  at: number
  reason?: string
  by?: string
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired'

export interface ApprovalRecord {
  id: string
  status: ApprovalStatus
  /** The holder that asked (client_id of the parent mandate). */
  requestedBy: string
  /** jti of the mandate the call credential would be derived from. */
  parent: string
  subject: string
  txn: string
  actorChain: string[]
  audience: string
  tool: string
  argumentsDigest: string
  /** The arguments, kept for the approver to read (omitted when `storeArguments` is off). */
  arguments?: JsonValue
  reason: string
  /** ms since the epoch */
  createdAt: number
  expiresAt: number
  decidedBy?: string
  decidedAt?: number
  decisionReason?: string
  /** An approval authorises exactly one credential. */
  used: boolean
}

export type AuditType =
  | 'agent.registered'
  | 'agent.disabled'
  | 'agent.enabled'
  | 'grant'
  | 'exchange'
  | 'refusal'
  | 'approval.requested'
  | 'approval.approved'
  | 'approval.denied'
  | 'approval.expired'
  | 'revocation'
  | 'call.report'
  | 'key.rotated'
  | 'federation.rule.added'
  | 'federation.rule.removed'
  /** Written by the Authority when it found the stored chain differing from the head it last signed. */
  | 'audit.unsealed'

/** What a caller appends; the chain fields are added by the store inside its transaction. */
export interface AuditDraft {
  /** ms since the epoch */
  time: number
  type: AuditType
  fields: Record<string, JsonValue>
}

/** One hash-chained record: hash = SHA-256(canonical JSON of {seq, time, type, fields, prev}). */
export interface AuditRecord extends AuditDraft {
  seq: number
  /** Hash of the previous record ('' for the first). */
  prev: string
  hash: string
}

export interface AuditQuery {
  txn?: string
  agent?: string
  subject?: string
  type?: AuditType
  /** ms since the epoch, inclusive */
  since?: number
  /** ms since the epoch, exclusive */
  until?: number
  limit?: number
  /** Only records with seq greater than this. */
  afterSeq?: number
  /** Only records with seq at most this (an export stops at the head it started from). */
  untilSeq?: number
}

/** A signed head of the audit chain (JWS typ mandate-checkpoint+jwt over {iss, seq, hash, iat}). */
export interface StoredCheckpoint {
  seq: number
  hash: string
  /** ms since the epoch */
  time: number
  jws: string
}

/** A signing key as persisted. `privateJwk` is secret: only the key store reads it. */
export interface StoredSigningKey {
  kid: string
  privateJwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; d: string }
  /** ms since the epoch */
  createdAt: number
  /** When it stopped being the current key; absent for the current key. */
  retiredAt?: number
}
