/**
 * The Authority as a library: principals, grants, exchanges, policy, approvals, revocation, keys and
 * the audit log over one AuthorityStore. The HTTP server (createAuthorityServer) is a thin edge over
 * this object.
 */
import {
  CLIENT_ASSERTION_TYPE, createNonceSource, decodeOfflineChainUnverified, isDidKey, isToolName, jwkThumbprint, MandateError, MAX_CHAIN_LENGTH, publicJwkFromDidKey,
  verifyOfflineChain, type VerifiedOfflineChain,
  type CallReport, Ed25519Key, type Ed25519PublicJwk, type JsonValue, type NonceSource, type ReplayStore,
  type RevocationSource, type RevocationStatusDocument,
} from '@mandate/core'
import { approvalView, ApprovalService, type ApprovalListener, type ApprovalView } from './approvals/service.js'
import { AuditLog, type AuditListener, type AuditVerification } from './audit/chain.js'
import { checkReasonText } from './audit/reason_text.js'
import { INVISIBLE_OR_CONTROL } from './observability/display_text.js'
import type { AuditWitnessOptions } from './audit/witness.js'
import { createInProcessClient, type InProcessClientOptions } from './client/in_process.js'
import { endpointsFor, nowSec, type AuthorityContext, type AuthorityEndpoints } from './context.js'
import { authenticateClient } from './exchange/client_auth.js'
import { grantRootMandate, type GrantParams } from './exchange/grant.js'
import { federatedGrantParams, ID_JAG_GRANT_PROFILE, JWT_BEARER_GRANT_TYPE, jwtBearerGrant, type FederatedGrantInput } from './exchange/federated_grant.js'
import type { IssuedMandate, RefusalFields } from './exchange/issued.js'
import { FormParams } from './exchange/params.js'
import { auditRefusal, handleTokenRequest, type TokenResponse } from './exchange/token_endpoint.js'
import { PerKeyLimiter, RefusalAuditLimiter } from './audit/refusal_limiter.js'
import { checkExchangeParams, exchangeMandate, type ExchangeParams } from './exchange/token_exchange.js'
import { fileKeyStorage, storeKeyStorage } from './keys/key_storage.js'
import { SigningKeys } from './keys/signing_keys.js'
import type { PolicyEngine } from './policy/engine.js'
import type { PolicyDocument } from './policy/document.js'
import { resolvePolicyOption } from './policy/option.js'
import { introspectToken, revokeToken, type IntrospectionResponse } from './revocation/introspect.js'
import { revocationStatus, revokeTarget, storeRevocationSource, type RevocationResult, type RevocationTarget, type RevokeMeta } from './revocation/revoke.js'
import { admitPrincipal, agentRevoked, keepingAnAdmin } from './exchange/principals.js'
import { MemorySingleUse, replayStoreSingleUse, type SingleUseLimits } from './exchange/single_use.js'
import { DEFAULT_SUBJECT_CACHE_ENTRIES, SubjectCache } from './exchange/subject_cache.js'
import { MemoryStore } from './store/memory.js'
import { NotificationDispatcher, type NotificationStatus } from './notify/dispatcher.js'
import { resolveNotificationOptions, type NotificationOptions, type ResolvedNotifications } from './notify/options.js'
import type { AuthorityStore } from './store/store.js'
import { resolveCallModes, type CallModesOptions, type ResolvedCallModes } from './exchange/call_modes.js'
import { parseOfflineHops } from './audit/offline_hops.js'
import { instrumentStore } from './observability/instrument_store.js'
import { AuthorityMetrics } from './observability/metrics.js'
import { assertAgentOwnsReport, reportSingleUse } from './audit/report_attribution.js'
import { pendingCounter } from './observability/pending_count.js'
import { readiness, type ReadinessReport } from './observability/readiness.js'
import { FederationRegistry } from './federation/registry.js'
import { IssuerKeys, type IssuerKeysOptions } from './federation/issuer_keys.js'
import { parseFederationRule, parseFederationRules } from './federation/rule.js'
import { selectRule } from './federation/select.js'
import type { FederationExplanation, FederationRule } from './federation/types.js'
import { traced } from './observability/tracing.js'
import { ROLES, type AgentRecord, type ApprovalStatus, type AuditQuery, type AuditRecord, type RegisterAgentInput, type StoredCheckpoint } from './types.js'

export interface AuthorityOptions {
  /** Exact `iss` of every mandate; endpoint URLs derive from it. */
  issuer: string
  /** Default: a new MemoryStore. */
  store?: AuthorityStore
  /**
   * A policy document (an array of rules, first match wins, or `{ defaultEffect?, rules }`; validated
   * strictly, POLICY_INVALID on any problem) or any PolicyEngine. Default: allow (mandates bound everything).
   */
  policy?: PolicyDocument | PolicyEngine
  /** Seconds before a pending approval expires. Default 600. */
  approvalTtlSeconds?: number
  /**
   * Audit records for refusals of requests no principal authenticated (bad assertions, unknown
   * grant types, malformed bodies): a token bucket, default burst 100 and 10 per second. Refusals
   * over it are counted into the next record's `suppressed`. Authenticated refusals are always recorded.
   */
  unattributedRefusals?: { burst?: number; perSecond?: number }
  /** ms clock, injectable for tests. */
  now?: () => number
  /** Keep signing keys in this file (mode 0600) instead of the store. */
  keyFile?: string
  /** Seconds a rotated-out key stays published and trusted. Default: maxMandateLifetime. */
  keyOverlapSeconds?: number
  /** Cap on mandate lifetime, seconds. Default 86 400. */
  maxMandateLifetime?: number
  /** Cap on call credential lifetime, seconds (≤ 60). Default 60. */
  maxCallLifetime?: number
  /** Wall-clock skew allowance, seconds (≤ 60). Default 30. */
  skew?: number
  /**
   * @deprecated No effect: every transaction that appends audit records now stores a head signed
   * over them (docs/audit.md). Accepted so existing configurations keep starting.
   */
  checkpointEvery?: number
  /**
   * Publish every signed audit head to a witness held outside the database: a file (one JSON line
   * per head, append-only) and/or a webhook (POST). Never blocks a request; see docs/audit.md.
   */
  auditWitness?: AuditWitnessOptions
  /**
   * Demand server-provided DPoP nonces at the token endpoint (RFC 9449 §8). Default false. `true`
   * uses random nonces of this process; with many instances give a shared source
   * (`createSharedNonceSource` from @mandate/core) so each accepts the nonces of the others.
   */
  requireDpopNonce?: boolean | NonceSource
  /** `refresh_interval` advertised in the revocation-status document, seconds. Default 5. */
  revocationRefreshSeconds?: number
  /** Keep call arguments in approvals so approvers can read them. Default true. */
  storeApprovalArguments?: boolean
  /**
   * Replay store for client assertions and DPoP proofs (share one across instances). Only requests
   * of registered, enabled, unrevoked principals with a valid signature are recorded in it; its own
   * bounds apply. Default: an in-memory store evicting by expiry, bounded per principal (`singleUse`).
   */
  replay?: ReplayStore
  /**
   * Bounds of the default in-memory single-use store. With `replay`, only `perPrincipal` applies:
   * this instance's budget of live entries per principal in front of the shared store.
   */
  singleUse?: SingleUseLimits
  /**
   * Signed webhooks (Standard Webhooks; optionally Slack-shaped) on approvals requested, decided and
   * expired and on revocations, sent from a durable outbox in the store; never blocking a request.
   * Validated strictly (CONFIG_INVALID). See docs/notifications.md.
   */
  notifications?: NotificationOptions
  /**
   * Call modes the Authority issues for (docs/authority-api.md, "Call modes"): `audience` — audience
   * credentials for the cached mode (default true; false refuses them with UNSUPPORTED_TOKEN_TYPE);
   * `offline` — grants that allow holder-signed offline attenuation (default false: a grant asking
   * for `offline` is refused with ATTENUATION_NOT_ALLOWED).
   */
  callModes?: CallModesOptions
  /** Most offline hops a grant may allow (1..8). Default 3; a grant asking for more is refused. */
  maxOfflineHops?: number
  /**
   * Tool patterns that always need an Authority-minted call credential (e.g. for per-call audit at
   * the Authority): grants covering any tool they match are issued with `per_call`.
   */
  perCallTools?: string[]
  /**
   * Federation (docs/federation.md): `rules` trusted from configuration (read-only at runtime;
   * more can be added to the store with the admin API or `mandate federation add`), and how the
   * external issuers' key sets are cached. Validated strictly (CONFIG_INVALID naming the pointer).
   */
  federation?: FederationOptions
  /**
   * Subject tokens verified once (exchange/subject_cache.ts): an agent that exchanges the same
   * mandate for call after call pays its signature verification once, not per exchange. Times, the
   * signing key still being trusted, the stored record, revocation and the chain's agents are
   * checked on every exchange regardless. `maxEntries` (default 4096); 0 verifies every exchange's
   * subject token in full.
   */
  subjectCache?: { maxEntries?: number }
}

