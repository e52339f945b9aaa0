/**
 * Consistency rules of a delegation chain that anyone holding a token can check offline. The
 * Authority applies them when it narrows and signs (signMandate re-parses every claim set it signs)
 * and every verifier applies them when it parses claims, so a token signed by the trusted key but
 * internally inconsistent — a hand-minted or buggy one — is refused at the guard too.
 */
import { MandateError } from '../errors.js'
import { publicJwkFromDidKey } from '../identity/did_key.js'
import { jwkThumbprint } from '../identity/thumbprint.js'
import { AUDIENCE_CREDENTIAL, type ActorClaim, type MandateClaims } from './claims.js'

function inconsistent(message: string, rule: string): never {
  throw new MandateError('CHAIN_INCONSISTENT', message, { detail: { rule } })
}

// did → thumbprint: decoding a did:key validates the point, which is worth doing once per agent
const thumbprints = new Map<string, string>()
const THUMBPRINTS_MAX = 1024

/** The RFC 7638 thumbprint of the key a did:key names; CHAIN_INCONSISTENT when it is not one. */
export function didKeyThumbprint(did: string): string {
  const known = thumbprints.get(did)
  if (known !== undefined) return known
  let jkt: string
  try {
    jkt = jwkThumbprint(publicJwkFromDidKey(did))
  } catch (err) {
    throw new MandateError('CHAIN_INCONSISTENT', 'every actor must be an Ed25519 did:key', { detail: { rule: 'actor-did-key' }, cause: err })
  }
  if (thumbprints.size >= THUMBPRINTS_MAX) thumbprints.clear()
  thumbprints.set(did, jkt)
  return jkt
}

/** A value appears twice (pairwise for the short lists of a usual chain: no Set per token). */
function hasRepeat(list: readonly string[]): boolean {
  if (list.length > 16) return new Set(list).size !== list.length
  for (let i = 1; i < list.length; i++) for (let j = 0; j < i; j++) if (list[i] === list[j]) return true
  return false
}

/**
 * The structural rules (docs/protocol.md, "Chain rules"):
 * - ancestry matches depth: a mandate at depth d lists d ancestors (root first); a call credential,
 *   which keeps its mandate's depth and holder, lists d + 1 (its own mandate last). `parent` and
 *   `parent_hash` are present exactly when there are ancestors, and `parent` is the last ancestor;
 *   a call credential always has a parent;
 * - the actor chain has depth + 1 actors (the root holder, then one per delegation);
 * - every actor is a did:key, and the current actor (`act.sub` = `client_id`) is the key whose
 *   thumbprint is `cnf.jkt`, so a call is never attributed to an agent other than the key holder;
 * - no agent appears twice in the actor chain;
 * - an audience credential (`credential: "audience"`) is shaped like a call credential without the
 *   call: same depth and holder as its mandate (so d + 1 ancestors), exactly one audience, no
 *   further delegation (`max_depth` = `depth`), no `offline` and no `call`; a call credential carries
 *   neither `credential` nor `offline`.
 *
 * @throws MandateError CHAIN_INCONSISTENT with `detail.rule` naming the rule broken.
 */
