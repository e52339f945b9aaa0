/** The parts of an Authority that its operations share (internal; not exported from the package root). */
import { MandateError, type NonceSource } from '@mandate/core'
import type { ApprovalService } from './approvals/service.js'
import type { AuditLog } from './audit/chain.js'
import type { RefusalAuditLimiter } from './audit/refusal_limiter.js'
import type { SingleUse } from './exchange/single_use.js'
import type { SubjectCache } from './exchange/subject_cache.js'
import type { ResolvedCallModes } from './exchange/call_modes.js'
import type { SigningKeys } from './keys/signing_keys.js'
import type { PolicyEngine } from './policy/engine.js'
import type { AuthorityStore } from './store/store.js'
import type { IssuerKeys } from './federation/issuer_keys.js'
import type { FederationRule, RuleSource } from './federation/types.js'

export interface AuthorityEndpoints {
  issuer: string
  metadata: string
  jwks: string
  token: string
  introspection: string
  revocation: string
  revocationStatus: string
  approvals: string
  audit: string
  admin: string
}

export interface AuthorityLimits {
  /** seconds */
  maxMandateLifetime: number
  /** seconds, at most 60 */
  maxCallLifetime: number
  /** wall-clock skew allowance, seconds */
  skew: number
  /** seconds guards should wait between revocation-status polls */
  revocationRefresh: number
}

export interface AuthorityContext {
  issuer: string
  endpoints: AuthorityEndpoints
  /** endpoints.token, parsed once (every token-endpoint proof is checked against it) */
  tokenUrl: URL
  store: AuthorityStore
  keys: SigningKeys
  audit: AuditLog
  approvals: ApprovalService
  policy: PolicyEngine
  /** ms clock */
  now: () => number
  /** Single use of client assertions and DPoP proofs, attributed to the authenticated principal. */
  singleUse: SingleUse
  /**
   * The one report of an allowed call of a single-use credential (audit/report_attribution.ts): the
   * same store, its own budget, so reports (kept ~16 min) never crowd out authentication (~1 min).
   */
  reportUse: SingleUse
  nonce?: NonceSource
  limits: AuthorityLimits
  storeApprovalArguments: boolean
  /** Bounds the audit records of refusals that no authenticated principal can be held to. */
  unattributedRefusals: RefusalAuditLimiter
  /** Audience credentials and offline grants on or off, per-call tools, offline hop cap (exchange/call_modes.ts). */
  callModes: ResolvedCallModes
  /** Subject tokens verified before (exchange/subject_cache.ts). */
  subjects: SubjectCache
  /** Federation rules (config file and store) and the external issuers' key sets (jwt-bearer grants). */
  federation: {
    registry: { rules(): Promise<Array<{ rule: FederationRule; source: RuleSource }>> }
    keys: IssuerKeys
  }
}

/** Endpoint URLs derived from the issuer (RFC 8414 §3: metadata path inserted before the issuer path). */
export function endpointsFor(issuer: string): AuthorityEndpoints {
  const bad = () => new MandateError('CONFIG_INVALID', 'issuer must be an http(s) URL without query or fragment')
  let u: URL
  try {
    u = new URL(issuer)
  } catch {
    throw bad()
  }
  if (typeof issuer !== 'string' || u.search || u.hash || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw bad()
  if (u.username || u.password) throw new MandateError('CONFIG_INVALID', 'issuer must not contain credentials')
  // every mandate names the issuer and every client compares it byte for byte: a spelling URL
  // parsing would rewrite (whitespace, case, a default port, dot segments) is a second issuer
  const canonical = u.href.replace(/\/$/, '')
  if (issuer !== canonical && issuer !== u.href) throw new MandateError('CONFIG_INVALID', `issuer is not in canonical form (did you mean "${canonical.slice(0, 200)}"?)`)
  const base = issuer.replace(/\/$/, '')
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
  return {
    issuer,
    metadata: `${u.origin}/.well-known/oauth-authorization-server${path}`,
    jwks: `${base}/jwks`,
    token: `${base}/token`,
    introspection: `${base}/introspect`,
    revocation: `${base}/revoke`,
    revocationStatus: `${base}/revocation-status`,
    approvals: `${base}/approvals`,
    audit: `${base}/audit`,
    admin: `${base}/admin`,
  }
}

export const nowSec = (ctx: Pick<AuthorityContext, 'now'>): number => Math.floor(ctx.now() / 1000)