/** Federation options of an Authority. */
export interface FederationOptions {
  /** Rules (FederationRule shape; federation.schema.json). */
  rules?: unknown[]
  /**
   * External key sets: refetch no more often than `cooldownSeconds` on an unknown kid (default 30),
   * cache for `cacheMaxAgeSeconds` (default 600), give up after `timeoutMs` (default 5000); after a
   * failed fetch refuse without fetching again for `failureCooldownSeconds` (default 5), and keep
   * using the last good set for at most `staleMaxAgeSeconds` (default 3600; 0: never) while
   * refreshing it fails.
   */
  keys?: { cooldownSeconds?: number; cacheMaxAgeSeconds?: number; timeoutMs?: number; failureCooldownSeconds?: number; staleMaxAgeSeconds?: number }
}

export interface GrantResult extends IssuedMandate {}

export type AuthorityEvent = AuditRecord

/** Approvals as seen by hosts, dashboards and CLIs. */
export interface ApprovalsApi {
  list(filter?: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalView[]>
  get(id: string): Promise<ApprovalView>
  approve(id: string, by: { approver: string; reason?: string }): Promise<ApprovalView>
  deny(id: string, by: { approver: string; reason?: string }): Promise<ApprovalView>
  subscribe(id: string, listener: ApprovalListener): () => void
  /** Expire overdue approvals now (also runs every second). */
  sweep(): Promise<number>
}

export interface AuditApi {
  query(q?: AuditQuery): Promise<AuditRecord[]>
  /**
   * Verify the log end to end. `checkpoint`: the JWS of a signed head held outside the database
   * (exported earlier), or several (`witnessCheckpointsIn` of a witness file); the log must still
   * contain each one's record and extend it. Without one, a log cut or wiped together with its
   * heads cannot be told apart from a shorter log (docs/audit.md).
   */
  verify(options?: { checkpoint?: string | readonly string[] }): Promise<AuditVerification>
  /** The records as JSON lines, read a page at a time (`untilSeq` stops at a head). */
  exportJsonl(q?: Omit<AuditQuery, 'afterSeq' | 'limit'>): AsyncIterable<string>
  /** The current signed head, to keep outside the database (`mandate audit checkpoint`). */
  checkpoint(): Promise<StoredCheckpoint | undefined>
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>
}

const NAME = /^[\x20-\x7e]{1,128}$/
// a call report's ids, URIs and dids: printable ASCII without spaces; its digest base64url; its error a Mandate code
const REPORT_ID = /^[\x21-\x7e]+$/
const REPORT_DIGEST = /^[A-Za-z0-9_-]+$/
const REPORT_CODE = /^[A-Z][A-Z0-9_]*$/
/** The one-report-per-single-use-credential keys: per agent, and in all for an in-memory store (~90 bytes each). */
const REPORT_USE_LIMITS = { perPrincipal: 250_000, maxEntries: 1_000_000 }
/** The tool recorded for a refused call that named no valid tool (the name itself goes escaped into `tool_requested`). */
const INVALID_TOOL = 'invalid-tool-name'
/** Refused-call reports one agent may write: a burst, then this many per second. */
const REFUSED_REPORTS_BURST = 120
const REFUSED_REPORTS_PER_SECOND = 2
/** The operations `mandate_exchanges_total` counts (authentication, approvals and revocation are not exchanges). */
const EXCHANGE_ENDPOINTS: ReadonlySet<string> = new Set(['token', 'exchange', 'grant'])

// Every option by name, so that a misspelt one (`polcy: [...]`) is refused instead of silently
// meaning "no policy". An option added to AuthorityOptions but not listed here fails typecheck.
const AUTHORITY_OPTIONS = {
  issuer: true, store: true, policy: true, approvalTtlSeconds: true, unattributedRefusals: true, now: true, keyFile: true,
  keyOverlapSeconds: true, maxMandateLifetime: true, maxCallLifetime: true, skew: true, checkpointEvery: true,
  requireDpopNonce: true, revocationRefreshSeconds: true, storeApprovalArguments: true, replay: true, singleUse: true,
  auditWitness: true, notifications: true, callModes: true, maxOfflineHops: true, perCallTools: true, federation: true,
  subjectCache: true,
} as const satisfies Record<keyof AuthorityOptions, true>

/**
 * Plain JSON that survives storage unchanged: no Infinity or NaN (stored as null), no integer past
 * 2^53 − 1 (stored rounded), no functions, dates or class instances; nesting ≤ 16.
 */
function isExactJson(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true
  if (typeof v === 'number') return Number.isFinite(v) && (!Number.isInteger(v) || Number.isSafeInteger(v))
  if (typeof v !== 'object' || depth >= 16) return false
  if (Array.isArray(v)) return v.every((x) => isExactJson(x, depth + 1))
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  return Object.values(v).every((x) => isExactJson(x, depth + 1))
}

function subjectCacheEntries(o: unknown): number {
  if (o === undefined) return DEFAULT_SUBJECT_CACHE_ENTRIES
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new MandateError('CONFIG_INVALID', 'subjectCache must be { maxEntries? }')
  refuseUnknownOptions(o, { maxEntries: true }, 'subjectCache')
  // absent means the default; null is not a number of entries
  const n = Object.hasOwn(o, 'maxEntries') ? (o as { maxEntries?: unknown }).maxEntries : DEFAULT_SUBJECT_CACHE_ENTRIES
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 1_000_000) throw new MandateError('CONFIG_INVALID', 'subjectCache.maxEntries must be an integer from 0 to 1000000')
  return n
}

