import type { JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { createLocalKeySet, createRemoteKeySet, type JsonWebKeySet, type KeyResolver } from '../keys/key_set.js'
import { digestOfSnapshot } from '../mandate/args_digest.js'
import { snapshotArguments, type ArgumentLimits } from '../mandate/args_snapshot.js'
import { actorChain, audienceList, MAX_MANDATE_LENGTH, type ApprovalClaim, type MandateClaims } from '../mandate/claims.js'
import { checkSkew, verifyMandate } from '../mandate/verify.js'
import { assertLifetimeWithin, lifetimeCaps, type LifetimeCaps } from '../mandate/chain_rules.js'
import { assertArgumentsSatisfy, defaultConstraintRegistry, type ConstraintRegistry } from '../narrowing/constraints.js'
import { parseScope } from '../narrowing/scopes.js'
import { assertToolName, toolMatches } from '../narrowing/tools.js'
import { DEFAULT_PROOF_MAX_AGE, verifyProof } from '../proof/proof.js'
import { MemoryReplayStore, type ReplayStore } from '../stores/replay.js'
import type { RevocationSource } from '../stores/revocation.js'
import type { NonceSource } from './nonce.js'

export interface GuardOptions {
  /** Exact `iss` to accept. */
  issuer: string
  /** The issuer's JWKS: a document, a URL (fetched, cached, refreshed on unknown kid), or a resolver. */
  jwks: JsonWebKeySet | string | URL | KeyResolver
  /** This resource's canonical URI; a credential's `aud` must contain it. */
  audience: string
  /** Single-use store for proofs and call credentials. Default: a bounded in-memory store. */
  replay?: ReplayStore
  /** Revocation status for the mandate, its ancestors, its task and its actors. */
  revocation?: RevocationSource
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number
  /** Wall-clock skew allowance in seconds, at most 60 (default 30). */
  skew?: number
  /** Maximum proof age in seconds (default 60). */
  proofMaxAge?: number
  /** Demand server-provided DPoP nonces. */
  nonce?: NonceSource
  /** Require every credential to be bound to one call (reject audience-level mandates). Default false. */
  requireCallBinding?: boolean
  /** Scopes every call must carry, in addition to the mandate's tool grants. */
  requiredScopes?: readonly string[]
  registry?: ConstraintRegistry
  /**
   * Longest lifetime accepted per kind of token, in seconds, whoever signed it (default: call
   * credentials 60, mandates 86 400 — the protocol's and the Authority's defaults). Raise `mandate`
   * only if the Authority is configured with a longer `maxMandateLifetime`.
   */
  maxLifetime?: Partial<LifetimeCaps>
  /** Size and shape limits for tool arguments (default `DEFAULT_ARGUMENT_LIMITS`, as the Authority's). */
  argumentLimits?: Partial<ArgumentLimits>
}

/** What the guard proved about a call. */
export interface VerifiedCall {
  /** The user or system the work is for (`sub`). */
  subject: string
  /** The agent making the call (current actor, holder of the bound key). */
  actor: string
  /** Every actor, first delegate first, current actor last. */
  actorChain: string[]
  task: { id: string; purpose?: string }
  scopes: string[]
  tool: string
  argumentsDigest: string
  /**
   * The arguments exactly as verified: a plain JSON snapshot taken once (see `snapshotArguments`).
   * Run the tool with this value, not the original object. Absent when no tool was named.
   */
  arguments?: JsonValue
  approval?: ApprovalClaim
  /** Expiry of the credential, seconds since the epoch. */
  expiresAt: number
  mandateId: string
  /** Ancestor mandate ids, root first. */
  ancestors: string[]
  audience: string
  /** True when the credential was minted for exactly this call (single use). */
  callBound: boolean
  /** Thumbprint of the key that signed the proof. */
  jkt: string
  claims: MandateClaims
}

export type HeaderBag = Headers | Record<string, string | string[] | undefined>

export interface HttpCallInput {
  method: string
  url: string | URL
  headers: HeaderBag
  /**
   * Node's `req.rawHeaders` (the flat name, value, … list). Node keeps only the first of repeated
   * `Authorization` lines in `req.headers`; with this the guard sees and refuses repeated
   * `Authorization` / `DPoP` lines. Pass it (or `req.headersDistinct` as `headers`) from node:http.
   */
  rawHeaders?: readonly string[]
  /** The tool being called; when absent the request is checked against the mandate only. */
  tool?: string
  arguments?: unknown
}

export interface ToolCallInput {
  mandate: string
  proof: string
  tool: string
  arguments?: unknown
}

export interface Guard {
  readonly audience: string
  readonly issuer: string
  verifyRequest(input: HttpCallInput): Promise<VerifiedCall>
  verifyToolCall(input: ToolCallInput): Promise<VerifiedCall>
}

function header(headers: HeaderBag, name: string): string | undefined {
  let v: string | string[] | null | undefined
  if (typeof (headers as Headers).get === 'function') v = (headers as Headers).get(name)
  else {
    const bag = headers as Record<string, string | string[] | undefined>
    v = bag[name] ?? bag[name.toLowerCase()]
    if (v === undefined) {
      for (const k of Object.keys(bag)) if (k.toLowerCase() === name.toLowerCase()) v = bag[k]
    }
  }
  if (v === null || v === undefined) return undefined
  if (Array.isArray(v)) {
    if (v.length !== 1) throw new MandateError('TOKEN_MALFORMED', `exactly one ${name} header is allowed`)
    v = v[0] as string
  }
  if (v.length > MAX_MANDATE_LENGTH + 16) throw new MandateError('TOKEN_TOO_LARGE', `${name} header is too large`)
  // Headers joins repeated fields with ", "; a JWT never contains either character
  if (v.includes(',')) throw new MandateError('TOKEN_MALFORMED', `exactly one ${name} header is allowed`)
  return v
}

/** Refuse repeated Authorization / DPoP lines in a raw header list (name, value, name, value, …). */
function assertSingleLines(raw: readonly string[]): void {
  if (!Array.isArray(raw)) throw new MandateError('TOKEN_MALFORMED', 'rawHeaders must be the flat name/value list')
  let authorization = 0
  let dpop = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase()
    if (name === 'authorization' && ++authorization > 1) throw new MandateError('TOKEN_MALFORMED', 'exactly one authorization header is allowed')
    if (name === 'dpop' && ++dpop > 1) throw new MandateError('TOKEN_MALFORMED', 'exactly one dpop header is allowed')
  }
}

