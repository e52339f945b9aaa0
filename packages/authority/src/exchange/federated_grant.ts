/**
 * The RFC 7523 jwt-bearer grant of external tokens under federation rules.
 *
 * - A **subject** rule: a registered host app (grantor) presents a person's token from an IdP it
 *   already uses (an OpenID Connect ID token, an IdP access token, or an ID-JAG issued for this
 *   Authority) together with the agent and the task; the root mandate is for that person, under
 *   the rule's template.
 * - An **agent** rule: a workload presents its platform token (GitHub Actions OIDC, Kubernetes
 *   service-account token, SPIFFE JWT-SVID) and a DPoP proof of its own Ed25519 key; the key is
 *   registered as bound to that workload for the rule's lifetime and receives the root mandate,
 *   with the workload as the subject. No hand registration, no static secret.
 *
 * The external token is checked fully before anything else happens (federation/foreign_token.ts),
 * its `jti` is single use, and nothing the request asks can go beyond the rule's template
 * (core narrowToTemplate, the same comparators as delegation).
 */
import {
  b64uDecode, didKeyFromPublicJwk, parseStrictJson, jwkThumbprint, MandateError, narrowToTemplate, parsePublicJwk, parseScope,
  verifyProof, formatScope, tokenHash, type Budget, type JsonValue, type TemplateRequest, type ToolGrant,
} from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
import { acceptedUntil, MAX_FOREIGN_TOKEN_BYTES, splitForeignToken } from '../federation/foreign_token.js'
import { peekIssuer, selectRule } from '../federation/select.js'
import type { FederatedIdentity, FederationRule, VerifiedForeignToken } from '../federation/types.js'
import { INVISIBLE_OR_CONTROL } from '../observability/display_text.js'
import type { AgentRecord } from '../types.js'
import { authenticateClient, dpopProofError, verifyHolderProof } from './client_auth.js'
import { federationFields, issueRootMandate, type GrantParams } from './grant.js'
import type { IssuedMandate, RefusalFields } from './issued.js'
import { LIMITS, optBudget, optInt, optScopes, optTools, resources, type FormParams } from './params.js'
import { admitPrincipal, agentRevoked } from './principals.js'

export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** `authorization_grant_profiles_supported` value of ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant). */
export const ID_JAG_GRANT_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'

const TXN = /^[A-Za-z0-9._:-]{1,128}$/
const NAME = /^[\x20-\x7e]{1,128}$/

/** The mandate subject of an external identity: the issuer, `#`, the issuer's subject (issuers never contain `#`). */
export function federatedSubject(iss: string, sub: string): string {
  return `${iss}#${sub}`
}

function str(v: JsonValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}

/**
 * A sender-constrained external token (RFC 9449 §6 / RFC 7800 `cnf`) is redeemed only by the key it
 * is bound to: `cnf.jkt` must be the thumbprint of the key that proves possession in this request.
 * Any other confirmation method cannot be checked here, so it is refused.
 */
function assertConfirmation(v: VerifiedForeignToken, provenJkt: string | undefined): void {
  const cnf = v.claims.cnf
  if (cnf === undefined) return
  const jkt = typeof cnf === 'object' && cnf !== null && !Array.isArray(cnf) && Object.keys(cnf).length === 1 ? cnf.jkt : undefined
  if (typeof jkt !== 'string') throw new MandateError('FOREIGN_TOKEN_INVALID', 'the token is bound to a key by a confirmation method this Authority cannot check', { detail: { reason: 'cnf', rule: v.rule.id } })
  if (provenJkt !== jkt) throw new MandateError('FOREIGN_TOKEN_INVALID', 'the token is bound to another key than the one proven with this request (cnf.jkt)', { detail: { reason: 'cnf', rule: v.rule.id } })
}

