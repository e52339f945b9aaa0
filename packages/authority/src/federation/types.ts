/**
 * Federation rules: which external issuers (OpenID providers, enterprise IdPs issuing ID-JAGs,
 * workload platforms) the Authority trusts, which of their tokens it accepts, and what a matching
 * token may become — the subject of a task, or an agent identity — bounded by a task template.
 * A mandate issued under a rule is always within the rule's template (core narrowRootGrant).
 */
import type { GrantTemplate, JsonValue } from '@mandate/core'

/** JOSE algorithms a rule may allow for an external issuer (none and HMAC are never accepted). */
export const FEDERATION_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const
export type FederationAlg = (typeof FEDERATION_ALGS)[number]

/** A scalar claim value a matcher compares with. */
export type ClaimScalar = string | number | boolean

/**
 * How one claim must match. `exact`: equal (a string claim, or an array claim containing it);
 * `oneOf`: equal to one of the list; `glob`: a string pattern over segments separated by `/` or
 * `:` — `*` is exactly one non-empty segment, `**` any number of whole segments (only as a whole
 * segment), every other character literal. Unknown matcher types are refused when the rule is read.
 */
export type ClaimMatcher = { exact: ClaimScalar } | { oneOf: ClaimScalar[] } | { glob: string }

/** The external issuer a rule trusts and the keys and algorithms its tokens may use. */
export interface IssuerTrust {
  /** The exact `iss` of its tokens (an https URL for OpenID providers; any string for SPIFFE trust domains' issuers). */
  issuer: string
  /**
   * Where the keys come from — exactly one: `discovery` (OpenID Connect Discovery at
   * `${issuer}/.well-known/openid-configuration`, whose `issuer` must equal `issuer` and whose
   * `jwks_uri` is used), `jwksUri`, or inline `jwks`.
   */
  discovery?: true
  jwksUri?: string
  jwks?: { keys: Record<string, JsonValue>[] }
  /** Exactly the algorithms its tokens may use (1..11 of FEDERATION_ALGS). */
  algorithms: FederationAlg[]
}

/**
 * What token the rule accepts: an OpenID Connect ID token, an IdP access token (JWT), an ID-JAG
 * (`typ: oauth-id-jag+jwt`, draft-ietf-oauth-identity-assertion-authz-grant) or a workload token
 * (GitHub Actions OIDC, Kubernetes service-account token, SPIFFE JWT-SVID).
 */
export type ForeignTokenKind = 'id_token' | 'access_token' | 'id_jag' | 'workload'

/** What a mandate issued under a rule may hold at most (the mandate can only be narrower): core's GrantTemplate. */
export type FederationTemplate = GrantTemplate

/** Map a matching token to the person (or system) the task is for. */
export interface SubjectMapping {
  /**
   * Claim holding the subject identifier: always `sub` (the only accepted value). The subject is
   * namespaced as `<issuer>#<sub>`; another claim in that namespace could collide with someone's `sub`.
   */
  claim?: 'sub'
  /** Claim holding a display name (default `name`), shown in audit and dashboard only. */
  nameClaim?: string
  /** Claim holding an e-mail address (default `email`), shown in audit and dashboard only. */
  emailClaim?: string
}

/** Map a matching workload token to an agent identity registered for a bounded time. */
export interface AgentMapping {
  /** Display name; `{claim}` placeholders are replaced by the token's string claims (e.g. `ci:{repository}@{ref}`). */
  name: string
  /** Role of the registered principal (default `agent`). */
  role?: 'agent' | 'grantor'
  /** Longest time the key stays registered, seconds (never past the workload token's own lifetime plus this). */
  lifetime: number
}

export interface FederationRule {
  /** Unique id, `[a-z0-9][a-z0-9._-]{0,63}`. */
  id: string
  description?: string
  /** `subject`: the token names the person the task is for; `agent`: the token names a workload acting as an agent. */
  kind: 'subject' | 'agent'
  token: ForeignTokenKind
  trust: IssuerTrust
  /**
   * Accepted `aud` values; the token's `aud` must contain one. Default: this Authority's issuer
   * and token endpoint (ID-JAG: always exactly the Authority's issuer).
   */
  audiences?: string[]
  /** Claims that must match, all of them (`sub`, `aud`, `repository`, …). */
  claims: Record<string, ClaimMatcher>
  subject?: SubjectMapping
  agent?: AgentMapping
  template: FederationTemplate
  /** Refuse tokens without `jti` (always for ID-JAG). A `jti` present is single use either way. */
  requireJti?: boolean
  /** Refuse tokens whose `iat` is older than this, seconds. */
  maxTokenAge?: number
  /** Subject rules: dids of the clients (host apps) allowed to redeem tokens under this rule; default any grantor or admin. */
  clients?: string[]
}

/** Where a rule comes from: the config file (read-only at runtime) or the store (admin API, CLI). */
export type RuleSource = 'config' | 'store'

/** A rule as stored (the store keeps the validated rule as JSON, plus bookkeeping). */
export interface StoredFederationRule {
  rule: FederationRule
  /** ms since the epoch */
  createdAt: number
  createdBy?: string
}

/** A foreign token that passed every check of one rule. */
export interface VerifiedForeignToken {
  rule: FederationRule
  header: { alg: string; kid?: string; typ?: string }
  /** The token's payload (claims), as parsed. */
  claims: Record<string, JsonValue>
}

/** The external identity a task or an agent is bound to (recorded in mandates' audit and the agent registry). */
export interface FederatedIdentity {
  /** External issuer (`iss`). */
  iss: string
  /** External subject (`sub`, or the rule's subject claim). */
  sub: string
  /** Rule that admitted it. */
  rule: string
  name?: string
  email?: string
}

/** Why one rule did or did not accept a token (`mandate federation test`). */
export interface RuleVerdict {
  rule: string
  source: RuleSource
  matched: boolean
  /**
   * Absent when matched; otherwise the failed check: a FOREIGN_TOKEN_INVALID `detail.reason`
   * (foreign_token.ts: `signature`, `expired`, `claims`…), `issuer` for a rule of another issuer,
   * `client` for a rule limited to other clients, or `shadowed` for a rule after the one that
   * matched (not tried).
   */
  reason?: string
  /** Empty when matched; otherwise each failed check, in order. */
  reasons: string[]
}

export interface FederationExplanation {
  /** `iss` of the token as read before any verification ('' when unreadable). */
  issuer: string
  /** The first rule that accepts the token, if any. */
  matched?: string
  verdicts: RuleVerdict[]
}
