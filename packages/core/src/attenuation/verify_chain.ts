/**
 * Verify an offline attenuation chain end to end, without the Authority: the root by the
 * Authority's key exactly as any mandate, then each hop by the key the link before it is bound to,
 * each hop a narrowing of the link before it under the Authority's own narrowing code, and the
 * wall clock once, at the end, on the last link (never between links).
 */
import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import type { KeyResolver } from '../keys/key_set.js'
import { tokenHash } from '../mandate/args_digest.js'
import { assertLifetimeWithin, lifetimeCaps, type LifetimeCaps } from '../mandate/chain_rules.js'
import { audienceList, parseMandateClaims, type MandateClaims } from '../mandate/claims.js'
import { checkedNow } from '../mandate/clock.js'
import { checkSkew, checkTimes, resolveTrustedKey } from '../mandate/verify.js'
import { defaultConstraintRegistry, type ConstraintRegistry } from '../narrowing/constraints.js'
import { narrowMandate } from '../narrowing/narrow.js'
import { capsKey, LinkCache, type LinkEntry, type OfflineChainCache } from './chain_cache.js'
import { chainError, HOP_JTI_LENGTH, isHopJti, parseHopLink, parseRootLink, splitChain, type ChainLink, type HopJwk } from './format.js'

export { MAX_CHAIN_LENGTH } from './format.js'
import { importHopKey, type HopKey } from './hop_key.js'
import { hopKind, requestFromHop, type HopKind } from './hop_request.js'
import { jsonEqual } from './json_equal.js'

export interface VerifyOfflineChainOptions {
  /** Exact `iss` of the root (and so of every hop). */
  issuer: string
  /** The Authority's trusted keys (the root's `kid` is resolved here only). */
  keys: KeyResolver
  /** When set, the last link's `aud` must contain it. */
  audience?: string
  /** Current time in seconds. */
  now?: number
  /** Wall-clock skew allowance in seconds (0..60), applied to the last link only. */
  skew?: number
  registry?: ConstraintRegistry
  /** Lifetime caps per kind, applied to every hop (and used as the narrowing caps). */
  caps?: Partial<LifetimeCaps>
  /** Verified links to reuse (createOfflineChainCache; one per guard): each link is verified once. */
  cache?: OfflineChainCache
}

type HopLink = ChainLink & { jwk: HopJwk }

/** A summary of one offline hop for audit reports and display; never the token. */
export interface OfflineHop {
  jti: string
  /** The hop's holder (`client_id`, a did:key): for a delegation hop the new agent. */
  holder: string
  /** `jti` of the link it narrows. */
  parent: string
  depth: number
  kind: HopKind
  iat: number
  exp: number
  /** The tool names and patterns the hop grants. */
  tools: string[]
}

export interface VerifiedOfflineChain {
  /** The last link's claims: what authorizes the call. */
  claims: MandateClaims
  /** The Authority-signed root's claims. */
  root: MandateClaims
  /** One summary per hop, in order. */
  hops: OfflineHop[]
  /** Every link's claims, root first (the last is `claims`). */
  links: MandateClaims[]
  /** The key the last link is bound to: the proof must be signed by it. */
  holderJkt: string
  /** The root's `kid` and the trusted key it resolved to (a cache of verified chains drops them on rotation). */
  kid: string
  key: PublicKeyHandle
}

/**
 * Verify a presented chain `<root>~<hop1>~…~<hopN>`.
 *
 * Order: the whole chain is split, size-capped and strictly parsed, and every hop's key and link
 * (thumbprint = previous `cnf.jkt`, did:key = previous `client_id`, `parent` = previous `jti`, hop
 * count within the root's `offline.max_hops`) checked, before any signature work; then the root's
 * signature by the trusted key set, then per hop one signature verification, `parent_hash`, the
 * lifetime cap, and equality with narrowMandate(previous link, the request the hop claims,
 * { now: hop.iat, jti: hop.jti, offlineHop: true }); finally the wall clock on the last link.
 *
 * Errors: a root that is not a valid mandate keeps the mandate's own code (TYP_MISMATCH,
 * SIGNATURE_INVALID, KEY_NOT_FOUND, ISSUER_MISMATCH, …, as verifyMandate); the last link's time
 * and audience give TOKEN_EXPIRED / TOKEN_NOT_YET_VALID / AUDIENCE_MISMATCH; everything about the
 * chain and its hops is ATTENUATION_INVALID with `detail: { hop, rule, cause_code? }` (`hop` is
 * 1-based, 0 for the chain as a whole; `cause_code` is the inner code, e.g. NARROWING_TOOL).
 * Revocation, the proof, the tool grant, per_call and single use are the guard's.
 */