function auditWitnessOption(w: unknown): AuditWitnessOptions {
  if (typeof w !== 'object' || w === null) throw new MandateError('CONFIG_INVALID', 'auditWitness must be { file?, webhook?, onError? }')
  refuseUnknownOptions(w, { file: true, webhook: true, onError: true }, 'auditWitness')
  const o = w as AuditWitnessOptions
  if (o.file !== undefined && (typeof o.file !== 'string' || o.file === '')) throw new MandateError('CONFIG_INVALID', 'auditWitness.file must be a file path')
  if (o.webhook !== undefined) {
    if (typeof o.webhook !== 'object' || o.webhook === null) throw new MandateError('CONFIG_INVALID', 'auditWitness.webhook must be { url, headers?, timeoutMs? }')
    refuseUnknownOptions(o.webhook, { url: true, headers: true, timeoutMs: true }, 'auditWitness.webhook')
    let url: URL | undefined
    try {
      url = new URL(String(o.webhook.url))
    } catch {
      url = undefined
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new MandateError('CONFIG_INVALID', 'auditWitness.webhook.url must be an http(s) URL')
  }
  return o
}

function refuseUnknownOptions(options: object, known: Readonly<Record<string, true>>, where: string): void {
  for (const k of Object.keys(options)) {
    if (!Object.hasOwn(known, k)) {
      throw new MandateError('CONFIG_INVALID', `unknown ${where} option "${k.slice(0, 40)}" (known: ${Object.keys(known).join(', ')})`, { detail: { option: k.slice(0, 40) } })
    }
  }
}

// The in-process approvals API takes the same shapes the HTTP edge does, refused the same way.
function decisionId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 128) throw new MandateError('INVALID_REQUEST', 'approval id must be a non-empty string')
  return id
}
function decisionBy(by: unknown): { approver: string; reason?: string } {
  if (typeof by !== 'object' || by === null) throw new MandateError('INVALID_REQUEST', 'the decision must name its approver: { approver, reason? }')
  const { approver, reason } = by as Record<string, unknown>
  if (typeof approver !== 'string') throw new MandateError('INVALID_REQUEST', 'approver must be a did')
  if (reason !== undefined && typeof reason !== 'string') throw new MandateError('INVALID_REQUEST', 'reason must be a string')
  return { approver, ...(reason !== undefined ? { reason } : {}) }
}
function approvalFilter(f: unknown): { status?: ApprovalStatus; limit?: number } {
  if (f === undefined) return {}
  if (typeof f !== 'object' || f === null) throw new MandateError('INVALID_REQUEST', 'the filter must be an object')
  const { status, limit } = f as Record<string, unknown>
  if (status !== undefined && !['pending', 'approved', 'denied', 'expired'].includes(status as string)) throw new MandateError('INVALID_REQUEST', 'unknown status')
  if (limit !== undefined && (!Number.isSafeInteger(limit) || (limit as number) < 1)) throw new MandateError('INVALID_REQUEST', 'limit must be a positive integer')
  return { ...(status !== undefined ? { status: status as ApprovalStatus } : {}), ...(limit !== undefined ? { limit: limit as number } : {}) }
}

/**
 * Every check of createAuthority's options that needs nothing opened or created, and the values they
 * resolve to. Callers that open a store or bind a port first (startAuthorityServer,
 * createAuthorityServer) run it before doing so; `issuer` may be absent there (it is the bound URL).
 * @internal
 */
export function resolveAuthorityOptions(
  options: unknown,
  where = 'createAuthority',
  /** The caller's own option names (accepted, and left out of the Authority's). */
  own: Readonly<Record<string, true>> = {},
  /** Authority options the caller does not take (it sets them itself). */
  excluded: readonly (keyof AuthorityOptions)[] = [],
): ResolvedAuthorityOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new MandateError('CONFIG_INVALID', `${where} needs an options object`)
  const known: Record<string, true> = { ...AUTHORITY_OPTIONS, ...own }
  for (const k of excluded) delete known[k]
  refuseUnknownOptions(options, known, where)
  const authorityOptions = Object.fromEntries(Object.entries(options).filter(([k]) => !Object.hasOwn(own, k)))
  return resolveKnownOptions(authorityOptions as Omit<AuthorityOptions, 'issuer'> & { issuer?: string })
}

interface ResolvedAuthorityOptions {
  endpoints: AuthorityEndpoints | undefined
  now: () => number
  maxMandateLifetime: number
  maxCallLifetime: number
  skew: number
  ttl: number
  singleUse: MemorySingleUse | ReturnType<typeof replayStoreSingleUse>
  reportUse: MemorySingleUse | ReturnType<typeof replayStoreSingleUse>
  policy: PolicyEngine
  witness: AuditWitnessOptions | undefined
  notifications: ResolvedNotifications | undefined
  callModes: ResolvedCallModes
  federationRules: FederationRule[]
  issuerKeys: IssuerKeysOptions
  subjectEntries: number
}

/** The federation option, checked before anything is opened (CONFIG_INVALID naming the pointer). */
function resolveFederationOption(f: unknown, maxMandateLifetime: number, issuer: string | undefined): { rules: FederationRule[]; keys: IssuerKeysOptions } {
  if (f === undefined) return { rules: [], keys: {} }
  if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new MandateError('CONFIG_INVALID', 'federation must be { rules?, keys? }')
  refuseUnknownOptions(f, { rules: true, keys: true }, 'federation')
  const o = f as FederationOptions
  const rules = o.rules === undefined ? [] : parseFederationRules(o.rules, { maxMandateLifetime, ...(issuer !== undefined ? { authorityIssuer: issuer } : {}) })
  const keys: IssuerKeysOptions = {}
  if (o.keys !== undefined) {
    if (typeof o.keys !== 'object' || o.keys === null) throw new MandateError('CONFIG_INVALID', 'federation.keys must be { cooldownSeconds?, cacheMaxAgeSeconds?, timeoutMs?, failureCooldownSeconds?, staleMaxAgeSeconds? }')
    refuseUnknownOptions(o.keys, { cooldownSeconds: true, cacheMaxAgeSeconds: true, timeoutMs: true, failureCooldownSeconds: true, staleMaxAgeSeconds: true }, 'federation.keys')
    const n = (v: unknown, name: string, max: number): number => {
      if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max) throw new MandateError('CONFIG_INVALID', `federation.keys.${name} must be an integer 0..${max}`)
      return v as number
    }
    if (o.keys.cooldownSeconds !== undefined) keys.cooldownMs = n(o.keys.cooldownSeconds, 'cooldownSeconds', 86_400) * 1000
    if (o.keys.cacheMaxAgeSeconds !== undefined) keys.cacheMaxAgeMs = n(o.keys.cacheMaxAgeSeconds, 'cacheMaxAgeSeconds', 86_400) * 1000
    if (o.keys.timeoutMs !== undefined) keys.timeoutMs = n(o.keys.timeoutMs, 'timeoutMs', 60_000)
    if (o.keys.failureCooldownSeconds !== undefined) keys.failureCooldownMs = n(o.keys.failureCooldownSeconds, 'failureCooldownSeconds', 3_600) * 1000
    if (o.keys.staleMaxAgeSeconds !== undefined) keys.staleMaxAgeMs = n(o.keys.staleMaxAgeSeconds, 'staleMaxAgeSeconds', 86_400) * 1000
  }
  return { rules, keys }
}