/** The external identity a verified token names, per the rule's mapping. */
function identityOf(v: VerifiedForeignToken): FederatedIdentity {
  const rule = v.rule
  const claim = 'sub'
  const sub = str(v.claims[claim])
  const iss = str(v.claims.iss) ?? rule.trust.issuer
  if (sub === undefined || sub.length === 0 || sub.length > 255 || INVISIBLE_OR_CONTROL.test(sub)) {
    throw new MandateError('FOREIGN_TOKEN_INVALID', `the token's ${claim} is not a usable subject`, { detail: { reason: 'claims', rule: rule.id } })
  }
  if (federatedSubject(iss, sub).length > 512) throw new MandateError('FOREIGN_TOKEN_INVALID', 'issuer and subject are too long together', { detail: { reason: 'claims', rule: rule.id } })
  const out: FederatedIdentity = { iss, sub, rule: rule.id }
  const name = str(v.claims[rule.subject?.nameClaim ?? 'name'])
  const email = str(v.claims[rule.subject?.emailClaim ?? 'email'])
  if (name !== undefined && name.length <= 256 && !INVISIBLE_OR_CONTROL.test(name)) out.name = name
  if (email !== undefined && email.length <= 256 && !INVISIBLE_OR_CONTROL.test(email)) out.email = email
  return out
}

/** Choose the rule that accepts the assertion, or refuse precisely (nothing is issued). */
async function acceptedToken(ctx: AuthorityContext, assertion: string, nonce: string | undefined, info: RefusalFields, client: string | undefined): Promise<VerifiedForeignToken> {
  const rules = await ctx.federation.registry.rules()
  const { verified, explanation } = await selectRule(assertion, rules, {
    authorityIssuer: ctx.issuer, tokenEndpoint: ctx.endpoints.token, now: ctx.now, skew: ctx.limits.skew, keys: ctx.federation.keys,
    ...(nonce !== undefined ? { nonce } : {}),
  }, client)
  if (explanation.issuer) info.federation_issuer = explanation.issuer.slice(0, 256)
  if (verified) {
    info.federation_rule = verified.rule.id
    return verified
  }
  // a token too large, not a JWS, or without iss names no issuer: refused as what it is
  if (explanation.issuer === '') {
    if (assertion.length > MAX_FOREIGN_TOKEN_BYTES) throw new MandateError('FOREIGN_TOKEN_INVALID', `the token is larger than ${MAX_FOREIGN_TOKEN_BYTES} bytes`, { detail: { reason: 'size' } })
    let readable = false
    try {
      readable = typeof splitForeignToken(assertion).payload === 'object'
    } catch {
      readable = false
    }
    if (readable) throw new MandateError('FOREIGN_TOKEN_INVALID', 'the token has no iss: federation rules trust issuers', { detail: { reason: 'issuer' } })
    throw new MandateError('FOREIGN_TOKEN_INVALID', 'the token is not a readable JWT', { detail: { reason: 'malformed' } })
  }
  const candidates = explanation.verdicts.filter((v) => v.reason !== 'issuer')
  if (candidates.length === 0) throw new MandateError('FEDERATION_NO_MATCH', 'no federation rule trusts the issuer of this token')
  if (candidates.every((v) => v.reason === 'client')) {
    throw new MandateError('FEDERATION_NO_MATCH', 'this client may not redeem tokens under any rule trusting this issuer', { detail: { rules: candidates.map((v) => v.rule).join(' ').slice(0, 300) } })
  }
  // a token valid under some rule of its issuer but matching none's claims is unmatched; one that no
  // rule found valid (signature, time, audience…) is refused as invalid, with the first reason
  const tried = candidates.filter((v) => v.reason !== 'client')
  // the reason of a rule of the token's own kind: a `typ` refusal only says the token is of another
  // kind than that rule's, so another rule's verdict (audience, expiry…) says more
  const invalid = tried.some((v) => v.reason === 'claims') ? undefined : (tried.find((v) => v.reason !== undefined && v.reason !== 'typ') ?? tried.find((v) => v.reason !== undefined))
  if (invalid) {
    throw new MandateError('FOREIGN_TOKEN_INVALID', `the token was refused: ${(invalid.reasons[0] ?? invalid.reason ?? 'invalid').slice(0, 200)}`, { detail: { reason: invalid.reason ?? 'invalid', rule: invalid.rule } })
  }
  throw new MandateError('FEDERATION_NO_MATCH', 'the token matches no federation rule', { detail: { rules: tried.map((v) => v.rule).join(' ').slice(0, 300) } })
}