export async function verifyOfflineChain(presented: string, options: VerifyOfflineChainOptions): Promise<VerifiedOfflineChain> {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'verifyOfflineChain needs { issuer, keys, … }')
  const skew = checkSkew(options.skew)
  const caps = lifetimeCaps(options.caps)
  const registry = options.registry ?? defaultConstraintRegistry
  const now = checkedNow(options.now)
  if (options.cache !== undefined && !(options.cache instanceof LinkCache)) throw new MandateError('CONFIG_INVALID', 'cache must come from createOfflineChainCache')
  const cache = options.cache
  const ck = cache ? capsKey(caps) : ''
  // entries are usable while the link is: expired links are dropped (and refused below anyway)
  const valid = now - skew

  // 1. everything that needs no signature: syntax, sizes, claim shapes, key links
  const parts = splitChain(presented)
  const rootToken = parts[0] as string
  const rootHit = cache?.get(rootToken, registry, ck, valid)
  let rootLink: ChainLink | undefined
  let root: MandateClaims
  if (rootHit) {
    root = rootHit.claims
  } else {
    rootLink = parseRootLink(rootToken)
    root = parseMandateClaims(rootLink.jws.payload, registry)
  }
  if (root.iss !== options.issuer) throw new MandateError('ISSUER_MISMATCH', 'mandate was not issued by the expected issuer')
  if (!root.offline) throw chainError(0, 'offline-not-allowed', 'the root mandate does not allow offline attenuation')
  const hopCount = parts.length - 1
  if (hopCount > root.offline.max_hops) {
    throw new MandateError('ATTENUATION_INVALID', 'the chain has more hops than the root allows', { detail: { hop: root.offline.max_hops + 1, rule: 'hop-limit', limit: root.offline.max_hops } })
  }
  const links: MandateClaims[] = [root]
  // per hop: a cache entry, or the parsed link and its imported key
  const fresh: ({ link: HopLink; key: HopKey } | LinkEntry)[] = []
  for (let i = 0; i < hopCount; i++) {
    const n = i + 1
    const token = parts[n] as string
    const prev = links[i] as MandateClaims
    if (prev.call || prev.credential !== undefined) throw chainError(n, 'terminal', 'nothing can follow a call or audience credential')
    const hit = cache?.get(token, registry, ck, valid)
    if (hit) {
      // verified before against the parent its parent_hash names; that it is this parent is checked below
      if (hit.claims.delegation.parent !== prev.jti) throw chainError(n, 'parent', 'a hop does not name the previous link as its parent')
      links.push(hit.claims)
      fresh.push(hit)
      continue
    }
    const link = parseHopLink(token, n)
    let key: HopKey | undefined
    let claims: MandateClaims
    try {
      // prev is parsed claims (now or when cached): its client_id is a point-checked did:key
      key = importHopKey(link.jwk, prev.cnf.jkt, prev.client_id)
    } catch (err) {
      throw chainError(n, 'hop-key', 'a hop key is not a valid Ed25519 public key', err)
    }
    if (key === undefined) throw chainError(n, 'signer-bound', 'a hop is not signed by the key the previous link is bound to')
    if (key.did !== prev.client_id) throw chainError(n, 'signer-holder', 'a hop is not signed by the previous link\'s holder')
    try {
      claims = parseMandateClaims(link.jws.payload, registry)
    } catch (err) {
      throw chainError(n, 'hop-claims', 'a hop\'s claims are invalid', err)
    }
    if (claims.delegation.parent !== prev.jti) throw chainError(n, 'parent', 'a hop does not name the previous link as its parent')
    if (claims.iss !== root.iss) throw chainError(n, 'issuer', 'a hop changes the issuer')
    // a holder picks its hop's jti: never one the Authority could have minted (another length), nor
    // one of the chain's own (revocation and single use key on it)
    if (!isHopJti(claims.jti)) throw chainError(n, 'jti-form', `a hop jti is exactly ${HOP_JTI_LENGTH} base64url characters`)
    if (claims.delegation.ancestors.indexOf(claims.jti) !== -1) throw chainError(n, 'jti-reuse', 'a hop reuses the jti of a link before it')
    links.push(claims)
    fresh.push({ link, key })
  }

  // 2. the root, by the Authority's key (as verifyMandate, on the already parsed parts); a cached
  //    root only while its kid still resolves to the very key that verified it
  const kid = rootHit ? (rootHit.kid as string) : ((rootLink as ChainLink).jws.header.kid as string)
  const rootKey = await resolveTrustedKey(options.keys, kid)
  if (!rootHit || rootHit.key !== rootKey) {
    const jws = (rootLink ?? parseRootLink(rootToken)).jws
    if (!backend.verify(rootKey, jws.signingInput, jws.signature)) throw new MandateError('SIGNATURE_INVALID', 'mandate signature is invalid')
  }
  // signed by the trusted key is not enough: re-check what the Authority should have capped
  assertLifetimeWithin(root, caps)
  let prevHash = rootHit?.hash ?? tokenHash(rootToken)
  if (cache && (!rootHit || rootHit.key !== rootKey)) cache.set(rootToken, { claims: root, hash: prevHash, registry, caps: ck, kid, key: rootKey })

  // 3. each hop: one signature, then the narrowing re-derived by the Authority's code
  const hops: OfflineHop[] = []
  for (let i = 0; i < hopCount; i++) {
    const n = i + 1
    const prev = links[i] as MandateClaims
    const claims = links[n] as MandateClaims
    const f = fresh[i] as (typeof fresh)[number]
    if ('hash' in f) {
      if (claims.delegation.parent_hash !== prevHash) throw chainError(n, 'parent-hash', 'a hop does not hash the previous link')
      prevHash = f.hash
    } else {
      verifyHop(n, f.link, f.key, prev, claims, parts[i] as string, prevHash, root.iss, caps, registry)
      // the next hop's parent_hash, and this link's cache entry (not for a call hop: it is single use)
      const cacheIt = cache !== undefined && claims.call === undefined
      if (cacheIt || n < hopCount) prevHash = tokenHash(f.link.token)
      if (cacheIt) cache.set(f.link.token, { claims, hash: prevHash, registry, caps: ck })
    }
    const tools: string[] = []
    for (const g of claims.authorization_details) for (const t of g.tools) tools.push(t)
    hops.push({
      jti: claims.jti, holder: claims.client_id, parent: prev.jti, depth: claims.delegation.depth, kind: hopKind(claims),
      iat: claims.iat, exp: claims.exp, tools,
    })
  }

  // 4. the wall clock and the audience, once, on the last link (every earlier link nests around it)
  const last = links[links.length - 1] as MandateClaims
  if (options.audience !== undefined && !audienceList(last.aud).includes(options.audience)) {
    throw new MandateError('AUDIENCE_MISMATCH', 'mandate is not for this audience')
  }
  checkTimes(last, now, skew)
  return { claims: last, root, hops, links, holderJkt: last.cnf.jkt, kid, key: rootKey }
}