function resolveKnownOptions(options: Omit<AuthorityOptions, 'issuer'> & { issuer?: string }): ResolvedAuthorityOptions {
  if (options.unattributedRefusals !== undefined) {
    const u: unknown = options.unattributedRefusals
    if (typeof u !== 'object' || u === null) throw new MandateError('CONFIG_INVALID', 'unattributedRefusals must be { burst?, perSecond? }')
    refuseUnknownOptions(u, { burst: true, perSecond: true }, 'unattributedRefusals')
    for (const [k, v] of Object.entries(u)) if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new MandateError('CONFIG_INVALID', `unattributedRefusals.${k} must be a non-negative number`)
  }
  const endpoints = options.issuer === undefined ? undefined : endpointsFor(options.issuer)
  if (options.now !== undefined && typeof options.now !== 'function') throw new MandateError('CONFIG_INVALID', 'now must be a function returning milliseconds')
  if (options.keyFile !== undefined && (typeof options.keyFile !== 'string' || options.keyFile === '')) throw new MandateError('CONFIG_INVALID', 'keyFile must be a file path')
  const given = options.now
  // every time check compares with now: a clock answering NaN (or not a number) would switch them all off
  const now = given === undefined ? Date.now : (): number => {
    const ms = given()
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new MandateError('CONFIG_INVALID', 'now must return a finite number of milliseconds')
    return ms
  }
  const maxMandateLifetime = options.maxMandateLifetime ?? 86_400
  const maxCallLifetime = options.maxCallLifetime ?? 60
  if (!Number.isSafeInteger(maxMandateLifetime) || maxMandateLifetime < 1) throw new MandateError('CONFIG_INVALID', 'maxMandateLifetime must be a positive integer')
  if (!Number.isSafeInteger(maxCallLifetime) || maxCallLifetime < 1 || maxCallLifetime > 60) throw new MandateError('CONFIG_INVALID', 'maxCallLifetime must be 1..60 seconds')
  const skew = options.skew ?? 30
  if (!Number.isFinite(skew) || skew < 0 || skew > 60) throw new MandateError('CONFIG_INVALID', 'skew must be 0..60 seconds')
  // Infinity would keep a rotated-out key trusted for ever; NaN would drop it at once
  if (options.keyOverlapSeconds !== undefined && (!Number.isSafeInteger(options.keyOverlapSeconds) || options.keyOverlapSeconds < 0 || options.keyOverlapSeconds > 30 * 86_400)) {
    throw new MandateError('CONFIG_INVALID', 'keyOverlapSeconds must be an integer of seconds from 0 to 2592000 (30 days)')
  }
  // published as refresh_interval: guards refuse a status document whose interval is not a positive integer
  if (options.revocationRefreshSeconds !== undefined && (!Number.isSafeInteger(options.revocationRefreshSeconds) || options.revocationRefreshSeconds < 1 || options.revocationRefreshSeconds > 3600)) {
    throw new MandateError('CONFIG_INVALID', 'revocationRefreshSeconds must be an integer of seconds from 1 to 3600')
  }
  if (options.storeApprovalArguments !== undefined && typeof options.storeApprovalArguments !== 'boolean') throw new MandateError('CONFIG_INVALID', 'storeApprovalArguments must be true or false')
  const ttl = options.approvalTtlSeconds ?? 600
  if (!Number.isFinite(ttl) || ttl <= 0) throw new MandateError('CONFIG_INVALID', 'approvalTtlSeconds must be positive')
  if (options.replay !== undefined && options.singleUse?.maxEntries !== undefined) throw new MandateError('CONFIG_INVALID', 'singleUse.maxEntries bounds the in-memory store: with a shared replay store give only singleUse.perPrincipal')
  if (options.replay !== undefined && (typeof options.replay !== 'object' || options.replay === null || typeof options.replay.use !== 'function')) throw new MandateError('CONFIG_INVALID', 'replay must be a ReplayStore { use(key, expiresAt) }')
  if (options.singleUse !== undefined) {
    if (typeof options.singleUse !== 'object' || options.singleUse === null) throw new MandateError('CONFIG_INVALID', 'singleUse must be { perPrincipal?, maxEntries? }')
    refuseUnknownOptions(options.singleUse, { perPrincipal: true, maxEntries: true }, 'singleUse')
  }
  const singleUse = options.replay
    ? replayStoreSingleUse(options.replay, options.singleUse ?? {}, () => Math.floor(now() / 1000))
    : new MemorySingleUse(options.singleUse ?? {}, () => Math.floor(now() / 1000))
  const reportUse = options.replay
    ? replayStoreSingleUse(options.replay, REPORT_USE_LIMITS, () => Math.floor(now() / 1000))
    : new MemorySingleUse(REPORT_USE_LIMITS, () => Math.floor(now() / 1000))
  const policy: PolicyEngine = resolvePolicyOption(options.policy)
  const witness = options.auditWitness === undefined ? undefined : auditWitnessOption(options.auditWitness)
  const notifications = options.notifications === undefined ? undefined : resolveNotificationOptions(options.notifications, options.issuer)
  const callModes = resolveCallModes(options.callModes, options.perCallTools, options.maxOfflineHops)
  const federation = resolveFederationOption(options.federation, maxMandateLifetime, options.issuer)
  const subjectEntries = subjectCacheEntries(options.subjectCache)
  return { endpoints, now, maxMandateLifetime, maxCallLifetime, skew, ttl, singleUse, reportUse, policy, witness, notifications, callModes, federationRules: federation.rules, issuerKeys: federation.keys, subjectEntries }
}

function resolveNonceOption(option: boolean | NonceSource | undefined, now: () => number): NonceSource | undefined {
  if (option === undefined || option === false) return undefined
  if (option === true) return createNonceSource({ now })
  if (typeof option !== 'object' || option === null || typeof option.current !== 'function' || typeof option.check !== 'function') {
    throw new MandateError('CONFIG_INVALID', 'requireDpopNonce must be a boolean or a NonceSource { current(), check(nonce) }')
  }
  return option
}

export class Authority {
  readonly issuer: string
  readonly endpoints: AuthorityEndpoints
  readonly store: AuthorityStore
  readonly approvals: ApprovalsApi
  readonly audit: AuditApi
  readonly #ctx: AuthorityContext
  readonly #timer: ReturnType<typeof setInterval>
  #closed = false
  /** The webhook delivery worker, when notifications are configured. */
  #notifier: NotificationDispatcher | undefined
  /** Stops hearing the store's cross-instance changes. */
  #unsubscribeStore: (() => void) | undefined
  /** Hear audit records committed by other instances sharing the store (`onRemoteAudit`). */
  readonly #remoteAudit = new Set<(seq: number | undefined) => void>()
  /** Prometheus metrics of this Authority (its own registry; served by the HTTP server's `/metrics`). */
  readonly metrics: AuthorityMetrics
  /** The shared replay store given as `replay`, for readiness. */
  #replay: ReplayStore | undefined
  /**
   * Federation rules: those of the configuration (read-only) and those in the store (`add`,
   * `remove`, audited). Every grant reads them, so instances sharing a store agree.
   */
  readonly federation: FederationRegistry

