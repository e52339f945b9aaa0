import { argumentsDigest, createAudienceCredentialCache, formatScope, MandateError, safeUrl, type AudienceCredentialCache, type AuthorityClient, type JsonValue } from '@mandate/core'

/** Where the holder's current mandate comes from: a fixed token, or a function (e.g. reading an agent's context). */
export type MandateProvider = string | (() => string | Promise<string>)

/** How a credential request that needs a human answers. */
export type ApprovalMode =
  /** Throw MandateError `APPROVAL_REQUIRED` with `detail.approval_id` (default). */
  | 'throw'
  /** Wait for the decision by event (`AuthorityClient.waitForApproval`), then resume with the approval id. */
  | 'wait'

export interface CallCredentialOptions {
  /** The Authority that exchanges the holder's mandate for call credentials. */
  authority: AuthorityClient
  /** The holder's mandate (the one the per-call credentials are narrowed from). */
  mandate: MandateProvider
  approval?: ApprovalMode
  /** Time limit when `approval` is `'wait'` (default 5 minutes). */
  approvalTimeoutMs?: number
  /** Credential lifetime in seconds (the Authority caps it at 60). */
  expiresIn?: number
  /**
   * How calls get their credentials. `per-call` (default): one exchange at the Authority per call
   * (a single-use call credential bound to the tool and arguments). `cached`: one audience
   * credential per (mandate, audience), cached until shortly before it expires and reused with a
   * fresh proof bound to the tool and argument digest per call — no Authority round trip per call.
   * Tools whose grant is marked `per_call`, or that the server refuses with
   * `CALL_CREDENTIAL_REQUIRED`, still go per-call (approvals included). A held offline chain
   * (`<root>~<hop>…`) is presented as is.
   */
  mode?: 'per-call' | 'cached'
  cached?: CachedCredentialOptions
  /**
   * Scopes to ask for in every credential (least privilege; a non-empty list). Default: none named,
   * so a credential carries every scope the mandate grants. Must be scopes the mandate grants: the
   * Authority refuses anything wider (`NARROWING_SCOPE`).
   */
  scopes?: readonly string[]
  /**
   * Scope step-up (MCP authorization): when an HTTP server refuses a call with
   * `403 insufficient_scope` and names the scopes it requires (`WWW-Authenticate: … scope="…"`), ask
   * the Authority once for a fresh call credential with {@link scopes} plus the challenged ones and
   * resend the call once. The Authority never issues a scope the mandate does not grant; that
   * refusal surfaces as `INSUFFICIENT_SCOPE` (with `detail.scope`, the required scopes, and
   * `detail.step_up: 'refused'`). A second refusal is never retried.
   *
   * Step-up can take a credential **beyond {@link scopes}** (never beyond the mandate, and only for
   * the server that asked, for that one call): `scopes` is then where each call starts, not a
   * ceiling. Default: on when `scopes` is set; off without it (a credential then already carries
   * every scope the mandate grants, so a step-up could only be refused). `stepUp: false` makes
   * `scopes` a hard ceiling.
   */
  stepUp?: boolean
}

/** Tuning of the `cached` mode. */
export interface CachedCredentialOptions {
  /** Audience credential lifetime to request, in seconds (default: the Authority's; at most 900). */
  expiresIn?: number
  /** Replace the credential this many seconds before it expires (default 60, at most half its lifetime). */
  refreshAheadSeconds?: number
  /**
   * When the Authority does not issue audience credentials (`UNSUPPORTED_TOKEN_TYPE`): `per-call`
   * (default) falls back to the per-call exchange; `fail` refuses the call.
   */
  whenUnavailable?: 'per-call' | 'fail'
}

/** A credential for one call: a call credential, or the cached audience credential (reused; fresh proof per call). */
export interface CallCredential {
  token: string
  cached: boolean
}

/** Internal: what the client transports use in both modes. */
export interface CredentialProvider {
  /** The credential for this call: cached when the mode and the mandate allow it, else per-call. */
  credential(request: CallCredentialRequest): Promise<CallCredential>
  /** A per-call credential (after a guard refused the cached one with CALL_CREDENTIAL_REQUIRED); remembers the tool. */
  perCall(request: CallCredentialRequest): Promise<string>
  /** A guard refused the cached credential as dead (revoked, expired): ask the Authority next time. */
  refused(request: CallCredentialRequest, code: string): void
  /** A fresh per-call credential for a step-up (`request.scopes`), leaving the cached-mode bookkeeping alone. */
  stepUpCredential(request: CallCredentialRequest): Promise<string>
  /** The scopes credentials are asked with (undefined: none named, i.e. all the mandate grants). */
  readonly scopes: readonly string[] | undefined
  /** Whether scope step-up is on. */
  readonly stepUp: boolean
}

export interface CallCredentialRequest {
  audience: string
  tool: string
  arguments: unknown
  signal?: AbortSignal
  /** Scopes for this one credential (a step-up), instead of the configured `scopes`. */
  scopes?: readonly string[]
}

