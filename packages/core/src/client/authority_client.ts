import type { Budget, ToolGrant } from '../mandate/claims.js'

/**
 * What an agent-side adapter needs from the Authority. Two implementations exist: in-process
 * (`authority.clientFor(key)` in @mandate/authority) and over HTTP (`createHttpAuthorityClient`).
 * Adapters depend only on this interface.
 */
export interface AuthorityClient {
  readonly issuer: string
  /** Exchange the holder's mandate for a narrower child mandate bound to another agent's key. */
  delegate(request: DelegateParams): Promise<IssuedToken>
  /** Exchange the holder's mandate for a call credential for one audience, tool and argument set. */
  callCredential(request: CallCredentialParams): Promise<CallCredentialResult>
  /** Resolve when the approval reaches a final state (by event, not by polling). */
  waitForApproval(approvalId: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<ApprovalOutcome>
  /** Record the outcome of a guarded or wrapped call in the audit log (never includes tokens). */
  reportCall?(report: CallReport): Promise<void>
}

export interface DelegateParams {
  /** The holder's current mandate. */
  mandate: string
  /** The delegate's did:key (must be registered). */
  to: string
  audiences?: string[]
  scopes?: string[]
  tools?: ToolGrant[]
  expiresIn?: number
  maxDepth?: number
  budget?: Budget
  maxUses?: number
}

export interface CallCredentialParams {
  mandate: string
  audience: string
  tool: string
  arguments: unknown
  scopes?: string[]
  expiresIn?: number
  /** Resume after a human approved this exact call. */
  approvalId?: string
}

export interface IssuedToken {
  token: string
  /** Seconds since the epoch. */
  expiresAt: number
}

export type CallCredentialResult =
  | ({ status: 'issued' } & IssuedToken)
  | { status: 'approval_required'; approvalId: string; reason: string; expiresAt: number }

export type ApprovalOutcome = { status: 'approved'; approver: string } | { status: 'denied'; approver?: string; reason?: string } | { status: 'expired' }

export interface CallReport {
  /** Mandate id of the credential used (never the token). */
  mandateId: string
  txn: string
  tool: string
  audience: string
  argumentsDigest: string
  decision: 'allowed' | 'refused'
  outcome?: 'success' | 'error'
  errorCode?: string
  actorChain: string[]
  subject: string
}