  private constructor(ctx: AuthorityContext, metrics: AuthorityMetrics) {
    this.#ctx = ctx
    this.metrics = metrics
    this.issuer = ctx.issuer
    this.endpoints = ctx.endpoints
    this.store = ctx.store
    this.federation = ctx.federation.registry as FederationRegistry
    const svc = ctx.approvals
    this.approvals = {
      list: async (f) => (await this.#safe(() => svc.list(approvalFilter(f)))).map(approvalView),
      get: async (id) => approvalView(await this.#safe(() => svc.get(decisionId(id)))),
      approve: async (id, by) => approvalView(await this.#refusable('approvals', { approval: String(id).slice(0, 64), approver: String(by?.approver).slice(0, 128) }, () => svc.approve(decisionId(id), decisionBy(by)))),
      deny: async (id, by) => approvalView(await this.#refusable('approvals', { approval: String(id).slice(0, 64), approver: String(by?.approver).slice(0, 128) }, () => svc.deny(decisionId(id), decisionBy(by)))),
      subscribe: (id, l) => svc.subscribe(id, l),
      sweep: () => svc.sweep(),
    }
    const log = ctx.audit
    this.audit = {
      query: (q) => log.query(q ?? {}),
      verify: (o) => log.verify(o ?? {}),
      exportJsonl: (q) => log.exportJsonl(q ?? {}),
      checkpoint: () => log.checkpoint(),
      latestCheckpoint: () => log.latestCheckpoint(),
    }
    this.#timer = setInterval(() => void svc.sweep().catch(() => undefined), 1000)
    this.#timer.unref?.()
  }

  /**
   * Validate a `notifications` option without creating anything (CONFIG_INVALID on any problem;
   * messages never repeat a secret or a URL). For CLIs that check their configuration first.
   */
  static checkNotifications(notifications: unknown): void {
    resolveNotificationOptions(notifications, undefined)
  }

  /** @internal */
  static async create(options: AuthorityOptions): Promise<Authority> {
    // every input is checked before anything is created or opened (signing keys, audit records)
    const { endpoints: resolvedEndpoints, now, maxMandateLifetime, maxCallLifetime, skew, ttl, singleUse, reportUse, policy, witness, notifications, callModes, federationRules, issuerKeys, subjectEntries } = resolveAuthorityOptions(options)
    const endpoints = resolvedEndpoints ?? endpointsFor(options.issuer)
    const metrics = new AuthorityMetrics()
    // audit append latency and store errors are measured around the store's own methods
    const store = instrumentStore(options.store ?? new MemoryStore(), metrics)
    // refused for a store without an outbox, before any key is created
    const notifier = notifications ? new NotificationDispatcher(store, notifications) : undefined
    const keys = await SigningKeys.open(options.keyFile ? fileKeyStorage(options.keyFile) : storeKeyStorage(store), {
      now, overlapSeconds: options.keyOverlapSeconds ?? maxMandateLifetime,
      // a first key only for a store without an audit log: otherwise its keys were lost, not never made
      mayCreateFirst: async () => (await store.latestCheckpoint()) === undefined && ((await store.auditHead())?.seq ?? 0) === 0,
    })
    const audit = new AuditLog({
      issuer: options.issuer, store, now, signingKey: () => keys.current, checkpointKeys: () => keys.historicResolver,
      ...(witness !== undefined ? { witness } : {}),
    })
    await audit.open()
    const isApprover = async (did: string) => {
      await admitPrincipal(store, did, { code: 'ACCESS_DENIED', as: 'approver', roles: ['approver', 'admin'], now: now() })
      return true
    }
    const approvals = new ApprovalService(store, audit, now, ttl, isApprover)
    const nonce: NonceSource | undefined = resolveNonceOption(options.requireDpopNonce, now)
    const ctx: AuthorityContext = {
      issuer: options.issuer, endpoints, tokenUrl: new URL(endpoints.token), store, keys, audit, approvals, policy, now,
      singleUse,
      reportUse,
      ...(nonce ? { nonce } : {}),
      limits: { maxMandateLifetime, maxCallLifetime, skew, revocationRefresh: options.revocationRefreshSeconds ?? 5 },
      storeApprovalArguments: options.storeApprovalArguments ?? true,
      unattributedRefusals: new RefusalAuditLimiter(options.unattributedRefusals?.burst ?? 100, options.unattributedRefusals?.perSecond ?? 10, now),
      callModes,
      subjects: new SubjectCache(subjectEntries),
      federation: {
        registry: new FederationRegistry({ store, configRules: federationRules, parse: (input) => parseFederationRule(input, { maxMandateLifetime, authorityIssuer: options.issuer }), now, audit }),
        keys: new IssuerKeys(issuerKeys),
      },
    }
    const authority = new Authority(ctx, metrics)
    authority.#replay = options.replay
    // a store shared by several instances tells of their changes: an approval decided elsewhere
    // wakes its waiters here; keys rotated elsewhere are loaded (awaited: a head they signed is
    // checked against them); revocations are read from the store on every request anyway
    authority.#unsubscribeStore = store.subscribe?.((change) => {
      if (change.kind === 'approval') return approvals.refresh(change.id)
      if (change.kind === 'keys') return keys.reload()
      // records another instance appended: event streams here (approvers', dashboard) re-read the log
      if (change.kind === 'audit') return authority.#wakeRemoteAudit(change.seq)
      if (change.kind === 'resync') {
        authority.#wakeRemoteAudit(undefined)
        return Promise.all([keys.reload(), approvals.refresh()]).then(() => undefined)
      }
      return undefined
    })
    metrics.countPendingWith(pendingCounter(store))
    if (notifier) {
      authority.#notifier = notifier
      // from here on every notifiable audit record gets its outbox rows in its own transaction;
      // the worker is woken by committed records, and delivers pending rows of an earlier run first
      audit.onRecord((rec) => notifier.onRecord(rec))
      notifier.start()
    }
    return authority
  }

  async #refusable<T>(endpoint: string, info: RefusalFields, fn: () => Promise<T>): Promise<T> {
    // one span per operation (no-op without an OpenTelemetry SDK); attributes from `info` only
    return traced(`mandate.${endpoint}`, info, async () => {
      try {
        const value = await fn()
        if (EXCHANGE_ENDPOINTS.has(endpoint)) this.metrics.exchanges.inc({ endpoint, outcome: 'issued', code: '' })
        return value
      } catch (err) {
        // a policy refusal's audit record names the rule that refused (the message also gives its index)
        if (MandateError.is(err) && err.code === 'POLICY_DENIED') info.policy_rule = typeof err.detail?.rule === 'string' ? err.detail.rule : null
        const refusal = await auditRefusal(this.#ctx, endpoint, err, info)
        const code = MandateError.is(refusal) ? refusal.code : 'INTERNAL'
        if (code === 'REPLAY_STORE_UNAVAILABLE') this.metrics.replayStoreErrors.inc()
        if (EXCHANGE_ENDPOINTS.has(endpoint)) this.metrics.exchanges.inc({ endpoint, outcome: code === 'APPROVAL_REQUIRED' ? 'approval_required' : 'refused', code })
        throw refusal
      }
    })
  }

  /**
   * Readiness of this instance: the store answers, the replay store (when one was given and can be
   * pinged) answers, a signing key is loaded. Codes only, never driver messages.
   */
  ready(options: { timeoutMs?: number } = {}): Promise<ReadinessReport> {
    return readiness({
      store: this.store,
      ...(this.#replay !== undefined ? { replay: this.#replay } : {}),
      keys: () => {
        if (this.#closed) throw new MandateError('STORE_UNAVAILABLE', 'closed')
        if (this.jwks().keys.length === 0) throw new MandateError('INTERNAL', 'no signing key')
      },
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    })
  }

  // ---- principals

  /** Register a principal by its did:key (a revoked did never again: register a new key). */
  registerAgent(input: RegisterAgentInput, meta: { by?: string } = {}): Promise<AgentRecord> {
    return this.#safe(() => this.#registerAgent(input, meta))
  }

  async #registerAgent(input: RegisterAgentInput, meta: { by?: string }): Promise<AgentRecord> {
    if (typeof input !== 'object' || input === null) throw new MandateError('INVALID_REQUEST', 'agent registration must be an object')
    if (typeof meta !== 'object' || meta === null || (meta.by !== undefined && (typeof meta.by !== 'string' || meta.by.length > 512))) throw new MandateError('INVALID_REQUEST', 'by must be a string of at most 512 characters')
    if (!isDidKey(input.did)) throw new MandateError('DID_INVALID', 'did must be an Ed25519 did:key')
    if (typeof input.name !== 'string' || !NAME.test(input.name)) throw new MandateError('INVALID_REQUEST', 'name must be 1..128 printable ASCII characters')
    const role = input.role ?? 'agent'
    if (!ROLES.includes(role)) throw new MandateError('INVALID_REQUEST', 'unknown role')
    if (input.owner !== undefined && (typeof input.owner !== 'string' || input.owner.length > 256)) throw new MandateError('INVALID_REQUEST', 'owner must be a string of at most 256 characters')
    if (input.metadata !== undefined && (typeof input.metadata !== 'object' || input.metadata === null || Array.isArray(input.metadata) || !isExactJson(input.metadata, 0) || JSON.stringify(input.metadata).length > 4096)) {
      throw new MandateError('INVALID_REQUEST', 'metadata must be a JSON object of at most 4 KiB (plain values; finite numbers, integers within ±(2^53 − 1))')
    }
    const jwk: Ed25519PublicJwk = publicJwkFromDidKey(input.did)
    // revocation is final for a did (also a pre-emptive one): a new key must be registered
    if (await agentRevoked(this.store, input.did)) throw new MandateError('INVALID_REQUEST', 'this did has been revoked and can never be registered again; register a new key')
    const agent: AgentRecord = { did: input.did, jkt: jwkThumbprint(jwk), name: input.name, role, status: 'enabled', disabled: false, createdAt: this.#ctx.now() }
    if (input.owner !== undefined) agent.owner = input.owner
    if (input.metadata !== undefined) agent.metadata = input.metadata
    const fields: Record<string, JsonValue> = { agent: agent.did, name: agent.name, role }
    if (agent.owner !== undefined) fields.owner = agent.owner
    if (meta.by !== undefined) fields.by = meta.by
    const rec = await this.store.insertAgent(agent, this.#ctx.audit.draft('agent.registered', fields))
    if (!rec) throw new MandateError('INVALID_REQUEST', 'this did is already registered')
    await this.#ctx.audit.recorded(rec)
    return agent
  }

  /** The registry record of a principal (status `enabled`, `disabled` or `revoked`), or undefined. */
  getAgent(did: string): Promise<AgentRecord | undefined> {
    return this.#safe(async () => {
      if (typeof did !== 'string') throw new MandateError('INVALID_REQUEST', 'did must be a string')
      return this.store.getAgent(did)
    })
  }

  listAgents(): Promise<AgentRecord[]> {
    return this.#safe(() => this.store.listAgents())
  }

  /**
   * Disable a principal (reversible with enableAgent): it can no longer authenticate or act
   * anywhere, and mandates naming it in their chain stop exchanging. Audited with the reason.
   * The last admin that may act is never disabled (LAST_ADMIN).
   */
  disableAgent(did: string, meta: { by?: string; reason?: string } = {}): Promise<AgentRecord> {
    return this.#safe(async () => {
      const { fields, reason } = this.#agentChange(did, meta)
      // never the last admin: nobody could administer the Authority afterwards
      const rec = await keepingAnAdmin(this.store, did, this.#ctx.now, (keepAdmin) => this.store.disableAgent(did, this.#ctx.now(), this.#ctx.audit.draft('agent.disabled', fields), reason, keepAdmin))
      if (rec) await this.#ctx.audit.recorded(rec)
      const agent = await this.store.getAgent(did)
      if (!agent) throw new MandateError('NOT_FOUND', 'no such agent')
      return agent
    })
  }

  /**
   * Enable a disabled principal again. Audited with the reason. A revoked principal is never enabled
   * (revocation is final for that did: its key is presumed compromised; register a new key).
   */
  enableAgent(did: string, meta: { by?: string; reason?: string } = {}): Promise<AgentRecord> {
    return this.#safe(async () => {
      const { fields } = this.#agentChange(did, meta)
      const before = await this.store.getAgent(did)
      if (!before) throw new MandateError('NOT_FOUND', 'no such agent')
      if (before.status === 'revoked' || (await agentRevoked(this.store, did))) {
        throw new MandateError('INVALID_REQUEST', 'this agent has been revoked; revocation is final: register a new key instead')
      }
      if (!before.disabled) throw new MandateError('INVALID_REQUEST', 'this agent is not disabled')
      const rec = await this.store.enableAgent(did, this.#ctx.audit.draft('agent.enabled', fields))
      if (!rec) throw new MandateError('INVALID_REQUEST', 'this agent could not be enabled (revoked or changed meanwhile)')
      await this.#ctx.audit.recorded(rec)
      return (await this.store.getAgent(did)) as AgentRecord
    })
  }

  #agentChange(did: unknown, meta: { by?: string; reason?: string }): { fields: Record<string, JsonValue>; reason?: string } {
    if (typeof did !== 'string' || did.length === 0) throw new MandateError('INVALID_REQUEST', 'did must be a non-empty string')
    if (did.length > 2048) throw new MandateError('INVALID_REQUEST', 'did is too long (at most 2048 characters)')
    if (typeof meta !== 'object' || meta === null) throw new MandateError('INVALID_REQUEST', 'meta must be an object')
    if (meta.by !== undefined && (typeof meta.by !== 'string' || meta.by.length > 512)) throw new MandateError('INVALID_REQUEST', 'by must be a string of at most 512 characters')
    checkReasonText(meta.reason)
    const fields: Record<string, JsonValue> = { agent: did.slice(0, 128) }
    if (meta.by !== undefined) fields.by = meta.by
    if (meta.reason !== undefined) fields.reason = meta.reason
    return { fields, ...(meta.reason !== undefined ? { reason: meta.reason } : {}) }
  }

