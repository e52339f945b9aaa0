import type { JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { createLocalKeySet, createRemoteKeySet, type JsonWebKeySet, type KeyResolver } from '../keys/key_set.js'
import { digestOfSnapshot, tokenHash } from '../mandate/args_digest.js'
import { snapshotArguments, type ArgumentLimits } from '../mandate/args_snapshot.js'
import { actorChain, AUDIENCE_CREDENTIAL, MAX_MANDATE_LENGTH, type ApprovalClaim, type MandateClaims, type ToolGrant } from '../mandate/claims.js'
import { checkSkew, checkTimes, verifyMandateFast, type VerifiedMandate } from '../mandate/verify.js'
import { assertLifetimeWithin, lifetimeCaps, type LifetimeCaps } from '../mandate/chain_rules.js'
import { assertArgumentsSatisfy, defaultConstraintRegistry, type ConstraintRegistry } from '../narrowing/constraints.js'
import { assertToolName, toolMatches } from '../narrowing/tools.js'
import { checkProof, DEFAULT_PROOF_MAX_AGE, type VerifiedProof, type VerifyProofOptions } from '../proof/proof.js'
import { MemoryReplayStore, replayAnswer, type ReplayStore } from '../stores/replay.js'
import { checkGuardOptions } from './guard_options.js'
import type { RevocationSource } from '../stores/revocation.js'
import type { NonceSource } from './nonce.js'
import { MandateCache, type CachedMandate, type MandateCacheOptions } from './mandate_cache.js'
import { verifyOfflineChain, type OfflineHop, type VerifiedOfflineChain } from '../attenuation/verify_chain.js'
import { MAX_CHAIN_LENGTH } from '../attenuation/format.js'
import type { PublicKeyHandle } from '../crypto/backend.js'
import { b64uDecode, utf8Decode } from '../encoding/base64url.js'
import { parseStrictJsonObject } from '../encoding/strict_json.js'

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
  /**
   * Require every credential to be an Authority call credential (refuse audience credentials, plain
   * mandates and offline chains with CALL_CREDENTIAL_REQUIRED). Default false.
   */
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
  /**
   * Cache of verified tokens that are not bound to one call (audience credentials, plain mandates,
   * offline chains), keyed by the SHA-256 of the presented string: a later call with the same token
   * costs one proof verification plus the claim checks, not a second signature verification. Time,
   * issuer key, revocation, proof, tool, arguments and replay are checked on every call. Bounded
   * (default 1024 entries, 16 MiB); `false` turns it off.
   */
  mandateCache?: MandateCacheOptions | false
}

/** How the presented credential authorizes the call. */
export type CallMode =
  /** An Authority-minted call credential (`call` claim): bound to this one call, single use. */
  | 'call'
  /** An audience credential (`credential: "audience"`), reused with a fresh proof per call. */
  | 'audience'
  /** A mandate presented directly (audience-level). */
  | 'mandate'
  /** A mandate followed by holder-signed offline hops (`<root>~<hop>…`). */
  | 'offline'

/** What the guard proved about a call. */
export interface VerifiedCall {
  /** The user or system the work is for (`sub`). */
  subject: string
  /** The agent making the call (current actor, holder of the bound key). */
  actor: string
  /** Every actor, first delegate first, current actor last (frozen: shared with the guard's cache). */
  actorChain: readonly string[]
  task: { id: string; purpose?: string }
  /** Frozen, as `actorChain`. */
  scopes: readonly string[]
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
  /** Ancestor mandate ids, root first (frozen, as `actorChain`). */
  ancestors: readonly string[]
  audience: string
  /** True when the credential was minted by the Authority for exactly this call (single use). */
  callBound: boolean
  /** How the credential authorizes the call. */
  mode: CallMode
  /** The holder-signed hops of an offline chain, root side first (summaries for audit; never tokens). */
  offlineHops?: OfflineHop[]
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
  /** The cache of verified audience-level tokens (undefined when turned off). */
  readonly mandateCache?: MandateCache
}