/** Obtains one call credential per tool call (RFC 8693 exchange at the Authority). */
export type CallCredentialSource = (request: CallCredentialRequest) => Promise<string>

/**
 * Build the function the client adapters use to get a fresh call credential for exactly one
 * audience, tool and argument set. Approval-required answers either throw `APPROVAL_REQUIRED`
 * (with `detail.approval_id`) or wait for the human's decision and resume.
 *
 * @throws MandateError `APPROVAL_REQUIRED`, `APPROVAL_DENIED`, `APPROVAL_EXPIRED`, whatever the
 *   Authority refused with, or `AUTHORITY_UNREACHABLE` (with `detail.url`) when the client failed
 *   with anything that is not a MandateError.
 */
export function createCallCredentialSource(options: CallCredentialOptions): CallCredentialSource {
  const { authority } = options
  if (!authority || typeof authority.callCredential !== 'function') throw new MandateError('CONFIG_INVALID', 'authority must be an AuthorityClient')
  const mode = options.approval ?? 'throw'
  if (mode !== 'throw' && mode !== 'wait') throw new MandateError('CONFIG_INVALID', 'approval must be "throw" or "wait"')
  const timeoutMs = options.approvalTimeoutMs ?? 300_000
  const configured = scopeOption(options.scopes)
  // 'throw' mode: the approval each refused call opened, by mandate, audience, tool and argument
  // digest, so the same call made again (after the human decided) redeems that approval instead of
  // opening a second one. Bounded; an entry lives until its approval expires or is redeemed. It keeps
  // the scopes it was opened with: a call whose step-up needed the approval redeems it with the
  // stepped-up scopes (asking with the configured ones would only be refused again, and step up again).
  const pending = new Map<string, { id: string; expiresAt: number; scopes: readonly string[] | undefined }>()
  const MAX_PENDING = 1024
  const remember = (key: string, id: string, expiresAt: number | undefined, scopes: readonly string[] | undefined) => {
    pending.delete(key)
    if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value as string)
    pending.set(key, { id, expiresAt: expiresAt ?? Math.floor(Date.now() / 1000) + 600, scopes })
  }

  async function currentMandate(): Promise<string> {
    const m = typeof options.mandate === 'function' ? await options.mandate() : options.mandate
    if (typeof m !== 'string' || m.length === 0) throw new MandateError('PROOF_MISSING', 'no mandate is available for this call')
    return m
  }

  /** The Authority's answer, with anything that is not a MandateError (a custom client's TypeError) named as unreachable. */
  async function ask<T>(p: () => Promise<T>): Promise<T> {
    try {
      return await p()
    } catch (err) {
      if (MandateError.is(err)) throw err
      throw new MandateError('AUTHORITY_UNREACHABLE', `the Authority at ${safeUrl(authority.issuer)} could not be reached`, { detail: { url: safeUrl(authority.issuer) }, cause: err })
    }
  }

  return async (req) => {
    const mandate = await currentMandate()
    const scopes = req.scopes !== undefined ? scopeOption(req.scopes) : configured
    const call = {
      mandate,
      audience: req.audience,
      tool: req.tool,
      arguments: req.arguments ?? {},
      ...(options.expiresIn !== undefined ? { expiresIn: options.expiresIn } : {}),
    }
    const params = { ...call, ...(scopes !== undefined ? { scopes: [...scopes] } : {}) }
    const key = mode === 'throw' ? `${mandate}\n${req.audience}\n${req.tool}\n${argumentsDigest(params.arguments as JsonValue)}` : ''
    const held = mode === 'throw' ? pending.get(key) : undefined
    if (held !== undefined && held.expiresAt > Date.now() / 1000) {
      // the same call again: redeem the approval it opened (approved → issued; still pending → the
      // same approval id; denied or expired → that refusal, and the next attempt starts afresh),
      // with the scopes it was opened with
      const redeem = { ...call, ...(held.scopes !== undefined ? { scopes: [...held.scopes] } : {}), approvalId: held.id }
      let again: Awaited<ReturnType<typeof authority.callCredential>>
      try {
        again = await ask(() => authority.callCredential(redeem))
      } catch (err) {
        pending.delete(key)
        throw err
      }
      if (again.status === 'issued') {
        pending.delete(key)
        return again.token
      }
      remember(key, again.approvalId, again.expiresAt, held.scopes)
      throw new MandateError('APPROVAL_REQUIRED', 'this call is still waiting for a human approval', {
        detail: { approval_id: again.approvalId, tool: req.tool, expires_at: again.expiresAt },
      })
    }
    if (held !== undefined) pending.delete(key)
    const first = await ask(() => authority.callCredential(params))
    if (first.status === 'issued') return first.token
    const approvalId = first.approvalId
    if (mode === 'throw') {
      remember(key, approvalId, first.expiresAt, scopes)
      throw new MandateError('APPROVAL_REQUIRED', 'this call needs a human approval', {
        detail: { approval_id: approvalId, tool: req.tool, expires_at: first.expiresAt },
      })
    }
    const outcome = await ask(() => authority.waitForApproval(approvalId, { timeoutMs, ...(req.signal ? { signal: req.signal } : {}) }))
    if (outcome.status === 'denied') throw new MandateError('APPROVAL_DENIED', 'the approval was denied', { detail: { approval_id: approvalId } })
    if (outcome.status !== 'approved') throw new MandateError('APPROVAL_EXPIRED', 'the approval expired', { detail: { approval_id: approvalId } })
    const resumed = await ask(() => authority.callCredential({ ...params, approvalId }))
    if (resumed.status !== 'issued') throw new MandateError('APPROVAL_REQUIRED', 'the Authority still requires approval', { detail: { approval_id: resumed.approvalId } })
    return resumed.token
  }
}