  /** Run an operation whose unexpected failures (a store error) must still reach callers as a MandateError. */
  async #safe<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw MandateError.is(err) ? err : new MandateError('INTERNAL', 'internal error', { cause: err })
    }
  }

  // ---- grants and exchanges

  /** Grant a root task mandate (in-process grantor call). */
  grant(params: GrantParams): Promise<GrantResult> {
    const info: RefusalFields = { operation: 'grant' }
    return this.#refusable('grant', info, () => grantRootMandate(this.#ctx, params, info))
  }

  /**
   * Redeem a person's external token (an OpenID Connect ID token, an IdP access token or an
   * ID-JAG) for a root task mandate under a federation rule, in process: the host app names its
   * grantor as with `grant`; every check of the HTTP jwt-bearer grant applies (the token fully
   * validated, its `jti` single use, the task within the rule's template). The mandate's subject is
   * `<issuer>#<sub>`. Omitted task members take the rule's template.
   */
  grantFederated(input: FederatedGrantInput): Promise<GrantResult> {
    const info: RefusalFields = { operation: 'grant', grant_type: JWT_BEARER_GRANT_TYPE }
    return this.#refusable('grant', info, async () => {
      if (typeof input !== 'object' || input === null) throw new MandateError('INVALID_REQUEST', 'grantFederated needs { grantor, assertion, agent, ... }')
      if (typeof input.grantor !== 'string') throw new MandateError('INVALID_REQUEST', 'grantor must be a did')
      return jwtBearerGrant(this.#ctx, FormParams.from(federatedGrantParams(input)), undefined, info, input.grantor)
    })
  }

  /**
   * Which federation rule accepts an external token and, for every other rule, why not
   * (`mandate federation test`). Issues nothing, spends no `jti`, records nothing.
   */
  explainFederation(token: string, nonce?: string): Promise<FederationExplanation> {
    return this.#safe(async () => {
      if (typeof token !== 'string' || token.length === 0) throw new MandateError('INVALID_REQUEST', 'token must be a non-empty string')
      if (nonce !== undefined && typeof nonce !== 'string') throw new MandateError('INVALID_REQUEST', 'nonce must be a string')
      const ctx = this.#ctx
      const { explanation } = await selectRule(token, await ctx.federation.registry.rules(), {
        authorityIssuer: ctx.issuer, tokenEndpoint: ctx.endpoints.token, now: ctx.now, skew: ctx.limits.skew, keys: ctx.federation.keys,
        ...(nonce !== undefined ? { nonce } : {}),
      })
      return explanation
    })
  }

  /**
   * The token endpoint without HTTP: form parameters plus the DPoP header. Used by the HTTP route and
   * by `clientFor`, so both take one code path. Refusals are audited and thrown as MandateError.
   */
  token(params: FormParams | URLSearchParams | Record<string, string | string[] | undefined>, headers: { dpop?: string } = {}, info: RefusalFields = {}): Promise<TokenResponse> {
    // `info` (optional) is filled with the request's identifiers (agent did, txn, ...) for the HTTP request log
    return this.#refusable('token', info, () => handleTokenRequest(this.#ctx, { params: FormParams.from(params), ...(headers.dpop !== undefined ? { dpop: headers.dpop } : {}) }, info))
  }

  /**
   * In-process exchange authenticated by possession of the holder's key object (no assertion or
   * proof is signed: in one process, holding the Ed25519Key is holding the private key).
   */
  async exchange(holder: Ed25519Key, params: ExchangeParams): Promise<IssuedMandate> {
    const info: RefusalFields = {}
    return this.#refusable('exchange', info, async () => {
      const caller = await this.admitKey(holder)
      // the same strictness as the token endpoint's form parse (unknown members refused)
      return exchangeMandate(this.#ctx, caller, checkExchangeParams(params), info)
    })
  }

  /**
   * In-process authentication by possession of a key object: the principal behind it if it may act
   * now (registered, enabled, unrevoked, this very key). Throws INVALID_CLIENT.
   * @internal used by `clientFor` and `exchange`
   */
  async admitKey(holder: Ed25519Key): Promise<AgentRecord> {
    // possession of the key object is the authentication here: a look-alike with the same
    // did and jkt (public values) is not a key
    if (!Ed25519Key.holdsPrivateKey(holder)) throw new MandateError('INVALID_CLIENT', 'the holder must be an Ed25519Key holding its private key')
    const caller = await admitPrincipal(this.store, holder.did, { now: this.#ctx.now() })
    if (caller.jkt !== holder.jkt) throw new MandateError('INVALID_CLIENT', 'the holder key is not the registered key of this did')
    return caller
  }

  /** An AuthorityClient for an agent key, in process. */
  clientFor(key: Ed25519Key, options: InProcessClientOptions = {}) {
    return createInProcessClient(this, key, options)
  }

  /** Current DPoP nonce, when nonces are required. */
  dpopNonce(): string | undefined {
    return this.#ctx.nonce?.current()
  }

  /**
   * Authenticate a principal by a client assertion (JSON endpoints: `Authorization: MandateAssertion`).
   * The assertion's `aud` is the issuer or one of `endpoint` (the URLs of the endpoint it was sent
   * to). Throws INVALID_CLIENT.
   */
  authenticate(assertion: string, endpoint?: string | readonly string[]): Promise<AgentRecord> {
    return this.#refusable('authenticate', {}, () => authenticateClient(this.#ctx, { assertionType: CLIENT_ASSERTION_TYPE, assertion }, endpoint))
  }

  /** Authenticate with form parameters (introspection, revocation). */
  authenticateForm(form: FormParams, endpoint: string): Promise<AgentRecord> {
    // the span and the refusal's audit record say what failed (authenticate), not the URL asked for
    return this.#refusable('authenticate', {}, () => {
      const params = FormParams.from(form)
      const t = params.one('client_assertion_type')
      const a = params.one('client_assertion')
      const id = params.one('client_id')
      return authenticateClient(this.#ctx, { ...(t !== undefined ? { assertionType: t } : {}), ...(a !== undefined ? { assertion: a } : {}), ...(id !== undefined ? { clientId: id } : {}) }, endpoint)
    })
  }

  // ---- tokens, revocation

  /** RFC 7662 introspection for `caller`, re-admitted by its did (a stale record of a revoked principal is refused). */
  introspect(token: string, caller: AgentRecord): Promise<IntrospectionResponse> {
    return this.#safe(async () => introspectToken(this.#ctx, token, await admitPrincipal(this.store, caller?.did, { now: this.#ctx.now() })))
  }

  /** RFC 7009 revocation by `caller`, re-admitted by its did. Unknown tokens are a no-op (200 over HTTP). */
  revokeToken(token: string, caller: AgentRecord, hint?: string): Promise<void> {
    return this.#refusable('revoke', typeof caller?.did === 'string' ? { agent: caller.did.slice(0, 2048) } : {}, async () => revokeToken(this.#ctx, token, await admitPrincipal(this.store, caller?.did, { now: this.#ctx.now() }), hint))
  }

  /**
   * Revoke a mandate (and every descendant), a task, or an agent. An unknown target is NOT_FOUND
   * unless `meta.preemptive` is true. Revoking an agent also disables it in the registry, for good
   * (status `revoked`; enableAgent refuses it; its did can never be registered again). The last
   * admin that may act is never revoked (LAST_ADMIN): register
   * another admin first.
   */
  revoke(target: RevocationTarget, meta: RevokeMeta = {}): Promise<RevocationResult> {
    return this.#refusable('revocation', typeof meta?.by === 'string' ? { agent: meta.by.slice(0, 512) } : {}, () => revokeTarget(this.#ctx, target, meta))
  }

  /** A RevocationSource for in-process guards (reads the store: revocations apply at once). */
  revocationSource(): RevocationSource {
    return storeRevocationSource(this.#ctx)
  }

  revocationStatus(since?: string): Promise<RevocationStatusDocument> {
    return this.#safe(async () => {
      if (since !== undefined && typeof since !== 'string') throw new MandateError('INVALID_REQUEST', 'since must be a cursor string')
      return revocationStatus(this.#ctx, since)
    })
  }

  /** Number of mandates and call credentials ever issued. */
  countMandates(): Promise<number> {
    return this.store.countMandates()
  }

  // ---- keys

  jwks(): { keys: Ed25519PublicJwk[] } {
    return this.#ctx.keys.jwks()
  }

  rotateSigningKey(meta: { by?: string } = {}): Promise<{ kid: string; previous?: string }> {
    return this.#safe(async () => {
      if (typeof meta !== 'object' || meta === null || (meta.by !== undefined && typeof meta.by !== 'string')) throw new MandateError('INVALID_REQUEST', 'by must be a string')
      const r = await this.#ctx.keys.rotate()
      await this.#ctx.audit.append('key.rotated', { kid: r.kid, ...(r.previous ? { previous: r.previous } : {}), ...(meta.by ? { by: meta.by.slice(0, 512) } : {}) })
      return r
    })
  }

  /** RFC 8414 metadata. */
  metadata(): Record<string, JsonValue> {
    const e = this.endpoints
    return {
      issuer: this.issuer,
      token_endpoint: e.token,
      jwks_uri: e.jwks,
      introspection_endpoint: e.introspection,
      revocation_endpoint: e.revocation,
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange', JWT_BEARER_GRANT_TYPE, 'urn:mandate:grant-type:task'],
      // ID-JAG redemption (draft-ietf-oauth-identity-assertion-authz-grant; MCP enterprise-managed authorization)
      authorization_grant_profiles_supported: [ID_JAG_GRANT_PROFILE],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['Ed25519', 'EdDSA'],
      introspection_endpoint_auth_methods_supported: ['private_key_jwt'],
      introspection_endpoint_auth_signing_alg_values_supported: ['Ed25519', 'EdDSA'],
      revocation_endpoint_auth_methods_supported: ['private_key_jwt'],
      revocation_endpoint_auth_signing_alg_values_supported: ['Ed25519', 'EdDSA'],
      dpop_signing_alg_values_supported: ['Ed25519', 'EdDSA'],
      // RFC 8414 requires the member; there is no authorization endpoint, so no response type is supported
      response_types_supported: [],
      authorization_details_types_supported: ['tool_access'],
      revocation_status_endpoint: e.revocationStatus,
      approvals_endpoint: e.approvals,
      audit_endpoint: e.audit,
    }
  }

  // ---- audit

  /**
   * Record a guarded or wrapped call (never with tokens). With `meta.reporter`, that principal is
   * admitted first (registered, enabled, unrevoked; a resource or admin, or the agent of the call).
   */
  reportCall(report: CallReport, meta: { reporter?: string } = {}): Promise<AuditRecord> {
    return this.#safe(() => this.#reportCall(report, meta))
  }

  readonly #refusedReports = new PerKeyLimiter(REFUSED_REPORTS_BURST, REFUSED_REPORTS_PER_SECOND, () => this.#ctx.now())

  async #reportCall(report: CallReport, meta: { reporter?: string }): Promise<AuditRecord> {
    // every member lands in the audit log and the dashboard as sent: each has its own shape, and none
    // may carry control, bidi or invisible characters (a tool named "\u202e…" read as another call)
    const s = (v: unknown, name: string, max = 512, shape?: RegExp): string => {
      if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new MandateError('INVALID_REQUEST', `report.${name} must be a non-empty string`)
      if (INVISIBLE_OR_CONTROL.test(v) || (shape !== undefined && !shape.test(v))) throw new MandateError('INVALID_REQUEST', `report.${name} is not well-formed`)
      return v
    }
    if (typeof report !== 'object' || report === null) throw new MandateError('INVALID_REQUEST', 'report must be an object')
    if (typeof meta !== 'object' || meta === null) throw new MandateError('INVALID_REQUEST', 'meta must be an object')
    let reportingAgent: string | undefined
    if (meta.reporter !== undefined) {
      const who = await admitPrincipal(this.store, meta.reporter, { as: 'reporter', roles: ['resource', 'admin', 'agent'], now: this.#ctx.now() })
      if (who.role === 'agent' && (!Array.isArray(report.actorChain) || report.actorChain[report.actorChain.length - 1] !== who.did)) {
        throw new MandateError('ACCESS_DENIED', 'an agent can report only its own calls')
      }
      if (who.role === 'agent') reportingAgent = who.did
    }
    if (report.decision !== 'allowed' && report.decision !== 'refused') throw new MandateError('INVALID_REQUEST', 'report.decision must be allowed or refused')
    if (report.outcome !== undefined && report.outcome !== 'success' && report.outcome !== 'error') throw new MandateError('INVALID_REQUEST', 'report.outcome must be success or error')
    if (!Array.isArray(report.actorChain) || report.actorChain.length > 20) throw new MandateError('INVALID_REQUEST', 'report.actorChain must be an array')
    const actors = report.actorChain.map((a) => s(a, 'actorChain', 512, REPORT_ID))
    // an allowed call is of a tool name; a refused one may have been refused for naming no tool (a
    // client calling "get weather"): it is still recorded, under a placeholder, with the name escaped
    const tool = report.tool
    if (typeof tool !== 'string' || tool.length === 0 || tool.length > 128) throw new MandateError('INVALID_REQUEST', 'report.tool must be a non-empty string')
    const toolName: boolean = isToolName(tool)
    if (!toolName && report.decision === 'allowed') throw new MandateError('INVALID_REQUEST', 'report.tool must be a tool name')
    const fields: Record<string, JsonValue> = {
      jti: s(report.mandateId, 'mandateId', 64, REPORT_ID), txn: s(report.txn, 'txn', 128, REPORT_ID), tool: toolName ? tool : INVALID_TOOL, audience: s(report.audience, 'audience', 2048, REPORT_ID),
      args: s(report.argumentsDigest, 'argumentsDigest', 64, REPORT_DIGEST), decision: report.decision, actors, subject: s(report.subject, 'subject'),
    }
    // printable ASCII only: every other character as its \u escape
    if (!toolName) fields.tool_requested = tool.replace(/[^\x20-\x7e]/gu, (ch) => `\\u{${(ch.codePointAt(0) as number).toString(16)}}`)
    if (actors.length) fields.agent = actors[actors.length - 1] as string
    if (report.outcome !== undefined) fields.outcome = report.outcome
    if (report.errorCode !== undefined) fields.error = s(report.errorCode, 'errorCode', 64, REPORT_CODE)
    // an offline chain's holder-signed hops, which the Authority never minted (audit/offline_hops.ts)
    if (report.offlineHops !== undefined) fields.offline_hops = parseOfflineHops(report.offlineHops, fields.jti as string)
    const chain = report.offlineChain
    if (chain !== undefined && (typeof chain !== 'string' || chain.length === 0 || chain.length > MAX_CHAIN_LENGTH)) {
      throw new MandateError('INVALID_REQUEST', `report.offlineChain must be an offline chain of at most ${MAX_CHAIN_LENGTH} characters`)
    }
    if (reportingAgent !== undefined) {
      const owned = await assertAgentOwnsReport(this.store, reportingAgent, {
        now: nowSec(this.#ctx), jti: fields.jti as string, txn: fields.txn as string, tool: fields.tool as string, audience: fields.audience as string, argumentsDigest: fields.args as string, decision: report.decision,
        actors, subject: fields.subject as string, offlineHops: fields.offline_hops as JsonValue[] | undefined, offlineChain: chain,
      }, (c) => this.#verifyReportedChain(c))
      if (owned.hops !== undefined) fields.offline_hops = owned.hops
      // last, once everything else passed: a refused report never takes the credential's one report
      const once = reportSingleUse(owned.credential, report.decision, reportingAgent)
      if (once && !(await this.#ctx.reportUse.use(reportingAgent, once.key, once.until))) {
        throw new MandateError('INVALID_REQUEST', 'the call of this single-use credential has already been reported', { detail: { reason: 'duplicate' } })
      }
    }
    if (meta.reporter !== undefined) fields.reporter = meta.reporter
    // an agent's refused calls are checked less (the refusal may be why the tool or audience is off):
    // they are bounded per agent instead, so no agent can fill the log with them
    if (reportingAgent !== undefined && report.decision === 'refused' && !this.#refusedReports.take(reportingAgent)) {
      throw new MandateError('CAPACITY_EXCEEDED', 'this agent reported too many refused calls; retry later')
    }
    return this.#ctx.audit.append('call.report', fields)
  }

  /**
   * Verify an offline chain an agent reports a call of: by this Authority's keys, every hop
   * re-derived. It is verified at now, or at its last valid second once expired: a report comes
   * after the call, and a call hop lives 60 s, so a long tool run must not make its report
   * unverifiable; how long after expiry a report is still taken is MAX_REPORT_DELAY.
   */
  async #verifyReportedChain(chain: string): Promise<VerifiedOfflineChain> {
    const { root, hops } = decodeOfflineChainUnverified(chain)
    const last = (hops[hops.length - 1] ?? root).payload
    const wall = nowSec(this.#ctx)
    // never later than now (a chain not valid yet is refused as by any guard); an expired one at its
    // last valid second, and the report window (MAX_REPORT_DELAY) is checked on the verified claims
    const exp = typeof last.exp === 'number' ? last.exp : wall
    const at = Math.min(wall, exp - 1)
    return verifyOfflineChain(chain, {
      issuer: this.#ctx.issuer, keys: this.#ctx.keys.resolver, now: Number.isSafeInteger(at) ? at : wall,
    })
  }

  /** Listen to every audit record as it is appended (the dashboard's feed). Returns unsubscribe. */
  on(event: 'event', listener: AuditListener): () => void {
    if (event !== 'event') throw new MandateError('INVALID_REQUEST', 'unknown event (only "event")')
    return this.#ctx.audit.onRecord(listener)
  }

  /**
   * Hear that audit records were committed by ANOTHER instance sharing the store (its cross-instance
   * events; never for this instance's own records, which `on('event')` delivers). `seq`: the log's
   * new head there, or undefined when events may have been missed (resync). A wake-up only, without
   * records: read them from the store by seq (`audit.query({ afterSeq })`). Returns unsubscribe.
   */
  onRemoteAudit(listener: (seq: number | undefined) => void): () => void {
    this.#remoteAudit.add(listener)
    return () => void this.#remoteAudit.delete(listener)
  }

  #wakeRemoteAudit(seq: number | undefined): void {
    for (const l of [...this.#remoteAudit]) {
      try {
        l(seq)
      } catch {
        // one listener's failure never keeps the others asleep
      }
    }
  }

  /**
   * Delivery status of the webhook notifications: per endpoint (no secret, URL origin only) the
   * pending, delivered and failed counts, last success and failure, and the recent failed messages.
   */
  notificationStatus(): Promise<NotificationStatus> {
    return this.#safe(async () => this.#notifier ? this.#notifier.status() : { enabled: false, endpoints: [], recentFailures: [] })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#unsubscribeStore?.()
    try {
      // requests in flight are aborted (their rows stay pending for the next start)
      await this.#notifier?.close()
    } catch {
      // closing continues: the store must still be closed
    }
    try {
      await this.#ctx.audit.close()
    } finally {
      await this.store.close()
    }
  }
}

/** Create an Authority (creates and persists its signing key on first start). */
export function createAuthority(options: AuthorityOptions): Promise<Authority> {
  return Authority.create(options)
}
