/**
 * The AuthorityClient over HTTP (docs/protocol.md, client side): RFC 8414 discovery with an exact
 * issuer check, a fresh private_key_jwt client assertion and DPoP proof per request, one retry on
 * `use_dpop_nonce`, `authorization_pending` (approval required) mapped to a result, and waitForApproval over the SSE event
 * stream (long poll as the fallback). Runs on any runtime with fetch and streams.
 */
import { createClientAssertion, CLIENT_ASSERTION_TYPE } from '../client_auth/assertion.js'
import { isMandateErrorCode, MandateError, type MandateErrorCode } from '../errors.js'
import type { Ed25519Key } from '../identity/key.js'
import { decodeMandateUnverified } from '../mandate/verify.js'
import { snapshotArguments } from '../mandate/args_snapshot.js'
import { createProof } from '../proof/proof.js'
import { fetchAuthorityMetadata, type AuthorityMetadata } from './metadata.js'
import { fetchBounded, readBounded, safeUrl, type BoundedResponse } from '../http/bounded_fetch.js'
import { requireSecureUrl } from '../http/transport_url.js'
import { refusalText } from '../kernel/refusal_text.js'
import type {
  ApprovalOutcome, AudienceCredentialParams, AuthorityClient, CallCredentialParams, CallCredentialResult, CallReport, DelegateParams, IssuedToken,
} from './authority_client.js'

export { metadataUrl, type AuthorityMetadata } from './metadata.js'

export interface HttpAuthorityClientOptions {
  /** The Authority's issuer identifier; the discovered metadata must name exactly this issuer. */
  issuer: string
  /** The agent's key: signs client assertions and DPoP proofs. */
  key: Ed25519Key
  fetch?: typeof fetch
  /** Per-request deadline, body included (ms). Default 10 000. */
  timeoutMs?: number
  /** Largest answer accepted (bytes). Default 256 KiB. */
  maxResponseBytes?: number
  /**
   * WEAKENS SECURITY. Talk to an `http:` Authority on a host that is not loopback: its client
   * assertions, proofs and mandates then cross the network in the clear. Default false: such an
   * issuer is CONFIG_INVALID (and metadata naming such endpoints INVALID_RESPONSE).
   */
  insecureAllowHttp?: boolean
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
const CALL_CREDENTIAL = 'urn:mandate:token-type:call-credential'
/** RFC 8693 `requested_token_type` of an audience credential (the cached call mode). */
export const AUDIENCE_CREDENTIAL_TOKEN_TYPE = 'urn:mandate:token-type:audience-credential'
const MAX_RESPONSE = 256 * 1024

const OAUTH_TO_CODE: Record<string, MandateErrorCode> = {
  invalid_request: 'INVALID_REQUEST', invalid_client: 'INVALID_CLIENT', invalid_grant: 'INVALID_GRANT', invalid_scope: 'NARROWING_SCOPE',
  invalid_target: 'NARROWING_AUDIENCE', unsupported_grant_type: 'UNSUPPORTED_GRANT_TYPE', unauthorized_client: 'UNAUTHORIZED_CLIENT',
  access_denied: 'ACCESS_DENIED', invalid_dpop_proof: 'PROOF_INVALID', use_dpop_nonce: 'NONCE_REQUIRED', server_error: 'INTERNAL',
  temporarily_unavailable: 'AUTHORITY_UNREACHABLE',
}

// what a proxy or load balancer answers when the Authority behind it is down
const GATEWAY_STATUSES = new Set([502, 503, 504])

/**
 * The call's arguments as sent: the same snapshot (and limits) the guard applies, so arguments the
 * guard would refuse (cycles, BigInt, functions, over the limits) are ARGUMENTS_INVALID here too,
 * never a TypeError from JSON.stringify.
 */
function argumentsJson(args: unknown): string {
  return JSON.stringify(snapshotArguments(args === undefined ? {} : args))
}

function errorFromBody(status: number, body: unknown, url: string): MandateError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  // token-shaped text is cut out before the cut to 300 characters: a truncated token would no longer
  // match the adapters' secret scrubbing, and its claims would reach the model
  const description = typeof b.error_description === 'string' ? refusalText(b.error_description) : `the Authority answered ${status}`
  const code: MandateErrorCode = isMandateErrorCode(b.mandate_code)
    ? b.mandate_code
    // own members only: an `error` of "constructor" or "__proto__" must not read the prototype
    : (typeof b.error === 'string' && Object.hasOwn(OAUTH_TO_CODE, b.error) ? OAUTH_TO_CODE[b.error] : undefined) ??
      (GATEWAY_STATUSES.has(status) ? 'AUTHORITY_UNREACHABLE' : status >= 500 ? 'INTERNAL' : 'INVALID_REQUEST')
  return new MandateError(code, description, { detail: { status, url: safeUrl(url), ...(typeof b.error === 'string' ? { oauth_error: b.error.slice(0, 64) } : {}) } })
}