/** What the request asks of the template (absent members take the template's). */
function templateRequest(p: FormParams): TemplateRequest {
  const out: TemplateRequest = {}
  const audiences = resources(p)
  if (audiences) out.audiences = audiences
  const tools = optTools(p)
  if (tools) out.tools = tools
  const scopes = optScopes(p)
  if (scopes) out.scopes = scopes
  const expiresIn = optInt(p, 'expires_in', ...LIMITS.mandateExpiresIn)
  if (expiresIn !== undefined) out.expiresIn = expiresIn
  const maxDepth = optInt(p, 'max_depth', ...LIMITS.maxDepth)
  if (maxDepth !== undefined) out.maxDepth = maxDepth
  const budget = optBudget(p)
  if (budget) out.budget = budget
  const maxUses = optInt(p, 'max_uses', ...LIMITS.maxUses)
  if (maxUses !== undefined) out.maxUses = maxUses
  const hops = optInt(p, 'offline_max_hops', ...LIMITS.offlineHops)
  if (hops !== undefined) out.offlineHops = hops
  return out
}

/**
 * ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §4.3): issued for the authenticated
 * client only (`client_id`); the resource(s) it names bound the audiences; the scopes issued are
 * the intersection of those requested (or the template's) and those in the ID-JAG.
 */
function applyIdJag(v: VerifiedForeignToken, client: AgentRecord, req: TemplateRequest): TemplateRequest {
  if (str(v.claims.client_id) !== client.did) throw new MandateError('FOREIGN_TOKEN_INVALID', 'the ID-JAG was issued for another client', { detail: { reason: 'client_id', rule: v.rule.id } })
  const out = { ...req }
  const res = v.claims.resource
  if (res !== undefined) {
    const allowed = typeof res === 'string' ? [res] : Array.isArray(res) && res.every((r) => typeof r === 'string') ? (res as string[]) : undefined
    if (!allowed) throw new MandateError('FOREIGN_TOKEN_INVALID', 'the ID-JAG resource claim is malformed', { detail: { reason: 'claims', rule: v.rule.id } })
    const asked = out.audiences ?? v.rule.template.audiences.filter((a) => allowed.includes(a))
    if (asked.length === 0) throw new MandateError('NARROWING_AUDIENCE', 'the resource the ID-JAG names is not one the rule allows')
    for (const a of asked) if (!allowed.includes(a)) throw new MandateError('NARROWING_AUDIENCE', 'the ID-JAG does not name this resource', { detail: { audience: a } })
    out.audiences = asked
  }
  const scope = v.claims.scope
  if (scope !== undefined) {
    if (typeof scope !== 'string') throw new MandateError('FOREIGN_TOKEN_INVALID', 'the ID-JAG scope claim is malformed', { detail: { reason: 'claims', rule: v.rule.id } })
    const granted = new Set(parseScope(scope))
    // the draft's intersection; asked for scopes of which the ID-JAG grants none, the client is told so
    const asked = out.scopes
    out.scopes = (asked ?? v.rule.template.scopes ?? []).filter((s) => granted.has(s))
    if (asked !== undefined && asked.length > 0 && out.scopes.length === 0) throw new MandateError('NARROWING_SCOPE', 'the ID-JAG grants none of the requested scopes')
  } else {
    out.scopes = []
  }
  return out
}