/** RFC 6749 §3.3 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** A `scopes` option, checked (RFC 6749 scope tokens, no duplicates); undefined when not given. */
function scopeOption(scopes: readonly string[] | undefined): readonly string[] | undefined {
  if (scopes === undefined) return undefined
  const invalid = () => new MandateError('CONFIG_INVALID', 'scopes must be a non-empty array of distinct RFC 6749 scope tokens (omit it for every scope the mandate grants)')
  // an empty list would reach the Authority as no scope named at all, i.e. every scope the mandate grants
  if (!Array.isArray(scopes) || scopes.length === 0) throw invalid()
  for (const s of scopes) {
    // one token each: "a b" is two scopes, not one
    if (typeof s !== 'string' || s.length === 0 || !SCOPE_TOKEN.test(s)) throw invalid()
  }
  try {
    return Object.freeze(formatScope(scopes).split(' '))
  } catch (err) {
    throw new MandateError('CONFIG_INVALID', 'scopes must be an array of distinct RFC 6749 scope tokens', { cause: err })
  }
}

/** Build the {@link CredentialProvider} of a client transport (per-call or cached mode). */
export function createCredentialProvider(options: CallCredentialOptions): CredentialProvider {
  const perCallSource = createCallCredentialSource(options)
  const scopes = scopeOption(options.scopes)
  if (options.stepUp !== undefined && typeof options.stepUp !== 'boolean') throw new MandateError('CONFIG_INVALID', 'stepUp must be a boolean')
  // without `scopes` a credential already has all the mandate grants: a step-up could only be refused
  const stepUp = options.stepUp ?? scopes !== undefined
  const mode = options.mode ?? 'per-call'
  if (mode !== 'per-call' && mode !== 'cached') throw new MandateError('CONFIG_INVALID', 'mode must be "per-call" or "cached"')
  if (mode === 'per-call') {
    return { credential: async (r) => ({ token: await perCallSource(r), cached: false }), perCall: perCallSource, refused: () => undefined, stepUpCredential: perCallSource, scopes, stepUp }
  }
  const c = options.cached ?? {}
  const fallback = (c.whenUnavailable ?? 'per-call') === 'per-call'
  if (c.whenUnavailable !== undefined && c.whenUnavailable !== 'per-call' && c.whenUnavailable !== 'fail') throw new MandateError('CONFIG_INVALID', 'cached.whenUnavailable must be "per-call" or "fail"')
  const cache: AudienceCredentialCache = createAudienceCredentialCache({
    client: options.authority,
    ...(c.expiresIn !== undefined ? { expiresIn: c.expiresIn } : {}),
    ...(c.refreshAheadSeconds !== undefined ? { refreshAheadSeconds: c.refreshAheadSeconds } : {}),
    ...(scopes !== undefined ? { scopes } : {}),
  })
  const authority = options.authority
  const currentMandate = async (): Promise<string> => {
    const m = typeof options.mandate === 'function' ? await options.mandate() : options.mandate
    if (typeof m !== 'string' || m.length === 0) throw new MandateError('PROOF_MISSING', 'no mandate is available for this call')
    return m
  }
  return {
    async credential(r) {
      const mandate = await currentMandate()
      let cred
      try {
        cred = await cache.get(mandate, r.audience)
      } catch (err) {
        if (fallback && MandateError.is(err) && err.code === 'UNSUPPORTED_TOKEN_TYPE') return { token: await perCallSource(r), cached: false }
        if (MandateError.is(err)) throw err
        throw new MandateError('AUTHORITY_UNREACHABLE', `the Authority at ${safeUrl(authority.issuer)} could not be reached`, { detail: { url: safeUrl(authority.issuer) }, cause: err })
      }
      // the mandate decides: a per_call grant is called with an Authority-minted call credential
      if (cred.requiresPerCall(r.tool)) return { token: await perCallSource(r), cached: false }
      return { token: cred.token, cached: true }
    },
    async perCall(r) {
      cache.markPerCall(await currentMandate(), r.audience, r.tool)
      return perCallSource(r)
    },
    refused(r, code) {
      if (code !== 'REVOKED' && code !== 'TOKEN_EXPIRED' && code !== 'SIGNATURE_INVALID' && code !== 'KEY_NOT_FOUND') return
      void currentMandate().then((m) => cache.invalidate(m, r.audience), () => undefined)
    },
    stepUpCredential: perCallSource,
    scopes,
    stepUp,
  }
}