/** The JSON object of a bounded answer; an error answer that is not JSON reads as `{}`. */
function readJson(res: BoundedResponse, url: string): Record<string, unknown> {
  const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json' && !type?.endsWith('+json')) {
    if (!res.ok) return {}
    throw new MandateError('INVALID_RESPONSE', 'Authority answer is not JSON', { detail: { url: safeUrl(url), status: res.status } })
  }
  let value: unknown
  try {
    value = JSON.parse(res.text) as unknown
  } catch {
    if (!res.ok) return {}
    throw new MandateError('INVALID_RESPONSE', 'Authority answer is not valid JSON', { detail: { url: safeUrl(url), status: res.status } })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    if (!res.ok) return {}
    throw new MandateError('INVALID_RESPONSE', 'Authority answer is not a JSON object', { detail: { url: safeUrl(url), status: res.status } })
  }
  return value as Record<string, unknown>
}

function outcomeOf(v: Record<string, unknown>): ApprovalOutcome | undefined {
  if (v.status === 'approved' && typeof v.decided_by === 'string') return { status: 'approved', approver: v.decided_by }
  if (v.status === 'denied') {
    return { status: 'denied', ...(typeof v.decided_by === 'string' ? { approver: v.decided_by } : {}), ...(typeof v.decision_reason === 'string' ? { reason: v.decision_reason } : {}) }
  }
  if (v.status === 'expired') return { status: 'expired' }
  return undefined
}

