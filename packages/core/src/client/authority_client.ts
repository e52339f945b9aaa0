import type { OfflineHop } from '../attenuation/verify_chain.js'
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
  /**
   * Exchange the holder's mandate for an audience credential (`"credential": "audience"`): the same
   * actor and key binding, narrowed to one audience, reusable for many calls there, each with a fresh
   * proof bound to the tool and argument digest (the cached call mode). Optional: a client without
   * it, or an Authority that does not issue them (`UNSUPPORTED_TOKEN_TYPE`), leaves the adapters to
   * their per-call exchange or to failing, as configured.
   */
  audienceCredential?(request: AudienceCredentialParams): Promise<IssuedToken>
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

export interface AudienceCredentialParams {
  /** The holder's current mandate. */
  mandate: string
  /** The one audience (canonical resource URI) the credential is for. */
  audience: string
  /** Narrower tool grants (default: the mandate's grants that apply to this audience). */
  tools?: ToolGrant[]
  scopes?: string[]
  /** Lifetime in seconds (never past the mandate's, capped by the Authority, 900 s by default). */
  expiresIn?: number
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
  /**
   * When the call presented an offline chain: a summary of each holder-signed hop (never a token),
   * so the Authority's audit shows delegations it never minted. Recorded as `offline_hops`. From an
   * agent (not a guard), recorded only together with {@link CallReport.offlineChain}.
   */
  offlineHops?: OfflineHopSummary[]
  /**
   * The presented offline chain (`root~hop…`), in an agent's report of its own call: the Authority
   * verifies the hops itself (an agent's summaries alone could describe delegations that never
   * happened) and records only their summaries, never the chain. Sent to the Authority only.
   */
  offlineChain?: string
}

/** One offline hop as reported: core's `OfflineHop` (ids, holder, kind, times, tools; never a token). */
export type OfflineHopSummary = OfflineHop
