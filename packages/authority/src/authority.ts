/**
 * The Authority as a library: principals, grants, exchanges, policy, approvals, revocation, keys and
 * the audit log over one AuthorityStore. The HTTP server (createAuthorityServer) is a thin edge over
 * this object.
 */
import {
  CLIENT_ASSERTION_TYPE, createNonceSource, isDidKey, jwkThumbprint, MandateError, MemoryReplayStore, publicJwkFromDidKey,
  type CallReport, Ed25519Key, type Ed25519PublicJwk, type JsonValue, type NonceSource, type ReplayStore,
  type RevocationSource, type RevocationStatusDocument,
} from '@mandate/core'
import { approvalView, ApprovalService, type ApprovalListener, type ApprovalView } from './approvals/service.js'
import { AuditLog, type AuditListener, type AuditVerification } from './audit/chain.js'
import { createInProcessClient, type InProcessClientOptions } from './client/in_process.js'
import { endpointsFor, type AuthorityContext, type AuthorityEndpoints } from './context.js'
import { authenticateClient } from './exchange/client_auth.js'
import { grantRootMandate, type GrantParams } from './exchange/grant.js'
import type { IssuedMandate, RefusalFields } from './exchange/issued.js'
import { FormParams } from './exchange/params.js'
import { auditRefusal, handleTokenRequest, type TokenResponse } from './exchange/token_endpoint.js'
import { RefusalAuditLimiter } from './audit/refusal_limiter.js'
import { exchangeMandate, type ExchangeParams } from './exchange/token_exchange.js'
import { fileKeyStorage, storeKeyStorage } from './keys/key_storage.js'
import { SigningKeys } from './keys/signing_keys.js'
import type { PolicyEngine } from './policy/engine.js'
import { createRulePolicy, type PolicyRule } from './policy/rules.js'
import { introspectToken, revokeToken, type IntrospectionResponse } from './revocation/introspect.js'
import { revocationStatus, revokeTarget, storeRevocationSource, type RevocationTarget, type RevokeMeta } from './revocation/revoke.js'
import { MemoryStore } from './store/memory.js'
import type { AuthorityStore } from './store/store.js'
import { ROLES, type AgentRecord, type ApprovalStatus, type AuditQuery, type AuditRecord, type RegisterAgentInput, type RevocationEntry, type StoredCheckpoint } from './types.js'

export interface AuthorityOptions {
  /** Exact `iss` of every mandate; endpoint URLs derive from it. */
  issuer: string
  /** Default: a new MemoryStore. */
  store?: AuthorityStore
  /** Declarative rules (first match wins) or any PolicyEngine. Default: allow (mandates bound everything). */
  policy?: readonly PolicyRule[] | PolicyEngine
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
  /** Sign an audit checkpoint every N records. Default 100. */
  checkpointEvery?: number
  /** Demand server-provided DPoP nonces at the token endpoint (RFC 9449 §8). Default false. */
  requireDpopNonce?: boolean
  /** `refresh_interval` advertised in the revocation-status document, seconds. Default 5. */
  revocationRefreshSeconds?: number
  /** Keep call arguments in approvals so approvers can read them. Default true. */
  storeApprovalArguments?: boolean
  /** Replay store for client assertions and DPoP proofs (share one across instances). */
  replay?: ReplayStore
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
  verify(options?: { checkpoint?: string }): Promise<AuditVerification>
  exportJsonl(q?: Omit<AuditQuery, 'afterSeq' | 'limit'>): AsyncIterable<string>
  checkpoint(): Promise<StoredCheckpoint | undefined>
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>
}

const NAME = /^[\x20-\x7e]{1,128}$/

export class Authority {
  readonly issuer: string
  readonly endpoints: AuthorityEndpoints
  readonly store: AuthorityStore
  readonly approvals: ApprovalsApi
  readonly audit: AuditApi
  readonly #ctx: AuthorityContext
  readonly #timer: ReturnType<typeof setInterval>
  #closed = false