function grantParams(p: FormParams, subject: string, agent: string, templated: ReturnType<typeof narrowToTemplate>): GrantParams {
  const purpose = p.one('purpose')
  if (purpose !== undefined && purpose.length > 1024) throw new MandateError('INVALID_REQUEST', 'purpose must be at most 1024 characters')
  const txn = p.one('txn')
  if (txn !== undefined && !TXN.test(txn)) throw new MandateError('INVALID_REQUEST', 'txn must be 1..128 characters of [A-Za-z0-9._:-]')
  return {
    grantor: '', subject, agent, audiences: templated.audiences, tools: templated.tools, expiresIn: templated.expiresIn, maxDepth: templated.maxDepth,
    ...(templated.scopes.length ? { scopes: templated.scopes } : {}),
    ...(templated.budget ? { budget: templated.budget } : {}), ...(templated.maxUses !== undefined ? { maxUses: templated.maxUses } : {}),
    ...(templated.offline ? { offline: templated.offline } : {}),
    ...(purpose !== undefined ? { purpose } : {}), ...(txn !== undefined ? { txn } : {}),
  }
}

/**
 * The external token's `jti` is single use (until it could no longer be accepted: its `exp`, or
 * `iat + maxTokenAge` when sooner, and never more than 24 h ahead), whichever rule admitted it. A
 * workload token without `jti` (a JWT-SVID need not carry one) is single use by its hash: a
 * platform token registers at most one key, so a copy of it replayed later registers none.
 */
async function spendJti(ctx: AuthorityContext, v: VerifiedForeignToken, assertion: string): Promise<void> {
  const jti = str(v.claims.jti)
  const iss = str(v.claims.iss) ?? v.rule.trust.issuer
  // keyed on the signed input, not the whole token: a signature can be re-encoded (spare base64url
  // bits, ECDSA (r, n-s)) into another valid token with the same claims
  const key = jti !== undefined ? `fedjti:${iss}:${jti}` : v.rule.kind === 'agent' ? `fedtok:${tokenHash(assertion.slice(0, assertion.lastIndexOf('.')))}` : undefined
  if (key === undefined) return
  const first = await ctx.singleUse.use(`federation:${iss}`, key, acceptedUntil(v, nowSec(ctx), ctx.limits.skew))
  if (!first) throw new MandateError('FOREIGN_TOKEN_INVALID', 'this token has been used already', { detail: { reason: 'jti', rule: v.rule.id } })
}

/**
 * Handle `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`; throws a MandateError on
 * refusal. `inProcessGrantor`: the in-process API (`authority.grantFederated`), whose host names
 * its grantor the way `authority.grant` does, instead of a client assertion.
 */
export async function jwtBearerGrant(ctx: AuthorityContext, p: FormParams, dpop: string | undefined, info: RefusalFields, inProcessGrantor?: string): Promise<IssuedMandate> {
  const assertion = p.required('assertion')
  // RFC 8693's parameters belong to the token exchange: read by this grant, they would be ignored,
  // and a client could believe (as with a mismatched actor_token there) that they took effect
  for (const n of ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type']) {
    if (p.one(n) !== undefined) throw new MandateError('INVALID_REQUEST', `${n} is a token-exchange parameter: the jwt-bearer grant does not take it`)
  }
  const verified = await acceptedToken(ctx, assertion, p.one('nonce'), info, claimedClient(p, inProcessGrantor))
  const identity = identityOf(verified)
  if (verified.rule.kind === 'subject') return subjectGrant(ctx, p, dpop, verified, identity, info, inProcessGrantor, assertion)
  if (inProcessGrantor !== undefined) throw new MandateError('INVALID_REQUEST', 'a workload token is redeemed by the workload itself (with its DPoP key), not by a grantor')
  return workloadGrant(ctx, p, dpop, verified, identity, info, assertion)
}