export function assertChainConsistent(claims: Pick<MandateClaims, 'act' | 'client_id' | 'cnf' | 'delegation' | 'call'> & Partial<Pick<MandateClaims, 'aud' | 'credential' | 'offline'>>): void {
  const d = claims.delegation
  const audienceCredential = claims.credential === AUDIENCE_CREDENTIAL
  if (audienceCredential) {
    if (claims.call) inconsistent('an audience credential is not bound to a call', 'audience-shape')
    if (claims.aud !== undefined && typeof claims.aud !== 'string') inconsistent('an audience credential has exactly one audience', 'audience-shape')
    if (d.max_depth !== d.depth) inconsistent('an audience credential cannot be delegated (max_depth = depth)', 'audience-shape')
  } else if (claims.credential !== undefined) {
    inconsistent('unknown credential kind', 'credential-kind')
  }
  if (claims.offline !== undefined && (claims.call || audienceCredential)) {
    inconsistent('a call or audience credential cannot allow offline attenuation', 'offline-terminal')
  }
  const linked = claims.call !== undefined || audienceCredential
  const expected = linked ? d.depth + 1 : d.depth
  if (d.ancestors.length !== expected) {
    inconsistent(`a ${claims.call ? 'call credential' : audienceCredential ? 'audience credential' : 'mandate'} at depth ${d.depth} must list ${expected} ancestor(s)`, 'ancestors-depth')
  }
  if (expected === 0) {
    if (d.parent !== undefined || d.parent_hash !== undefined) inconsistent('a root mandate has no parent', 'root-parent')
  } else {
    if (d.parent === undefined || d.parent_hash === undefined) inconsistent('a delegated mandate or call credential names its parent and the parent hash', 'parent-present')
    if (d.ancestors[d.ancestors.length - 1] !== d.parent) inconsistent('the parent must be the last ancestor', 'parent-last-ancestor')
  }
  const actors: string[] = []
  for (let a: ActorClaim | undefined = claims.act; a; a = a.act) actors.push(a.sub)
  if (actors.length !== d.depth + 1) inconsistent('the actor chain must have depth + 1 actors', 'actors-depth')
  if (claims.client_id !== claims.act.sub) inconsistent('client_id must be the current actor', 'client-id')
  if (hasRepeat(actors)) inconsistent('an agent appears twice in the actor chain', 'repeated-actor')
  for (const id of actors) didKeyThumbprint(id)
  if (didKeyThumbprint(claims.act.sub) !== claims.cnf.jkt) inconsistent('the current actor is not the key the credential is bound to (cnf.jkt)', 'actor-key')
}

/** Longest validity window (exp − min(iat, nbf), seconds) a guard accepts, per kind of token. */
export interface LifetimeCaps {
  /** Call credentials (bound to one call). Protocol: ≤ 60 s. */
  call: number
  /** Mandates presented directly (audience-level). Default 86 400 s, the Authority's default cap. */
  mandate: number
  /** Audience credentials (`credential: "audience"`, cached mode). Default 900 s. */
  audience: number
}

export const DEFAULT_LIFETIME_CAPS: Readonly<LifetimeCaps> = Object.freeze({ call: 60, mandate: 86_400, audience: 900 })

/** The kind of token for lifetime caps: a call credential, an audience credential, or a mandate. */
export function lifetimeKind(claims: Pick<MandateClaims, 'call'> & Partial<Pick<MandateClaims, 'credential'>>): keyof LifetimeCaps {
  return claims.call ? 'call' : claims.credential === AUDIENCE_CREDENTIAL ? 'audience' : 'mandate'
}

const KIND_NAMES: Record<keyof LifetimeCaps, string> = { call: 'call credential', mandate: 'mandate', audience: 'audience credential' }

/** Validate caps given by a caller (positive integers); missing ones take the defaults. */
export function lifetimeCaps(caps: Partial<LifetimeCaps> | undefined): LifetimeCaps {
  const out = { ...DEFAULT_LIFETIME_CAPS, ...(caps ?? {}) }
  for (const k of ['call', 'mandate', 'audience'] as const) {
    if (!Number.isSafeInteger(out[k]) || out[k] < 1) throw new MandateError('CONFIG_INVALID', `lifetime cap ${k} must be a positive integer (seconds)`)
  }
  return out
}

/**
 * Refuse a token that lives longer than its kind allows, whoever signed it.
 *
 * @throws MandateError LIFETIME_EXCEEDED with `detail.cap` and `detail.kind`.
 */
export function assertLifetimeWithin(claims: Pick<MandateClaims, 'iat' | 'nbf' | 'exp' | 'call'> & Partial<Pick<MandateClaims, 'credential'>>, caps: LifetimeCaps = DEFAULT_LIFETIME_CAPS): void {
  const kind = lifetimeKind(claims)
  const cap = caps[kind]
  const lifetime = claims.exp - Math.min(claims.iat, claims.nbf)
  if (lifetime > cap) {
    throw new MandateError('LIFETIME_EXCEEDED', `a ${KIND_NAMES[kind]} may live at most ${cap} s`, { detail: { kind, cap } })
  }
}