/** Create an AuthorityClient that talks to the Authority over HTTP. */
export function createHttpAuthorityClient(options: HttpAuthorityClientOptions): AuthorityClient & { discover(): Promise<AuthorityMetadata> } {
  if (typeof options.issuer !== 'string' || !options.issuer) throw new MandateError('CONFIG_INVALID', 'issuer is required')
  const insecureAllowHttp = options.insecureAllowHttp === true
  // refused when built, not at the first call: a cleartext Authority is a configuration mistake
  requireSecureUrl(options.issuer, 'the issuer', { insecureAllowHttp })
  const doFetch = options.fetch ?? fetch
  const timeout = options.timeoutMs ?? 10_000
  const maxBytes = options.maxResponseBytes ?? MAX_RESPONSE
  const key = options.key
  /** Every request to the Authority: bounded in time and size, network failures typed. */
  const call = (url: string, init: RequestInit, signal?: AbortSignal) =>
    fetchBounded(url, init, { fetch: doFetch, maxBytes, timeoutMs: timeout, signal, unreachable: 'AUTHORITY_UNREACHABLE', invalid: 'INVALID_RESPONSE', what: 'Authority' })
  let metadata: Promise<AuthorityMetadata> | undefined
  let nonce: string | undefined

  function discover(): Promise<AuthorityMetadata> {
    metadata ??= (async () => {
      return fetchAuthorityMetadata(options.issuer, { fetch: doFetch, timeoutMs: timeout, insecureAllowHttp })
    })().catch((err: unknown) => {
      metadata = undefined
      throw err
    })
    return metadata
  }

  const assertion = () => createClientAssertion(key, { clientId: key.did, audience: options.issuer })

  async function tokenRequest(form: Record<string, string | string[]>): Promise<{ status: 'issued'; token: string; expiresAt: number } | { status: 'approval'; body: Record<string, unknown> }> {
    const m = await discover()
    for (let attempt = 0; ; attempt++) {
      const body = new URLSearchParams()
      for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x)
      body.set('client_id', key.did)
      body.set('client_assertion_type', CLIENT_ASSERTION_TYPE)
      body.set('client_assertion', assertion())
      const dpop = createProof(key, { method: 'POST', url: m.token_endpoint, ...(nonce !== undefined ? { nonce } : {}) })
      const res = await call(m.token_endpoint, {
        method: 'POST', body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', dpop },
      })
      const fresh = res.headers.get('dpop-nonce')
      if (fresh) nonce = fresh
      const json = readJson(res, m.token_endpoint)
      if (res.status === 200) {
        if (typeof json.access_token !== 'string' || typeof json.token_type !== 'string' || json.token_type.toLowerCase() !== 'dpop') {
          throw new MandateError('INVALID_RESPONSE', 'token response is not a DPoP-bound access token', { detail: { url: safeUrl(m.token_endpoint) } })
        }
        let exp: unknown
        try {
          exp = decodeMandateUnverified(json.access_token).payload.exp
        } catch (err) {
          throw new MandateError('INVALID_RESPONSE', 'the Authority answered a token that is not a mandate', { detail: { url: safeUrl(m.token_endpoint) }, cause: err })
        }
        if (typeof exp !== 'number' || !Number.isSafeInteger(exp)) throw new MandateError('INVALID_RESPONSE', 'the Authority answered a token without a valid exp', { detail: { url: safeUrl(m.token_endpoint) } })
        return { status: 'issued', token: json.access_token, expiresAt: exp }
      }
      if (json.error === 'use_dpop_nonce' && fresh && attempt === 0) continue
      // a pending human decision: `authorization_pending` with Mandate's detail in extension members
      // (earlier Authorities answered 403 `approval_required`; both are understood)
      if (typeof json.approval_id === 'string' && (json.mandate_code === 'APPROVAL_REQUIRED' || json.error === 'approval_required') &&
        (json.error === 'authorization_pending' || json.error === 'approval_required')) return { status: 'approval', body: json }
      throw errorFromBody(res.status, json, m.token_endpoint)
    }
  }

  async function jsonRequest(url: string, init: { method?: string; body?: unknown; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    const res = await fetchBounded(url, {
      method: init.method ?? 'GET',
      headers: { authorization: `MandateAssertion ${assertion()}`, accept: 'application/json', ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    }, {
      fetch: doFetch, maxBytes, timeoutMs: init.timeoutMs ?? timeout, signal: init.signal,
      unreachable: 'AUTHORITY_UNREACHABLE', invalid: 'INVALID_RESPONSE', what: 'Authority',
    })
    const json = readJson(res, url)
    if (!res.ok) throw errorFromBody(res.status, json, url)
    return json
  }

  /** Read `event: status` messages until a final one; undefined when the stream ends without one. */
  async function viaEvents(url: string, signal: AbortSignal): Promise<ApprovalOutcome | undefined> {
    let res: Response
    try {
      res = await doFetch(url, { headers: { authorization: `MandateAssertion ${assertion()}`, accept: 'text/event-stream' }, redirect: 'error', signal })
    } catch (err) {
      if (signal.aborted) throw err
      throw new MandateError('AUTHORITY_UNREACHABLE', 'Authority could not be reached', { detail: { url: safeUrl(url) }, cause: err })
    }
    if (res.status !== 200 || !res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      const text = await readBounded(res, url, { maxBytes, timeoutMs: timeout, signal, invalid: 'INVALID_RESPONSE', what: 'Authority' }).catch(() => '')
      if (res.status === 401 || res.status === 403 || res.status === 404) {
        throw errorFromBody(res.status, readJson({ status: res.status, ok: res.ok, headers: res.headers, text }, url), url)
      }
      return undefined
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buf = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return undefined
        buf += value
        if (buf.length > MAX_RESPONSE) return undefined
        let idx: number
        while ((idx = buf.search(/\r?\n\r?\n/)) !== -1) {
          const block = buf.slice(0, idx)
          buf = buf.slice(idx).replace(/^\r?\n\r?\n/, '')
          let event = 'message'
          const data: string[] = []
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith('event:')) event = line.slice(6).trim()
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
          }
          if (event !== 'status' || data.length === 0) continue
          const o = outcomeOf(JSON.parse(data.join('\n')) as Record<string, unknown>)
          if (o) return o
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined)
    }
  }

  return {
    issuer: options.issuer,
    discover,

    async delegate(r: DelegateParams): Promise<IssuedToken> {
      const form: Record<string, string | string[]> = { grant_type: TOKEN_EXCHANGE, subject_token: r.mandate, subject_token_type: ACCESS_TOKEN, requested_actor: r.to }
      if (r.audiences) form.resource = r.audiences
      if (r.scopes) form.scope = r.scopes.join(' ')
      if (r.tools) form.authorization_details = JSON.stringify(r.tools)
      if (r.expiresIn !== undefined) form.expires_in = String(r.expiresIn)
      if (r.maxDepth !== undefined) form.max_depth = String(r.maxDepth)
      if (r.budget) form.budget = JSON.stringify(r.budget)
      if (r.maxUses !== undefined) form.max_uses = String(r.maxUses)
      const res = await tokenRequest(form)
      if (res.status !== 'issued') throw new MandateError('POLICY_DENIED', 'delegation cannot wait for approval')
      return { token: res.token, expiresAt: res.expiresAt }
    },

    async callCredential(r: CallCredentialParams): Promise<CallCredentialResult> {
      const form: Record<string, string | string[]> = {
        grant_type: TOKEN_EXCHANGE, subject_token: r.mandate, subject_token_type: ACCESS_TOKEN, requested_token_type: CALL_CREDENTIAL,
        resource: r.audience, tool: r.tool, tool_arguments: argumentsJson(r.arguments),
      }
      if (r.scopes) form.scope = r.scopes.join(' ')
      if (r.expiresIn !== undefined) form.expires_in = String(r.expiresIn)
      if (r.approvalId !== undefined) form.approval_id = r.approvalId
      const res = await tokenRequest(form)
      if (res.status === 'issued') return res
      const b = res.body
      return {
        status: 'approval_required', approvalId: b.approval_id as string,
        reason: typeof b.error_description === 'string' ? b.error_description : 'approval required',
        // an approval lives minutes, not ages: a nonsensical expires_in from the server is capped at a day
        expiresAt: Math.floor(Date.now() / 1000) + (Number.isSafeInteger(b.expires_in) && (b.expires_in as number) > 0 ? Math.min(b.expires_in as number, 86_400) : 0),
      }
    },

    async audienceCredential(r: AudienceCredentialParams): Promise<IssuedToken> {
      const form: Record<string, string | string[]> = {
        grant_type: TOKEN_EXCHANGE, subject_token: r.mandate, subject_token_type: ACCESS_TOKEN, requested_token_type: AUDIENCE_CREDENTIAL_TOKEN_TYPE,
        resource: r.audience,
      }
      if (r.tools) form.authorization_details = JSON.stringify(r.tools)
      if (r.scopes) form.scope = r.scopes.join(' ')
      if (r.expiresIn !== undefined) form.expires_in = String(r.expiresIn)
      const res = await tokenRequest(form)
      // approvals concern one call; an audience credential never waits for one
      if (res.status !== 'issued') throw new MandateError('POLICY_DENIED', 'an audience credential cannot wait for an approval')
      return { token: res.token, expiresAt: res.expiresAt }
    },

    async waitForApproval(approvalId: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ApprovalOutcome> {
      const m = await discover()
      const base = m.approvals_endpoint ?? `${options.issuer.replace(/\/$/, '')}/approvals`
      const url = `${base}/${encodeURIComponent(approvalId)}`
      const signals = [opts.signal, opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined)
      const signal = signals.length ? AbortSignal.any(signals) : new AbortController().signal
      const timedOut = () => new MandateError('APPROVAL_REQUIRED', 'the approval is still pending (wait timed out)')
      try {
        const viaStream = await viaEvents(`${url}/events`, signal)
        if (viaStream) return viaStream
      } catch (err) {
        if (signal.aborted) throw opts.signal?.aborted ? (opts.signal.reason as unknown) : timedOut()
        if (MandateError.is(err) && err.status < 500 && err.code !== 'INTERNAL') throw err
        // the stream failed: fall back to long polling
      }
      for (;;) {
        if (signal.aborted) throw opts.signal?.aborted ? (opts.signal.reason as unknown) : timedOut()
        try {
          const v = await jsonRequest(`${url}?wait=25`, { signal, timeoutMs: 35_000 })
          const o = outcomeOf(v)
          if (o) return o
        } catch (err) {
          if (signal.aborted) throw opts.signal?.aborted ? (opts.signal.reason as unknown) : timedOut()
          throw err
        }
      }
    },

    async reportCall(report: CallReport): Promise<void> {
      const m = await discover()
      await jsonRequest(`${m.audit_endpoint ?? `${options.issuer.replace(/\/$/, '')}/audit`}/reports`, { method: 'POST', body: report })
    },
  }
}