/**
 * The client that says it redeems the token, read before anything is verified (it only picks among
 * rules limited to clients; the client is authenticated afterwards): the named grantor in process,
 * else `client_id`, else the client assertion's `iss`.
 */
function claimedClient(p: FormParams, inProcessGrantor: string | undefined): string | undefined {
  if (inProcessGrantor !== undefined) return inProcessGrantor
  const id = p.one('client_id')
  if (id !== undefined) return id
  const assertion = p.one('client_assertion')
  const iss = assertion !== undefined ? peekIssuer(assertion, 16 * 1024) : ''
  return iss === '' ? undefined : iss
}

/**
 * The client redeeming a person's token: a host app (grantor or admin) authenticated by its client
 * assertion (HTTP) or named in process; for an ID-JAG also the agent the IdP issued it to
 * (`client_id`), which then receives the mandate itself and must prove its key (DPoP).
 */
async function hostApp(ctx: AuthorityContext, p: FormParams, dpop: string | undefined, inProcessGrantor: string | undefined, info: RefusalFields, agentMayRedeem: boolean): Promise<AgentRecord> {
  if (inProcessGrantor !== undefined) {
    info.agent = inProcessGrantor.slice(0, 2048)
    for (const n of ['client_assertion', 'client_assertion_type', 'client_id']) if (p.one(n) !== undefined) throw new MandateError('INVALID_REQUEST', `${n} does not apply in process (the grantor is named)`)
    return admitPrincipal(ctx.store, inProcessGrantor, { code: 'UNAUTHORIZED_CLIENT', as: 'grantor', roles: ['grantor', 'admin'], now: ctx.now() })
  }
  const clientId = p.one('client_id')
  const assertionType = p.one('client_assertion_type')
  const clientAssertion = p.one('client_assertion')
  const client = await authenticateClient(ctx, {
    ...(assertionType !== undefined ? { assertionType } : {}), ...(clientAssertion !== undefined ? { assertion: clientAssertion } : {}), ...(clientId !== undefined ? { clientId } : {}),
  }, ctx.endpoints.token)
  info.agent = client.did
  const roles = agentMayRedeem ? ['grantor', 'admin', 'agent'] as const : ['grantor', 'admin'] as const
  const grantor = await admitPrincipal(ctx.store, client.did, { code: 'UNAUTHORIZED_CLIENT', as: agentMayRedeem ? 'client' : 'grantor', roles, now: ctx.now() })
  // an agent receives a mandate bound to its key: it proves that key now, as at every exchange
  if (grantor.role === 'agent' && dpop === undefined) throw new MandateError('PROOF_MISSING', 'an agent redeeming an ID-JAG for itself proves its key with DPoP')
  if (dpop !== undefined) await verifyHolderProof(ctx, dpop, { url: ctx.tokenUrl, jkt: client.jkt, principal: client.did })
  return grantor
}

async function subjectGrant(ctx: AuthorityContext, p: FormParams, dpop: string | undefined, v: VerifiedForeignToken, identity: FederatedIdentity, info: RefusalFields, inProcessGrantor: string | undefined, assertion: string): Promise<IssuedMandate> {
  const rule = v.rule
  // the host app is a registered grantor: it chose the agent and the task; the person's token says for whom
  const client = await hostApp(ctx, p, dpop, inProcessGrantor, info, rule.token === 'id_jag')
  // bound to a key: only that key's holder, proving it now (a DPoP proof, checked in hostApp), redeems it
  assertConfirmation(v, dpop !== undefined && inProcessGrantor === undefined ? client.jkt : undefined)
  if (rule.clients && !rule.clients.includes(client.did)) throw new MandateError('FEDERATION_NO_MATCH', 'this client may not redeem tokens under the rule', { detail: { rule: rule.id } })
  let request = templateRequest(p)
  if (rule.token === 'id_jag') request = applyIdJag(v, client, request)
  const templated = narrowToTemplate(rule.template, request)
  // an agent the ID-JAG names redeems it for itself (the MCP enterprise-managed authorization
  // shape: the client holds the token); a host app names the agent that will act
  const selfRedeem = client.role === 'agent'
  const named = p.one('agent')
  if (selfRedeem && named !== undefined && named !== client.did) throw new MandateError('INVALID_REQUEST', 'an agent redeems an ID-JAG for itself: agent must be omitted or be the client')
  const agent = selfRedeem ? client.did : p.required('agent')
  const grantor = selfRedeem ? undefined : client
  info.recipient = agent.slice(0, 2048)
  const subject = federatedSubject(identity.iss, identity.sub)
  info.subject = subject
  const params = grantParams(p, subject, agent, templated)
  // spent only once every check that could still refuse has passed (a refused request leaves the token usable)
  return issueRootMandate(ctx, params, { ...(grantor ? { grantor } : {}), federation: { ...identity, kind: 'subject' }, beforeIssue: () => spendJti(ctx, v, assertion) }, info)
}