/** Create the verifier a tool-side service uses for every call. */
export function createGuard(options: GuardOptions): Guard {
  if (typeof options.issuer !== 'string' || !options.issuer) throw new MandateError('CONFIG_INVALID', 'issuer is required')
  if (typeof options.audience !== 'string' || !options.audience) throw new MandateError('CONFIG_INVALID', 'audience is required')
  const skew = checkSkew(options.skew)
  const maxAge = options.proofMaxAge ?? DEFAULT_PROOF_MAX_AGE
  if (!Number.isFinite(maxAge) || maxAge <= 0 || maxAge > 300) throw new MandateError('CONFIG_INVALID', 'proofMaxAge must be 1..300 seconds')
  const keys: KeyResolver =
    typeof options.jwks === 'string' || options.jwks instanceof URL
      ? createRemoteKeySet(options.jwks)
      : 'resolve' in options.jwks
        ? options.jwks
        : createLocalKeySet(options.jwks)
  const replay = options.replay ?? new MemoryReplayStore()
  const clock = options.clock ?? Date.now
  const registry = options.registry ?? defaultConstraintRegistry
  const audience = options.audience
  const argumentLimits = options.argumentLimits
  const caps = lifetimeCaps(options.maxLifetime)
  if (argumentLimits !== undefined) snapshotArguments({}, argumentLimits) // validates the limits now, not at the first call

  async function verify(mandate: string, proof: string | undefined, tool: string | undefined, args: unknown, http: { method: string; url: string | URL } | undefined): Promise<VerifiedCall> {
    // size and shape first: an oversized argument set costs at most about the limit to refuse
    const snapshot = tool !== undefined ? snapshotArguments(args, argumentLimits) : undefined
    const now = Math.floor(clock() / 1000)
    const { claims } = await verifyMandate(mandate, { issuer: options.issuer, keys, audience, now, skew, registry })
    // signed by the trusted key is not enough: re-check what the Authority should have capped
    assertLifetimeWithin(claims, caps)
    if (proof === undefined) throw new MandateError('PROOF_MISSING', 'a proof of possession is required for this credential')
    const toolName = tool ?? claims.call?.tool
    if (toolName !== undefined) assertToolName(toolName)
    const digest = snapshot !== undefined ? digestOfSnapshot(snapshot) : undefined
    const verified = await verifyProof(proof, {
      accessToken: mandate,
      jkt: claims.cnf.jkt,
      ...(http ? { method: http.method.toUpperCase(), url: http.url } : { audience }),
      ...(tool !== undefined ? { tool, argumentsDigest: digest as string } : {}),
      ...(options.nonce ? { nonce: (n: string | undefined) => (options.nonce as NonceSource).check(n) } : {}),
      now,
      maxAge,
      skew,
    })
    const scopes = claims.scope ? parseScope(claims.scope) : []
    for (const s of options.requiredScopes ?? []) {
      if (!scopes.includes(s)) throw new MandateError('INSUFFICIENT_SCOPE', `scope "${s}" is required`, { detail: { scope: s } })
    }
    if (claims.call) {
      if (tool !== undefined && claims.call.tool !== tool) throw new MandateError('TOOL_NOT_ALLOWED', 'credential is bound to another tool')
      if (digest !== undefined && claims.call.args !== digest) throw new MandateError('ARGUMENTS_MISMATCH', 'credential is bound to other arguments')
    } else if (options.requireCallBinding) {
      throw new MandateError('TOOL_NOT_ALLOWED', 'this resource accepts only per-call credentials')
    }
    if (tool !== undefined) checkToolGrant(claims, tool, snapshot as JsonValue)
    if (options.revocation) {
      const revoked = await options.revocation.isRevoked({ ids: [claims.jti, ...claims.delegation.ancestors], txn: claims.txn, actors: actorChain(claims.act) })
      if (revoked) throw new MandateError('REVOKED', 'the credential or one of its ancestors has been revoked')
    }
    // single use last, so a refused call does not burn a credential
    if (!(await replay.use(`proof:${verified.jkt}:${verified.jti}`, verified.iat + maxAge + skew))) {
      throw new MandateError('PROOF_REPLAYED', 'proof has already been used')
    }
    if (claims.call && !(await replay.use(`cred:${claims.jti}`, claims.exp + skew))) {
      throw new MandateError('TOKEN_REPLAYED', 'call credential has already been used')
    }
    const out: VerifiedCall = {
      subject: claims.sub,
      actor: claims.act.sub,
      actorChain: actorChain(claims.act),
      task: claims.purpose !== undefined ? { id: claims.txn, purpose: claims.purpose } : { id: claims.txn },
      scopes,
      tool: toolName ?? '',
      argumentsDigest: digest ?? claims.call?.args ?? '',
      expiresAt: claims.exp,
      mandateId: claims.jti,
      ancestors: [...claims.delegation.ancestors],
      audience,
      callBound: claims.call !== undefined,
      jkt: verified.jkt,
      claims,
    }
    if (snapshot !== undefined) out.arguments = snapshot
    if (claims.approval) out.approval = claims.approval
    return out
  }

  function checkToolGrant(claims: MandateClaims, tool: string, args: JsonValue): void {
    let constraintError: unknown
    for (const g of claims.authorization_details) {
      if (g.locations && !g.locations.includes(audience)) continue
      if (!g.tools.some((p) => toolMatches(p, tool))) continue
      try {
        assertArgumentsSatisfy(g.constraints, args, registry)
        return
      } catch (err) {
        constraintError ??= err
      }
    }
    if (constraintError) throw constraintError
    throw new MandateError('TOOL_NOT_ALLOWED', `tool "${tool}" is not allowed by this credential`, { detail: { tool } })
  }

  async function withNonce<T>(p: Promise<T>): Promise<T> {
    try {
      return await p
    } catch (err) {
      if (MandateError.is(err) && err.code === 'NONCE_REQUIRED' && options.nonce) {
        throw new MandateError('NONCE_REQUIRED', err.message, { detail: { dpop_nonce: options.nonce.current() } })
      }
      if (!MandateError.is(err)) throw new MandateError('INTERNAL', 'verification failed', { cause: err })
      throw err
    }
  }

  return {
    audience,
    issuer: options.issuer,
    verifyRequest(input) {
      return withNonce(
        (async () => {
          if (input.rawHeaders !== undefined) assertSingleLines(input.rawHeaders)
          const authz = header(input.headers, 'authorization')
          if (authz === undefined) throw new MandateError('PROOF_MISSING', 'an Authorization: DPoP credential is required')
          const sp = authz.indexOf(' ')
          const scheme = sp === -1 ? authz : authz.slice(0, sp)
          if (scheme.toLowerCase() !== 'dpop') {
            // a bound credential is never accepted as a bearer token (no downgrade)
            throw new MandateError('PROOF_MISSING', 'credentials must use the DPoP scheme')
          }
          const token = authz.slice(sp + 1)
          const proof = header(input.headers, 'dpop')
          if (!input.method || !input.url) throw new MandateError('INVALID_REQUEST', 'method and url are required')
          return verify(token, proof, input.tool, input.arguments, { method: input.method, url: input.url })
        })(),
      )
    },
    verifyToolCall(input) {
      return withNonce(
        (async () => {
          if (typeof input.tool !== 'string') throw new MandateError('TOOL_NOT_ALLOWED', 'tool name is required')
          return verify(input.mandate, typeof input.proof === 'string' ? input.proof : undefined, input.tool, input.arguments, undefined)
        })(),
      )
    },
  }
}

