/**
 * Typed errors. Every refusal in Mandate is a `MandateError` with a stable `code`, the OAuth error
 * it maps to at an HTTP edge, and the HTTP status. Messages are safe to show: they never contain a
 * token, a key or an approval secret.
 */

/** Stable error codes. Adding a code is a minor change; renaming one is a breaking change. */
export const ERROR_CODES = {
  // input shape
  TOKEN_MALFORMED: { oauth: 'invalid_token', status: 401 },
  TOKEN_TOO_LARGE: { oauth: 'invalid_token', status: 401 },
  JSON_DUPLICATE_MEMBER: { oauth: 'invalid_token', status: 401 },
  JSON_TOO_DEEP: { oauth: 'invalid_token', status: 401 },
  INVALID_UTF8: { oauth: 'invalid_token', status: 401 },
  // JOSE header and signature
  ALG_NOT_ALLOWED: { oauth: 'invalid_token', status: 401 },
  TYP_MISMATCH: { oauth: 'invalid_token', status: 401 },
  HEADER_NOT_ALLOWED: { oauth: 'invalid_token', status: 401 },
  CRIT_UNSUPPORTED: { oauth: 'invalid_token', status: 401 },
  KEY_NOT_FOUND: { oauth: 'invalid_token', status: 401 },
  SIGNATURE_INVALID: { oauth: 'invalid_token', status: 401 },
  // keys and identities
  KEY_INVALID: { oauth: 'invalid_request', status: 400 },
  KEY_LOW_ORDER: { oauth: 'invalid_request', status: 400 },
  DID_INVALID: { oauth: 'invalid_request', status: 400 },
  JWKS_UNAVAILABLE: { oauth: 'temporarily_unavailable', status: 503 },
  /** The revocation-status source could not be reached or is older than allowed: fail closed. */
  REVOCATION_STATUS_UNAVAILABLE: { oauth: 'temporarily_unavailable', status: 503 },
  // claims
  CLAIM_INVALID: { oauth: 'invalid_token', status: 401 },
  CLAIM_UNKNOWN: { oauth: 'invalid_token', status: 401 },
  ISSUER_MISMATCH: { oauth: 'invalid_token', status: 401 },
  AUDIENCE_MISMATCH: { oauth: 'invalid_token', status: 401 },
  TOKEN_EXPIRED: { oauth: 'invalid_token', status: 401 },
  TOKEN_NOT_YET_VALID: { oauth: 'invalid_token', status: 401 },
  TOKEN_REPLAYED: { oauth: 'invalid_token', status: 401 },
  REVOKED: { oauth: 'invalid_token', status: 401 },
  /** Signed by a trusted key but living longer than its kind allows (e.g. a call credential > 60 s). */
  LIFETIME_EXCEEDED: { oauth: 'invalid_token', status: 401 },
  /** Signed by a trusted key but internally inconsistent (ancestry vs depth, actor vs bound key, repeated actor). */
  CHAIN_INCONSISTENT: { oauth: 'invalid_token', status: 401 },
  // proof of possession
  PROOF_MISSING: { oauth: 'invalid_token', status: 401 },
  PROOF_INVALID: { oauth: 'invalid_dpop_proof', status: 401 },
  PROOF_BINDING_MISMATCH: { oauth: 'invalid_token', status: 401 },
  PROOF_REPLAYED: { oauth: 'invalid_dpop_proof', status: 401 },
  PROOF_STALE: { oauth: 'invalid_dpop_proof', status: 401 },
  NONCE_REQUIRED: { oauth: 'use_dpop_nonce', status: 401 },
  // authorization at the tool
  TOOL_NOT_ALLOWED: { oauth: 'insufficient_scope', status: 403 },
  ARGUMENTS_MISMATCH: { oauth: 'insufficient_scope', status: 403 },
  CONSTRAINT_VIOLATED: { oauth: 'insufficient_scope', status: 403 },
  INSUFFICIENT_SCOPE: { oauth: 'insufficient_scope', status: 403 },
  /** Tool arguments refused before any canonicalization or hashing (size, member count, depth, shape). */
  ARGUMENTS_INVALID: { oauth: 'invalid_request', status: 400 },
  // narrowing (delegation and call credentials)
  NARROWING_SCOPE: { oauth: 'invalid_scope', status: 400 },
  NARROWING_AUDIENCE: { oauth: 'invalid_target', status: 400 },
  NARROWING_TOOL: { oauth: 'invalid_grant', status: 400 },
  NARROWING_CONSTRAINT: { oauth: 'invalid_grant', status: 400 },
  NARROWING_TIME: { oauth: 'invalid_grant', status: 400 },
  NARROWING_DEPTH: { oauth: 'invalid_grant', status: 400 },
  NARROWING_BUDGET: { oauth: 'invalid_grant', status: 400 },
  NARROWING_CHAIN: { oauth: 'invalid_grant', status: 400 },
  NARROWING_CLAIM: { oauth: 'invalid_request', status: 400 },
  CONSTRAINT_UNKNOWN_TYPE: { oauth: 'invalid_request', status: 400 },
  CONSTRAINT_INVALID: { oauth: 'invalid_request', status: 400 },
  SCOPE_MALFORMED: { oauth: 'invalid_scope', status: 400 },
  // authority
  INVALID_REQUEST: { oauth: 'invalid_request', status: 400 },
  INVALID_CLIENT: { oauth: 'invalid_client', status: 401 },
  INVALID_GRANT: { oauth: 'invalid_grant', status: 400 },
  UNSUPPORTED_GRANT_TYPE: { oauth: 'unsupported_grant_type', status: 400 },
  UNSUPPORTED_TOKEN_TYPE: { oauth: 'unsupported_token_type', status: 400 },
  UNAUTHORIZED_CLIENT: { oauth: 'unauthorized_client', status: 400 },
  ACCESS_DENIED: { oauth: 'access_denied', status: 403 },
  POLICY_DENIED: { oauth: 'access_denied', status: 403 },
  APPROVAL_REQUIRED: { oauth: 'authorization_pending', status: 400 },
  APPROVAL_DENIED: { oauth: 'access_denied', status: 403 },
  APPROVAL_EXPIRED: { oauth: 'expired_token', status: 400 },
  AGENT_UNKNOWN: { oauth: 'invalid_client', status: 401 },
  AGENT_DISABLED: { oauth: 'invalid_client', status: 401 },
  NOT_FOUND: { oauth: 'invalid_request', status: 404 },
  /** The path exists, the method does not (answered 405 with `Allow`). */
  METHOD_NOT_ALLOWED: { oauth: 'invalid_request', status: 405 },
  /** Disabling or revoking it would leave no admin that can act: register or enable another first. */
  LAST_ADMIN: { oauth: 'invalid_request', status: 409 },
  STORE_ERROR: { oauth: 'server_error', status: 500 },
  AUDIT_BROKEN: { oauth: 'server_error', status: 500 },
  INTERNAL: { oauth: 'server_error', status: 500 },
  // edges and configuration
  /** The Authority could not be reached (network error, timeout); the detail names the URL. */
  AUTHORITY_UNREACHABLE: { oauth: 'temporarily_unavailable', status: 503 },
  /** A peer's answer was too large, too slow or not what the protocol says. */
  INVALID_RESPONSE: { oauth: 'server_error', status: 502 },
  /** A request body or header over the limit (answered 413). */
  PAYLOAD_TOO_LARGE: { oauth: 'invalid_request', status: 413 },
  /** A bounded resource (sessions, pending work) is full; try later. */
  CAPACITY_EXCEEDED: { oauth: 'temporarily_unavailable', status: 503 },
  /** The resource does not advertise Mandate protection, so no credential was sent to it. */
  RESOURCE_NOT_PROTECTED: { oauth: 'invalid_target', status: 400 },
  /** A remote tool's credential was minted but never presented to its audience: not a guarded call. */
  CREDENTIAL_NOT_PRESENTED: { oauth: 'access_denied', status: 403 },
  /** A policy document is invalid; the detail names the file, the rule and the JSON pointer. */
  POLICY_INVALID: { oauth: 'invalid_request', status: 400 },
  /** A configuration mistake found at construction (e.g. a tool with no audience and no guard). */
  CONFIG_INVALID: { oauth: 'invalid_request', status: 400 },
  /** A backing store (database, replay store) is unreachable: fail closed. */
  STORE_UNAVAILABLE: { oauth: 'temporarily_unavailable', status: 503 },
  /** The replay (single-use) store is unreachable or failed: single-use credentials are refused, never accepted. */
  REPLAY_STORE_UNAVAILABLE: { oauth: 'temporarily_unavailable', status: 503 },
  // call modes and offline attenuation
  /** This tool (or a policy rule) needs an Authority-minted per-call credential; an audience-level or offline-attenuated one is refused. */
  CALL_CREDENTIAL_REQUIRED: { oauth: 'insufficient_scope', status: 403 },
  /** An offline attenuation chain is malformed, mis-signed, mis-linked, widening or beyond its hop limit. */
  ATTENUATION_INVALID: { oauth: 'invalid_token', status: 401 },
  /** The mandate does not allow offline attenuation (or no hops are left). */
  ATTENUATION_NOT_ALLOWED: { oauth: 'invalid_grant', status: 400 },
  // federation (RFC 7523 jwt-bearer grants of external tokens)
  /** An external token (ID token, ID-JAG, workload token) failed a check; `detail.reason` names which. Nothing is issued. */
  FOREIGN_TOKEN_INVALID: { oauth: 'invalid_grant', status: 400 },
  /** An external token is valid for no federation rule (or a rule's client or template refuses the request). */
  FEDERATION_NO_MATCH: { oauth: 'invalid_grant', status: 400 },
} as const satisfies Record<string, { oauth: string; status: number }>