/** The proof's own key (RFC 9449 §4.2 `jwk` header), as an agent identity. */
function proofKey(proof: string): { did: string; jkt: string } {
  const dot = proof.indexOf('.')
  if (dot <= 0 || dot > 2048) throw new MandateError('PROOF_INVALID', 'the DPoP proof is malformed')
  let header: unknown
  try {
    header = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(b64uDecode(proof.slice(0, dot), 'PROOF_INVALID', 'header')))
  } catch {
    // verifyProof refuses the same proof with its precise reason; here only its key is read
    throw new MandateError('PROOF_INVALID', 'the DPoP proof header is not a JSON object')
  }
  const jwk = typeof header === 'object' && header !== null ? (header as { jwk?: unknown }).jwk : undefined
  let pub
  try {
    pub = parsePublicJwk(jwk)
  } catch {
    throw new MandateError('PROOF_INVALID', 'a workload agent proves an Ed25519 key (OKP JWK in the proof)')
  }
  return { did: didKeyFromPublicJwk(pub), jkt: jwkThumbprint(pub as unknown as { kty: string }) }
}

async function workloadGrant(ctx: AuthorityContext, p: FormParams, dpop: string | undefined, v: VerifiedForeignToken, identity: FederatedIdentity, info: RefusalFields, assertion: string): Promise<IssuedMandate> {
  const rule = v.rule
  const mapping = rule.agent
  if (!mapping) throw new MandateError('INTERNAL', 'agent rule without mapping')
  for (const n of ['client_assertion', 'client_assertion_type']) {
    if (p.one(n) !== undefined) throw new MandateError('INVALID_REQUEST', 'a workload authenticates with its platform token and its DPoP key, not with a client assertion')
  }
  if (dpop === undefined) throw new MandateError('PROOF_MISSING', 'a workload presents a DPoP proof of the Ed25519 key it will act with')
  let key: { did: string; jkt: string }
  try {
    key = proofKey(dpop)
  } catch (err) {
    throw dpopProofError(err)
  }
  assertConfirmation(v, key.jkt)
  const requested = p.one('agent')
  if (requested !== undefined && requested !== key.did) throw new MandateError('INVALID_REQUEST', 'agent must be the did:key of the DPoP proof key (or be omitted)')
  // a public client names itself (RFC 6749 §2.3, RFC 7521 §4.2): here the client is the proof key
  const clientId = p.one('client_id')
  if (clientId !== undefined && clientId !== key.did) throw new MandateError('INVALID_CLIENT', 'client_id must be the did:key of the DPoP proof key (or be omitted)')
  const nonce = ctx.nonce
  // the proof counts against the workload's single-use budget (only valid platform tokens reach here)
  await verifyProof(dpop, {
    jkt: key.jkt, method: 'POST', url: ctx.tokenUrl, now: nowSec(ctx), skew: 5,
    replay: { use: (k, exp) => ctx.singleUse.use(`federation:${identity.iss}#${identity.sub}`, k, exp) },
    ...(nonce ? { nonce: (n: string | undefined) => nonce.check(n) } : {}),
  }).catch((err: unknown) => {
    throw dpopProofError(err)
  })
  info.agent = key.did
  const templated = narrowToTemplate(rule.template, templateRequest(p))
  const subject = federatedSubject(identity.iss, identity.sub)
  info.subject = subject
  const params = grantParams(p, subject, key.did, templated)
  // refusals that need no write come first, so that they leave the token usable
  await checkWorkloadKey(ctx, key, identity)
  if (params.txn !== undefined && await ctx.store.hasTask(params.txn)) throw new MandateError('INVALID_REQUEST', 'this txn is already in use by another task; choose a new one or omit it')
  // the single use is the arbiter between concurrent redemptions: spent before the key is registered
  await spendJti(ctx, v, assertion)
  await bindWorkloadAgent(ctx, key, identity, v)
  return issueRootMandate(ctx, params, { federation: { ...identity, kind: 'agent' } }, info)
}