/**
 * Read the caller's input: a getter or proxy trap on it that throws is the caller's input being
 * unusable (INVALID_REQUEST), not a failure of the guard (INTERNAL). MandateErrors pass through.
 */
function readInput<T>(read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (MandateError.is(err)) throw err
    throw new MandateError('INVALID_REQUEST', 'the request input could not be read', { cause: err })
  }
}

function isAbsoluteUrl(url: string): boolean {
  try {
    new URL(url)
    return true
  } catch {
    return false
  }
}

/** The parts of an HTTP request the guard needs, each checked for its type. */
function requestParts(input: HttpCallInput): { token: string; proof: string | undefined; method: string; url: string | URL; tool: string | undefined; args: unknown } {
  if (typeof input !== 'object' || input === null) throw new MandateError('INVALID_REQUEST', 'verifyRequest needs { headers, method, url }')
  if (input.rawHeaders !== undefined) assertSingleLines(input.rawHeaders)
  const authz = header(input.headers, 'authorization')
  if (authz === undefined) throw new MandateError('PROOF_MISSING', 'an Authorization: DPoP credential is required', NO_CREDENTIALS)
  const sp = authz.indexOf(' ')
  const scheme = sp === -1 ? authz : authz.slice(0, sp)
  if (scheme.toLowerCase() !== 'dpop') {
    // a bound credential is never accepted as a bearer token (no downgrade)
    throw new MandateError('PROOF_MISSING', 'credentials must use the DPoP scheme', NO_CREDENTIALS)
  }
  // RFC 9110 §11.4: the scheme and the credential are separated by one or more spaces
  let start = sp + 1
  while (authz.charCodeAt(start) === 0x20) start++
  const token = authz.slice(start)
  const proof = header(input.headers, 'dpop')
  const { method, url, tool } = input
  if (typeof method !== 'string' || method === '' || url === undefined || url === null || (url as unknown) === '') throw new MandateError('INVALID_REQUEST', 'method and url are required')
  if (!(url instanceof URL) && (typeof url !== 'string' || !isAbsoluteUrl(url))) throw new MandateError('INVALID_REQUEST', 'url must be an absolute URL')
  if (tool !== undefined && typeof tool !== 'string') throw new MandateError('TOOL_NOT_ALLOWED', 'tool must be a string')
  return { token, proof, method, url, tool, args: input.arguments }
}

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) throw new MandateError('INVALID_REQUEST', 'headers must be a Headers object or a plain object')
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
  if (typeof v !== 'string') throw new MandateError('TOKEN_MALFORMED', `the ${name} header must be a string`)
  if (v.length > MAX_CHAIN_LENGTH + 16) throw new MandateError('TOKEN_TOO_LARGE', `${name} header is too large`)
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

/** Scopes of verified claims: parseMandateClaims has validated the string strictly, so a split is exact. */
function scopeList(scope: string | undefined): string[] {
  return scope ? scope.split(' ') : []
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The cached entry while its kid still resolves to the key that verified it; evicted (undefined) otherwise. */
function stillSignedByTrustedKey(cache: MandateCache, hit: CachedMandate, key: PublicKeyHandle): CachedMandate | undefined {
  if (key === hit.key || sameKey(key.raw, hit.key.raw)) return hit
  cache.delete(hit.token)
  return undefined
}

/** Cached claims are shared by every later call: frozen, so no caller can change what the next one sees. */
function deepFreeze(v: unknown): void {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return
  Object.freeze(v)
  for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k])
}

/** A grant names the tool (a loop: no closure per grant per call). */
function grantCoversTool(g: ToolGrant, tool: string): boolean {
  const tools = g.tools
  for (let i = 0; i < tools.length; i++) if (toolMatches(tools[i] as string, tool)) return true
  return false
}