export type MandateErrorCode = keyof typeof ERROR_CODES
export type OAuthErrorCode = (typeof ERROR_CODES)[MandateErrorCode]['oauth']

const BRAND = Symbol.for('@mandate/core/MandateError')

export interface MandateErrorOptions {
  /** Structured, non-secret detail (claim name, rule, limit). Never a token or a key. */
  detail?: Readonly<Record<string, string | number | boolean | null>>
  cause?: unknown
}

export class MandateError extends Error {
  override readonly name = 'MandateError'
  readonly code: MandateErrorCode
  readonly oauthError: OAuthErrorCode
  readonly status: number
  readonly detail: Readonly<Record<string, string | number | boolean | null>> | undefined

  constructor(code: MandateErrorCode, message: string, options: MandateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    const entry = ERROR_CODES[code]
    this.code = code
    this.oauthError = entry.oauth
    this.status = entry.status
    this.detail = options.detail
    Object.defineProperty(this, BRAND, { value: true })
  }

  /** True for a MandateError even when two copies of this package are loaded. */
  static is(value: unknown): value is MandateError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true
  }

  /** The OAuth error body (RFC 6749 §5.2) for this error; the description is the safe message. */
  toOAuthBody(): { error: OAuthErrorCode; error_description: string; mandate_code: MandateErrorCode } {
    return { error: this.oauthError, error_description: this.message, mandate_code: this.code }
  }

  toJSON(): { name: string; code: MandateErrorCode; message: string; oauthError: string; status: number; detail?: unknown } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      oauthError: this.oauthError,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
    }
  }
}

/** True when `code` is one of the stable codes. */
export function isMandateErrorCode(code: unknown): code is MandateErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

/** Rebuild a MandateError from its JSON form (e.g. after it crossed a process boundary). */
export function mandateErrorFromJSON(value: unknown): MandateError {
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>
    if (isMandateErrorCode(v.code) && typeof v.message === 'string') {
      return new MandateError(v.code, v.message)
    }
  }
  return new MandateError('INTERNAL', 'unrecognised error')
}

/** Wrap anything thrown by code we do not own into a MandateError without leaking its message. */
export function asMandateError(err: unknown, fallback: MandateErrorCode = 'INTERNAL', message = 'internal error'): MandateError {
  return MandateError.is(err) ? err : new MandateError(fallback, message, { cause: err })
}