/** The claims of a workload worth showing next to its agent (strings only, bounded). */
function shownClaims(v: VerifiedForeignToken): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of Object.keys(v.rule.claims)) {
    const c = v.claims[name]
    if (typeof c === 'string' && c.length <= 256 && Object.keys(out).length < 8) out[name] = c
  }
  return out
}

function agentName(template: string, v: VerifiedForeignToken): string {
  const name = template.replace(/\{([A-Za-z0-9_.-]{1,64})\}/g, (_, claim: string) => {
    const c = v.claims[claim]
    return typeof c === 'string' || typeof c === 'number' ? String(c) : ''
  }).replace(/[^\x20-\x7e]/g, '?').slice(0, 128)
  return NAME.test(name) ? name : `workload ${v.rule.id}`
}

/**
 * Register the proof key as an agent bound to the workload, for the rule's lifetime (never
 * longer than the platform token lives plus that lifetime). The same key presented again by the
 * same workload keeps its registration; a key registered otherwise (by hand, or bound to another
 * workload) is refused, so a platform token can never take over an existing principal.
 */
/** Whether the proof key may act for this workload: new (never revoked), or registered bound to this same workload and admitted. */
async function checkWorkloadKey(ctx: AuthorityContext, key: { did: string; jkt: string }, identity: FederatedIdentity): Promise<AgentRecord | undefined> {
  const existing = await ctx.store.getAgent(key.did)
  if (existing) {
    const b = existing.binding
    if (!b || b.iss !== identity.iss || b.sub !== identity.sub || b.rule !== identity.rule) {
      throw new MandateError('INVALID_GRANT', 'this key is already registered to another principal; a workload uses a key of its own')
    }
    return admitPrincipal(ctx.store, key.did, { code: 'INVALID_GRANT', as: 'workload agent', roles: ['agent'], now: ctx.now() })
  }
  if (await agentRevoked(ctx.store, key.did)) throw new MandateError('INVALID_GRANT', 'this key has been revoked; a workload must use a new key')
  return undefined
}

async function bindWorkloadAgent(ctx: AuthorityContext, key: { did: string; jkt: string }, identity: FederatedIdentity, v: VerifiedForeignToken): Promise<AgentRecord> {
  const mapping = v.rule.agent as NonNullable<FederationRule['agent']>
  const existing = await checkWorkloadKey(ctx, key, identity)
  if (existing) return existing
  const now = ctx.now()
  const tokenExp = typeof v.claims.exp === 'number' ? v.claims.exp * 1000 : now
  const expiresAt = Math.min(now + mapping.lifetime * 1000, tokenExp + mapping.lifetime * 1000)
  const agent: AgentRecord = {
    did: key.did, jkt: key.jkt, name: agentName(mapping.name, v), role: 'agent', status: 'enabled', disabled: false, createdAt: now,
    binding: { iss: identity.iss, sub: identity.sub, rule: identity.rule, claims: shownClaims(v) }, expiresAt,
  }
  const fields: Record<string, JsonValue> = {
    agent: agent.did, name: agent.name, role: 'agent', expires_at: expiresAt,
    federation: { ...federationFields({ ...identity, kind: 'agent' }), claims: agent.binding?.claims ?? {} },
  }
  const rec = await ctx.store.insertAgent(agent, ctx.audit.draft('agent.registered', fields))
  if (!rec) throw new MandateError('INVALID_GRANT', 'this key was registered concurrently; retry')
  await ctx.audit.recorded(rec)
  return agent
}