/** `aud` contains this audience (without building a list for a single-string `aud`). */
function audienceIncludes(aud: string | string[], audience: string): boolean {
  return typeof aud === 'string' ? aud === audience : aud.includes(audience)
}

function copyHop(h: OfflineHop): OfflineHop {
  return { ...h, tools: [...h.tools] }
}

/**
 * Marks a refusal of a request that carried no credential this guard understands (no Authorization
 * header, or another scheme): RFC 6750 §3.1 says its challenge carries no error code.
 */
const NO_CREDENTIALS = { detail: { credentials: 'absent' } } as const

/** What one call carries from stage to stage of {@link createGuard}'s verification (fixed shape). */
class CallState {
  cached = false
  v: CachedMandate | undefined = undefined
  verified: VerifiedProof | undefined = undefined
  toolName: string | undefined = undefined
  digest: string | undefined = undefined
  constructor(
    readonly token: string,
    readonly proof: string | undefined,
    readonly tool: string | undefined,
    readonly snapshot: JsonValue | undefined,
    readonly now: number,
    readonly http: { method: string; url: string | URL } | undefined,
  ) {}
}

/** Create the verifier a tool-side service uses for every call. */
export function createGuard(options: GuardOptions): Guard {
  checkGuardOptions(options)
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
  if (options.clock !== undefined && typeof options.clock !== 'function') throw new MandateError('CONFIG_INVALID', 'clock must be a function returning milliseconds')
  const clock = options.clock ?? Date.now
  // the default store keeps time by the guard's clock: expiries are computed on it, so a store on
  // another clock (a guard clock behind Date.now) would forget every entry as it writes it
  const replay = options.replay ?? new MemoryReplayStore(options.clock ? { now: () => Math.floor(clock() / 1000) } : {})
  const registry = options.registry ?? defaultConstraintRegistry
  const audience = options.audience
  const argumentLimits = options.argumentLimits
  const caps = lifetimeCaps(options.maxLifetime)
  if (argumentLimits !== undefined) snapshotArguments({}, argumentLimits) // validates the limits now, not at the first call

  const cache = options.mandateCache === false ? undefined : new MandateCache(options.mandateCache ?? {})
  const nonceCheck = options.nonce ? (n: string | undefined) => (options.nonce as NonceSource).check(n) : undefined

  /** Full verification of a token not seen before (or whose cached result no longer holds). */
  function verifyFresh(token: string, hash: string, now: number): CachedMandate | Promise<CachedMandate> {
    if (token.includes('~')) return verifyOfflineFresh(token, hash, now)
    const m = verifyMandateFast(token, { issuer: options.issuer, keys, audience, now, skew, registry })
    // a synchronous key resolver costs no microtask
    return m instanceof Promise ? m.then((r) => mandateEntry(token, hash, r)) : mandateEntry(token, hash, m)
  }

  async function verifyOfflineFresh(token: string, hash: string, now: number): Promise<CachedMandate> {
    const chain: VerifiedOfflineChain & { kid?: string; key?: PublicKeyHandle } = await verifyOfflineChain(token, { issuer: options.issuer, keys, audience, now, skew, registry, caps })
    // the root's key, for re-checking on cache hits that it is still trusted (already verified: the header is sound)
    const kid = chain.kid ?? (parseStrictJsonObject(utf8Decode(b64uDecode(token.slice(0, token.indexOf('.'))))).kid as string)
    let key = chain.key
    if (key === undefined) {
      const resolved = keys.resolve(kid)
      key = resolved instanceof Promise ? await resolved : resolved
    }
    const ids = new Set<string>([chain.root.jti, ...chain.root.delegation.ancestors])
    for (const h of chain.hops) ids.add(h.jti)
    ids.add(chain.claims.jti)
    for (const a of chain.claims.delegation.ancestors) ids.add(a)
    let exp = chain.root.exp
    let nbf = chain.root.nbf
    let iat = chain.root.iat
    for (const h of chain.hops) {
      exp = Math.min(exp, h.exp)
      iat = Math.max(iat, h.iat)
    }
    exp = Math.min(exp, chain.claims.exp)
    nbf = Math.max(nbf, chain.claims.nbf)
    iat = Math.max(iat, chain.claims.iat)
    const actors = new Set([...actorChain(chain.root.act), ...actorChain(chain.claims.act)])
    const chainPerCall: string[] = []
    for (const link of chain.links) {
      for (const g of link.authorization_details) if (g.per_call === true && grantApplies(g)) chainPerCall.push(...g.tools)
    }
    return {
      token, hash, claims: chain.claims, kid, key, holderJkt: chain.holderJkt, revocationIds: [...ids], actors: [...actors],
      actorChain: actorChain(chain.claims.act), scopes: scopeList(chain.claims.scope),
      exp, nbf, iat, mode: 'offline', offlineHops: chain.hops, ...(chainPerCall.length > 0 ? { chainPerCall } : {}),
    }
  }

  function mandateEntry(token: string, hash: string, m: VerifiedMandate): CachedMandate {
    const { claims, kid, key } = m
    const actors = actorChain(claims.act)
    return {
      token, hash, claims, kid, key, holderJkt: claims.cnf.jkt, revocationIds: [claims.jti, ...claims.delegation.ancestors], actors,
      actorChain: actors, scopes: scopeList(claims.scope),
      exp: claims.exp, nbf: claims.nbf, iat: claims.iat, mode: claims.call ? 'call' : claims.credential === AUDIENCE_CREDENTIAL ? 'audience' : 'mandate',
    }
  }

  /**
   * A cached result, re-checked for what can change since it was cached: time (it never outlives
   * the token) and the issuer key (rotated out of the JWKS → evicted and refused; a different key
   * under the same kid → verified again from scratch). Undefined means "verify afresh".
   */
  function revalidate(hit: CachedMandate, now: number): CachedMandate | undefined | Promise<CachedMandate | undefined> {
    const c = cache as MandateCache
    try {
      checkTimes(hit, now, skew)
      const resolved = keys.resolve(hit.kid)
      // a synchronous resolver (local set, warm remote set) costs no microtask on the hot path
      if (resolved instanceof Promise) {
        return resolved.then(
          (key) => stillSignedByTrustedKey(c, hit, key),
          (err: unknown) => {
            c.delete(hit.token)
            throw err
          },
        )
      }
      return stillSignedByTrustedKey(c, hit, resolved)
    } catch (err) {
      c.delete(hit.token)
      throw err
    }
  }

  /**
   * One call's verification, run without a microtask while every answer is synchronous (a local or
   * warm key set, the in-memory replay store, a synchronous revocation source): each stage returns
   * its result, or a promise when a store answered with one, and the next stage continues from
   * either. The checks and their order are exactly those of a straight async function.
   */
  function verify(token: unknown, proof: string | undefined, tool: string | undefined, args: unknown, http: { method: string; url: string | URL } | undefined): VerifiedCall | Promise<VerifiedCall> {
    // size and shape first: an oversized argument set costs at most about the limit to refuse
    const snapshot = tool !== undefined ? snapshotArguments(args, argumentLimits) : undefined
    const ms = clock()
    // a clock answering NaN (or not a number) would switch every time check off: refuse instead
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new MandateError('CONFIG_INVALID', 'the guard clock must return a finite number of milliseconds')
    const now = Math.floor(ms / 1000)
    if (typeof token !== 'string') throw new MandateError('TOKEN_MALFORMED', 'token must be a string')
    const limit = token.includes('~') ? MAX_CHAIN_LENGTH : MAX_MANDATE_LENGTH
    if (token.length > limit) throw new MandateError('TOKEN_TOO_LARGE', 'token exceeds the size limit', { detail: { limit } })
    const s = new CallState(token, proof, tool, snapshot, now, http)
    // a hit knows the token's hash (the proof's `ath`); a miss computes it once
    const hit = cache?.get(token)
    if (hit !== undefined) {
      const r = revalidate(hit, now)
      if (r instanceof Promise) return r.then((cached) => withCredential(s, cached))
      return withCredential(s, r)
    }
    return withCredential(s, undefined)
  }

  function withCredential(s: CallState, cached: CachedMandate | undefined): VerifiedCall | Promise<VerifiedCall> {
    if (cached !== undefined) {
      s.cached = true
      return checkCall(s, cached)
    }
    const v = verifyFresh(s.token, tokenHash(s.token), s.now)
    if (v instanceof Promise) return v.then((fresh) => checkCall(s, fresh))
    return checkCall(s, v)
  }

  /** Every check of the call against the verified credential, up to revocation. */
  function checkCall(s: CallState, v: CachedMandate): VerifiedCall | Promise<VerifiedCall> {
    s.v = v
    const claims = v.claims
    const tool = s.tool
    // signed by the trusted key is not enough: re-check what the Authority should have capped
    assertLifetimeWithin(claims, caps)
    if (!audienceIncludes(claims.aud, audience)) throw new MandateError('AUDIENCE_MISMATCH', 'mandate is not for this audience')
    if (s.proof === undefined) throw new MandateError('PROOF_MISSING', 'a proof of possession is required for this credential')
    const toolName = tool ?? claims.call?.tool
    if (toolName !== undefined) assertToolName(toolName)
    s.toolName = toolName
    const digest = s.snapshot !== undefined ? digestOfSnapshot(s.snapshot) : undefined
    s.digest = digest
    // the proof's own single use is recorded last, below, after every other check
    // one object of fixed shape (spreading optional parts costs a clone per call on the hot path)
    const proofOptions: VerifyProofOptions = { accessTokenHash: v.hash, jkt: v.holderJkt, now: s.now, maxAge, skew, toolBindingOptional: false }
    if (s.http) {
      proofOptions.method = s.http.method.toUpperCase()
      proofOptions.url = s.http.url
    } else proofOptions.audience = audience
    if (tool !== undefined) {
      proofOptions.tool = tool
      proofOptions.argumentsDigest = digest as string
      // an Authority call credential binds the tool and argument digest itself (checked below) and
      // is single use, and `ath` binds the proof to it: over HTTP a plain RFC 9449 proof (standard
      // DPoP clients) is then enough. Reusable credentials still need the proof's own tool binding.
      if (s.http && v.mode === 'call') proofOptions.toolBindingOptional = true
    }
    if (nonceCheck) proofOptions.nonce = nonceCheck
    s.verified = checkProof(s.proof, proofOptions)
    const scopes = v.scopes
    const requiredScopes = options.requiredScopes
    if (requiredScopes !== undefined) {
      for (const sc of requiredScopes) {
        if (!scopes.includes(sc)) throw new MandateError('INSUFFICIENT_SCOPE', `scope "${sc}" is required`, { detail: { scope: sc } })
      }
    }
    const callBound = v.mode === 'call'
    if (claims.call) {
      // a holder-signed call hop binds a tool and an argument digest that no Authority checked
      // against the grant's constraints: only the real tool and arguments can be checked here
      if (v.mode === 'offline' && (tool === undefined || s.snapshot === undefined)) {
        throw new MandateError('ATTENUATION_INVALID', 'an offline call hop is accepted only where the guard sees the tool and its arguments (verifyToolCall, or verifyRequest with tool and arguments)', { detail: { hop: 0, rule: 'call-hop-unchecked' } })
      }
      // an Authority call credential, or an offline chain ending in a holder-signed call hop
      if (tool !== undefined && claims.call.tool !== tool) throw new MandateError('TOOL_NOT_ALLOWED', 'credential is bound to another tool')
      if (digest !== undefined && claims.call.args !== digest) throw new MandateError('ARGUMENTS_MISMATCH', 'credential is bound to other arguments')
    }
    if (!callBound && options.requireCallBinding) {
      // the same refusal as a per_call grant: a client in cached mode falls back to a per-call exchange on it
      throw new MandateError('CALL_CREDENTIAL_REQUIRED', 'this resource accepts only per-call credentials')
    }
    if (tool !== undefined) {
      checkToolGrant(claims, tool, s.snapshot as JsonValue, callBound)
      // granted by the last link, but marked per_call at an earlier one (a tool not granted at all
      // stays TOOL_NOT_ALLOWED above: asking the Authority for a call credential would not help)
      if (v.chainPerCall !== undefined && v.chainPerCall.some((p) => toolMatches(p, tool))) {
        throw new MandateError('CALL_CREDENTIAL_REQUIRED', `tool "${tool}" may only be called with a per-call credential from the Authority (a link of this offline chain marks it per_call)`, { detail: { tool } })
      }
    } else if (!callBound) assertNotPerCallOnly(claims)
    if (options.revocation) {
      const answer = options.revocation.isRevoked({ ids: v.revocationIds, txn: claims.txn, actors: v.actors })
      if (answer instanceof Promise) return answer.then((revoked) => afterRevocation(s, revoked))
      return afterRevocation(s, answer)
    }
    return afterRevocation(s, false)
  }

  function afterRevocation(s: CallState, revoked: boolean): VerifiedCall | Promise<VerifiedCall> {
    if (revoked) {
      cache?.delete(s.token)
      throw new MandateError('REVOKED', 'the credential or one of its ancestors has been revoked')
    }
    // single use last, so a refused call does not burn a credential
    // (a store that answers synchronously, like the in-memory one, costs no microtask)
    const verified = s.verified as VerifiedProof
    const p = replay.use(`proof:${verified.jkt}:${verified.jti}`, verified.iat + maxAge + skew)
    if (p instanceof Promise) return p.then((fresh) => afterProofUse(s, fresh))
    return afterProofUse(s, p)
  }

  function afterProofUse(s: CallState, fresh: unknown): VerifiedCall | Promise<VerifiedCall> {
    if (!replayAnswer(fresh)) throw new MandateError('PROOF_REPLAYED', 'proof has already been used')
    const claims = (s.v as CachedMandate).claims
    if (claims.call) {
      const c = replay.use(`cred:${claims.jti}`, claims.exp + skew)
      if (c instanceof Promise) return c.then((unused) => finishCall(s, unused))
      return finishCall(s, c)
    }
    return finishCall(s, true)
  }

  function finishCall(s: CallState, unused: unknown): VerifiedCall {
    const v = s.v as CachedMandate
    const claims = v.claims
    if (!replayAnswer(unused)) throw new MandateError('TOKEN_REPLAYED', 'call credential has already been used')
    // reusable tokens only: a call-bound one (Authority call credential or offline call hop) is single use
    if (cache && !s.cached && !claims.call) {
      // shared by every later call that hits: frozen, so no caller can change the next call's answer
      deepFreeze(claims)
      Object.freeze(v.actorChain)
      Object.freeze(v.scopes)
      Object.freeze(v.actors)
      Object.freeze(v.revocationIds)
      cache.set(v)
    }
    const digest = s.digest
    // the arrays go out as they are, no copy per call, and frozen whether or not the entry is
    // cached: code that writes to them fails the same way in a test and in production
    if (s.cached !== true) {
      Object.freeze(v.actorChain)
      Object.freeze(v.scopes)
      Object.freeze(claims.delegation.ancestors)
    }
    const out: VerifiedCall = {
      subject: claims.sub,
      actor: claims.act.sub,
      actorChain: v.actorChain,
      task: claims.purpose !== undefined ? { id: claims.txn, purpose: claims.purpose } : { id: claims.txn },
      scopes: v.scopes,
      tool: s.toolName ?? '',
      argumentsDigest: digest ?? claims.call?.args ?? '',
      expiresAt: Math.min(claims.exp, v.exp),
      mandateId: claims.jti,
      ancestors: claims.delegation.ancestors,
      audience,
      callBound: v.mode === 'call',
      mode: v.mode,
      jkt: (s.verified as VerifiedProof).jkt,
      claims,
    }
    if (v.offlineHops) out.offlineHops = v.offlineHops.map(copyHop)
    if (s.snapshot !== undefined) out.arguments = s.snapshot
    if (claims.approval) out.approval = claims.approval
    return out
  }

  function grantApplies(g: ToolGrant): boolean {
    return !g.locations || g.locations.includes(audience)
  }

  /**
   * The tool must be granted at this audience with constraints the arguments satisfy. A credential
   * not minted for this one call cannot use a tool that any applicable grant marks `per_call`
   * (fail closed: one per_call grant covering the tool is enough to demand a call credential).
   */
  function checkToolGrant(claims: MandateClaims, tool: string, args: JsonValue, callBound: boolean): void {
    let constraintError: unknown
    let authorized = false
    for (const g of claims.authorization_details) {
      if (!grantApplies(g)) continue
      if (!grantCoversTool(g, tool)) continue
      if (!callBound && g.per_call === true) {
        throw new MandateError('CALL_CREDENTIAL_REQUIRED', `tool "${tool}" may only be called with a per-call credential from the Authority`, { detail: { tool } })
      }
      if (authorized) continue
      try {
        assertArgumentsSatisfy(g.constraints, args, registry)
        authorized = true
      } catch (err) {
        constraintError ??= err
      }
    }
    if (authorized) return
    if (constraintError) throw constraintError
    throw new MandateError('TOOL_NOT_ALLOWED', `tool "${tool}" is not allowed by this credential`, { detail: { tool } })
  }

  /** A request that names no tool: refused when every grant for this audience demands call credentials. */
  function assertNotPerCallOnly(claims: MandateClaims): void {
    const applicable = claims.authorization_details.filter(grantApplies)
    if (applicable.length > 0 && applicable.every((g) => g.per_call === true)) {
      throw new MandateError('CALL_CREDENTIAL_REQUIRED', 'this credential\u2019s tools may only be called with per-call credentials from the Authority')
    }
  }

  /** The guard's error contract: a fresh nonce with NONCE_REQUIRED, anything unexpected as INTERNAL. */
  function guardError(err: unknown): unknown {
    if (MandateError.is(err) && err.code === 'NONCE_REQUIRED' && options.nonce) {
      return new MandateError('NONCE_REQUIRED', err.message, { detail: { dpop_nonce: options.nonce.current() } })
    }
    if (!MandateError.is(err)) return new MandateError('INTERNAL', 'verification failed', { cause: err })
    return err
  }

  return {
    audience,
    issuer: options.issuer,
    ...(cache ? { mandateCache: cache } : {}),
    // one async frame per call: verify itself answers synchronously while every store does
    async verifyRequest(input) {
      try {
        const req = readInput(() => requestParts(input))
        const r = verify(req.token, req.proof, req.tool, req.args, { method: req.method, url: req.url })
        return r instanceof Promise ? await r : r
      } catch (err) {
        throw guardError(err)
      }
    },
    async verifyToolCall(input) {
      try {
        const c = readInput(() => {
          if (typeof input !== 'object' || input === null) throw new MandateError('INVALID_REQUEST', 'verifyToolCall needs { mandate, proof, tool, arguments }')
          return { tool: input.tool, mandate: input.mandate, proof: input.proof, args: input.arguments }
        })
        if (typeof c.tool !== 'string') throw new MandateError('TOOL_NOT_ALLOWED', 'tool name is required')
        const r = verify(c.mandate, typeof c.proof === 'string' ? c.proof : undefined, c.tool, c.args, undefined)
        return r instanceof Promise ? await r : r
      } catch (err) {
        throw guardError(err)
      }
    },
  }
}