  private constructor(ctx: AuthorityContext) {
    this.#ctx = ctx
    this.issuer = ctx.issuer
    this.endpoints = ctx.endpoints
    this.store = ctx.store
    const svc = ctx.approvals
    this.approvals = {
      list: async (f) => (await svc.list(f ?? {})).map(approvalView),
      get: async (id) => approvalView(await svc.get(id)),
      approve: async (id, by) => approvalView(await this.#refusable('approvals', { approval: String(id).slice(0, 64), approver: String(by?.approver).slice(0, 128) }, () => svc.approve(id, by))),
      deny: async (id, by) => approvalView(await this.#refusable('approvals', { approval: String(id).slice(0, 64), approver: String(by?.approver).slice(0, 128) }, () => svc.deny(id, by))),
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

  /** @internal */
  static async create(options: AuthorityOptions): Promise<Authority> {
    const endpoints = endpointsFor(options.issuer)
    const now = options.now ?? Date.now
    const maxMandateLifetime = options.maxMandateLifetime ?? 86_400
    const maxCallLifetime = options.maxCallLifetime ?? 60
    if (!Number.isSafeInteger(maxMandateLifetime) || maxMandateLifetime < 1) throw new TypeError('maxMandateLifetime must be a positive integer')
    if (!Number.isSafeInteger(maxCallLifetime) || maxCallLifetime < 1 || maxCallLifetime > 60) throw new TypeError('maxCallLifetime must be 1..60 seconds')
    const skew = options.skew ?? 30
    if (!Number.isFinite(skew) || skew < 0 || skew > 60) throw new TypeError('skew must be 0..60 seconds')
    const ttl = options.approvalTtlSeconds ?? 600
    if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError('approvalTtlSeconds must be positive')
    const store = options.store ?? new MemoryStore()
    const keys = await SigningKeys.open(options.keyFile ? fileKeyStorage(options.keyFile) : storeKeyStorage(store), {
      now, overlapSeconds: options.keyOverlapSeconds ?? maxMandateLifetime,
    })
    const policy: PolicyEngine = options.policy === undefined ? createRulePolicy([]) : Array.isArray(options.policy) ? createRulePolicy(options.policy) : (options.policy as PolicyEngine)
    if (typeof policy.evaluate !== 'function') throw new TypeError('policy must be rules or a PolicyEngine')
    const audit = new AuditLog({
      issuer: options.issuer, store, now, signingKey: () => keys.current, checkpointKeys: () => keys.historicResolver,
      ...(options.checkpointEvery !== undefined ? { checkpointEvery: options.checkpointEvery } : {}),
    })
    const isApprover = async (did: string) => {
      const a = await store.getAgent(did)
      return a !== undefined && !a.disabled && (a.role === 'approver' || a.role === 'admin')
    }
    const approvals = new ApprovalService(store, audit, now, ttl, isApprover)
    const nonce: NonceSource | undefined = options.requireDpopNonce ? createNonceSource({ now }) : undefined
    const ctx: AuthorityContext = {
      issuer: options.issuer, endpoints, tokenUrl: new URL(endpoints.token), store, keys, audit, approvals, policy, now,
      replay: options.replay ?? new MemoryReplayStore({ now: () => Math.floor(now() / 1000) }),
      ...(nonce ? { nonce } : {}),
      limits: { maxMandateLifetime, maxCallLifetime, skew, revocationRefresh: options.revocationRefreshSeconds ?? 5 },
      storeApprovalArguments: options.storeApprovalArguments ?? true,
      unattributedRefusals: new RefusalAuditLimiter(options.unattributedRefusals?.burst ?? 100, options.unattributedRefusals?.perSecond ?? 10, now),
    }
    return new Authority(ctx)
  }

  async #refusable<T>(endpoint: string, info: RefusalFields, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw await auditRefusal(this.#ctx, endpoint, err, info)
    }
  }

  // ---- principals

  /** Register a principal by its did:key. */
  async registerAgent(input: RegisterAgentInput, meta: { by?: string } = {}): Promise<AgentRecord> {
    if (typeof input !== 'object' || input === null) throw new MandateError('INVALID_REQUEST', 'agent registration must be an object')
    if (!isDidKey(input.did)) throw new MandateError('DID_INVALID', 'did must be an Ed25519 did:key')
    if (typeof input.name !== 'string' || !NAME.test(input.name)) throw new MandateError('INVALID_REQUEST', 'name must be 1..128 printable ASCII characters')
    const role = input.role ?? 'agent'
    if (!ROLES.includes(role)) throw new MandateError('INVALID_REQUEST', 'unknown role')
    if (input.owner !== undefined && (typeof input.owner !== 'string' || input.owner.length > 256)) throw new MandateError('INVALID_REQUEST', 'owner must be a string of at most 256 characters')
    if (input.metadata !== undefined && (typeof input.metadata !== 'object' || input.metadata === null || Array.isArray(input.metadata) || JSON.stringify(input.metadata).length > 4096)) {
      throw new MandateError('INVALID_REQUEST', 'metadata must be a JSON object of at most 4 KiB')
    }
    const jwk: Ed25519PublicJwk = publicJwkFromDidKey(input.did)
    const agent: AgentRecord = { did: input.did, jkt: jwkThumbprint(jwk), name: input.name, role, disabled: false, createdAt: this.#ctx.now() }
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

  getAgent(did: string): Promise<AgentRecord | undefined> {
    return this.store.getAgent(did)
  }

  listAgents(): Promise<AgentRecord[]> {
    return this.store.listAgents()
  }

  /** Disable a principal: it can no longer authenticate, and mandates naming it in their chain stop exchanging. */
  async disableAgent(did: string, meta: { by?: string; reason?: string } = {}): Promise<AgentRecord> {
    const fields: Record<string, JsonValue> = { agent: String(did).slice(0, 128) }
    if (meta.by !== undefined) fields.by = meta.by
    if (meta.reason !== undefined) fields.reason = String(meta.reason).slice(0, 512)
    const rec = await this.store.disableAgent(did, this.#ctx.now(), this.#ctx.audit.draft('agent.disabled', fields))
    if (!rec) {
      if (!(await this.store.getAgent(did))) throw new MandateError('NOT_FOUND', 'no such agent')
    } else {
      await this.#ctx.audit.recorded(rec)
    }
    return (await this.store.getAgent(did)) as AgentRecord
  }

  // ---- grants and exchanges

  /** Grant a root task mandate (in-process grantor call). */
  grant(params: GrantParams): Promise<GrantResult> {
    const info: RefusalFields = { operation: 'grant' }
    return this.#refusable('grant', info, () => grantRootMandate(this.#ctx, params, info))
  }

  /**
   * The token endpoint without HTTP: form parameters plus the DPoP header. Used by the HTTP route and
   * by `clientFor`, so both take one code path. Refusals are audited and thrown as MandateError.
   */
  token(params: FormParams | URLSearchParams | Record<string, string | string[] | undefined>, headers: { dpop?: string } = {}): Promise<TokenResponse> {
    const info: RefusalFields = {}
    return this.#refusable('token', info, () => handleTokenRequest(this.#ctx, { params: FormParams.from(params), ...(headers.dpop !== undefined ? { dpop: headers.dpop } : {}) }, info))
  }

  /**
   * In-process exchange authenticated by possession of the holder's key object (no assertion or
   * proof is signed: in one process, holding the Ed25519Key is holding the private key).
   */
  async exchange(holder: Ed25519Key, params: ExchangeParams): Promise<IssuedMandate> {
    const info: RefusalFields = {}
    return this.#refusable('exchange', info, async () => {
      // possession of the key object is the authentication here: a look-alike with the same
      // did and jkt (public values) is not a key
      if (!Ed25519Key.holdsPrivateKey(holder)) throw new MandateError('INVALID_CLIENT', 'the holder must be an Ed25519Key holding its private key')
      const caller = await this.store.getAgent(holder.did)
      if (!caller || caller.disabled || caller.jkt !== holder.jkt) throw new MandateError('INVALID_CLIENT', 'the holder is not a registered, enabled principal')
      return exchangeMandate(this.#ctx, caller, params, info)
    })
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
   * Throws INVALID_CLIENT.
   */
  authenticate(assertion: string, endpoint?: string): Promise<AgentRecord> {
    return this.#refusable('authenticate', {}, () => authenticateClient(this.#ctx, { assertionType: CLIENT_ASSERTION_TYPE, assertion }, endpoint))
  }

  /** Authenticate with form parameters (introspection, revocation). */
  authenticateForm(params: FormParams, endpoint: string): Promise<AgentRecord> {
    return this.#refusable(endpoint, {}, () => {
      const t = params.one('client_assertion_type')
      const a = params.one('client_assertion')
      const id = params.one('client_id')
      return authenticateClient(this.#ctx, { ...(t !== undefined ? { assertionType: t } : {}), ...(a !== undefined ? { assertion: a } : {}), ...(id !== undefined ? { clientId: id } : {}) }, endpoint)
    })
  }

  // ---- tokens, revocation

  introspect(token: string, caller: AgentRecord): Promise<IntrospectionResponse> {
    return introspectToken(this.#ctx, token, caller)
  }

  revokeToken(token: string, caller: AgentRecord, hint?: string): Promise<void> {
    return this.#refusable('revoke', { agent: caller.did }, () => revokeToken(this.#ctx, token, caller, hint))
  }

  /** Revoke a mandate (and every descendant), a task, or an agent. */
  revoke(target: RevocationTarget, meta: RevokeMeta = {}): Promise<RevocationEntry[]> {
    return this.#refusable('revocation', meta.by !== undefined ? { agent: meta.by } : {}, () => revokeTarget(this.#ctx, target, meta))
  }

  /** A RevocationSource for in-process guards (reads the store: revocations apply at once). */
  revocationSource(): RevocationSource {
    return storeRevocationSource(this.#ctx)
  }

  revocationStatus(since?: string): Promise<RevocationStatusDocument> {
    return revocationStatus(this.#ctx, since)
  }

  /** Number of mandates and call credentials ever issued. */
  countMandates(): Promise<number> {
    return this.store.countMandates()
  }

  // ---- keys

  jwks(): { keys: Ed25519PublicJwk[] } {
    return this.#ctx.keys.jwks()
  }

  async rotateSigningKey(meta: { by?: string } = {}): Promise<{ kid: string; previous?: string }> {
    const r = await this.#ctx.keys.rotate()
    await this.#ctx.audit.append('key.rotated', { kid: r.kid, ...(r.previous ? { previous: r.previous } : {}), ...(meta.by ? { by: meta.by } : {}) })
    return r
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
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange', 'urn:mandate:grant-type:task'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519'],
      introspection_endpoint_auth_methods_supported: ['private_key_jwt'],
      introspection_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519'],
      revocation_endpoint_auth_methods_supported: ['private_key_jwt'],
      revocation_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519'],
      dpop_signing_alg_values_supported: ['EdDSA', 'Ed25519'],
      response_types_supported: ['token'],
      authorization_details_types_supported: ['tool_access'],
      revocation_status_endpoint: e.revocationStatus,
      approvals_endpoint: e.approvals,
      audit_endpoint: e.audit,
    }
  }

  // ---- audit

  /** Record a guarded or wrapped call (never with tokens). */
  async reportCall(report: CallReport, meta: { reporter?: string } = {}): Promise<AuditRecord> {
    const s = (v: unknown, name: string, max = 512): string => {
      if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new MandateError('INVALID_REQUEST', `report.${name} must be a non-empty string`)
      return v
    }
    if (typeof report !== 'object' || report === null) throw new MandateError('INVALID_REQUEST', 'report must be an object')
    if (report.decision !== 'allowed' && report.decision !== 'refused') throw new MandateError('INVALID_REQUEST', 'report.decision must be allowed or refused')
    if (report.outcome !== undefined && report.outcome !== 'success' && report.outcome !== 'error') throw new MandateError('INVALID_REQUEST', 'report.outcome must be success or error')
    if (!Array.isArray(report.actorChain) || report.actorChain.length > 20) throw new MandateError('INVALID_REQUEST', 'report.actorChain must be an array')
    const actors = report.actorChain.map((a) => s(a, 'actorChain'))
    const fields: Record<string, JsonValue> = {
      jti: s(report.mandateId, 'mandateId', 64), txn: s(report.txn, 'txn', 128), tool: s(report.tool, 'tool', 128), audience: s(report.audience, 'audience', 2048),
      args: s(report.argumentsDigest, 'argumentsDigest', 64), decision: report.decision, actors, subject: s(report.subject, 'subject'),
    }
    if (actors.length) fields.agent = actors[actors.length - 1] as string
    if (report.outcome !== undefined) fields.outcome = report.outcome
    if (report.errorCode !== undefined) fields.error = s(report.errorCode, 'errorCode', 64)
    if (meta.reporter !== undefined) fields.reporter = meta.reporter
    return this.#ctx.audit.append('call.report', fields)
  }

  /** Listen to every audit record as it is appended (the dashboard's feed). Returns unsubscribe. */
  on(event: 'event', listener: AuditListener): () => void {
    if (event !== 'event') throw new TypeError('unknown event')
    return this.#ctx.audit.onRecord(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    try {
      await this.#ctx.audit.checkpoint()
    } finally {
      await this.store.close()
    }
  }
}

/** Create an Authority (creates and persists its signing key on first start). */
export function createAuthority(options: AuthorityOptions): Promise<Authority> {
  return Authority.create(options)
}