/** In-process form of the jwt-bearer grant for a person's token (`Authority.grantFederated`). */
export interface FederatedGrantInput {
  /** did of the registered grantor (host app) redeeming the token. */
  grantor: string
  /** The external token (ID token, IdP access token, ID-JAG). */
  assertion: string
  /** The `nonce` the host app sent in its authentication request, when the token carries one. */
  nonce?: string
  /** did:key of the registered agent that will hold the mandate. */
  agent: string
  audiences?: string[]
  tools?: ToolGrant[]
  scopes?: string[]
  expiresIn?: number
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  offlineHops?: number
  purpose?: string
  txn?: string
}

const FEDERATED_GRANT_MEMBERS = new Set(['grantor', 'assertion', 'nonce', 'agent', 'audiences', 'tools', 'scopes', 'expiresIn', 'maxDepth', 'budget', 'maxUses', 'offlineHops', 'purpose', 'txn'])

/** The form parameters of an in-process federated grant (one parser for both paths). */
export function federatedGrantParams(input: FederatedGrantInput): Record<string, string | string[]> {
  for (const k of Object.keys(input)) if (!FEDERATED_GRANT_MEMBERS.has(k)) throw new MandateError('INVALID_REQUEST', `unknown grantFederated member "${k.slice(0, 40)}"`)
  const s = (v: unknown, name: string): string => {
    if (typeof v !== 'string') throw new MandateError('INVALID_REQUEST', `${name} must be a string`)
    return v
  }
  const n = (v: unknown, name: string): string => {
    if (!Number.isSafeInteger(v)) throw new MandateError('INVALID_REQUEST', `${name} must be an integer`)
    return String(v)
  }
  const out: Record<string, string | string[]> = { grant_type: JWT_BEARER_GRANT_TYPE, assertion: s(input.assertion, 'assertion'), agent: s(input.agent, 'agent') }
  if (input.nonce !== undefined) out.nonce = s(input.nonce, 'nonce')
  if (input.audiences !== undefined) {
    if (!Array.isArray(input.audiences)) throw new MandateError('INVALID_REQUEST', 'audiences must be an array of URIs')
    out.resource = input.audiences.map((a) => s(a, 'audiences[]'))
  }
  if (input.tools !== undefined) out.authorization_details = JSON.stringify(input.tools)
  if (input.scopes !== undefined) {
    if (!Array.isArray(input.scopes)) throw new MandateError('INVALID_REQUEST', 'scopes must be an array')
    out.scope = formatScope(input.scopes.map((x) => s(x, 'scopes[]')))
  }
  if (input.expiresIn !== undefined) out.expires_in = n(input.expiresIn, 'expiresIn')
  if (input.maxDepth !== undefined) out.max_depth = n(input.maxDepth, 'maxDepth')
  if (input.maxUses !== undefined) out.max_uses = n(input.maxUses, 'maxUses')
  if (input.offlineHops !== undefined) out.offline_max_hops = n(input.offlineHops, 'offlineHops')
  if (input.budget !== undefined) out.budget = JSON.stringify(input.budget)
  if (input.purpose !== undefined) out.purpose = s(input.purpose, 'purpose')
  if (input.txn !== undefined) out.txn = s(input.txn, 'txn')
  return out
}