/** One hop against its (verified) parent: signature, parent hash, times, cap, and the narrowing itself. */
function verifyHop(
  n: number, link: HopLink, key: HopKey, prev: MandateClaims, claims: MandateClaims, prevToken: string, parentHash: string,
  issuer: string, caps: LifetimeCaps, registry: ConstraintRegistry,
): void {
  if (!backend.verify(key.handle, link.jws.signingInput, link.jws.signature)) throw chainError(n, 'signature', 'a hop signature is invalid')
  if (claims.delegation.parent_hash !== parentHash) throw chainError(n, 'parent-hash', 'a hop does not hash the previous link')
  // hop times nest: issued while the previous link was valid; skew only against the wall clock
  if (claims.iat < prev.iat || claims.iat >= prev.exp) throw chainError(n, 'iat', 'a hop was not issued while the previous link was valid')
  try {
    assertLifetimeWithin(claims, caps)
  } catch (err) {
    throw chainError(n, 'lifetime-cap', 'a hop lives longer than its kind allows', err)
  }
  let expected: MandateClaims
  try {
    expected = narrowMandate(prev, requestFromHop(claims), {
      issuer, now: claims.iat, jti: claims.jti, parentToken: prevToken, parentHash,
      caller: { id: prev.client_id, jkt: prev.cnf.jkt }, offlineHop: true,
      maxMandateLifetime: caps.mandate, maxCallLifetime: caps.call, maxAudienceLifetime: caps.audience, registry,
    })
  } catch (err) {
    throw chainError(n, 'narrowing', 'a hop is not a narrowing of the previous link', err)
  }
  // the signed payload itself, not the parsed claims: nothing the narrowing would not produce
  if (!jsonEqual(link.jws.payload, expected)) throw chainError(n, 'narrowing-mismatch', 'a hop differs from the narrowing it claims')
}
