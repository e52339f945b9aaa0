/**
 * The token endpoint, independent of transport: the HTTP route and the in-process client both call
 * it with form parameters and the DPoP header, so both go through one code path.
 */
import { MandateError, parseScope, type JsonValue } from '@mandate/core'
import type { AuthorityContext } from '../context.js'
import type { AgentRecord } from '../types.js'
import { authenticateClient, demandFreshNonce, verifyHolderProof } from './client_auth.js'
import { grantRootMandate } from './grant.js'
import type { IssuedMandate, RefusalFields } from './issued.js'
import { FormParams, LIMITS, optBudget, optInt, optJson, optScopes, optTools, resources } from './params.js'
import { exchangeMandate, type ExchangeParams } from './token_exchange.js'
import { JWT_BEARER_GRANT_TYPE, jwtBearerGrant } from './federated_grant.js'

export const TASK_GRANT_TYPE = 'urn:mandate:grant-type:task'
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
export const CALL_CREDENTIAL_TOKEN_TYPE = 'urn:mandate:token-type:call-credential'
/**
 * `requested_token_type` (and `issued_token_type`) of an audience credential: the subject mandate
 * narrowed to one `resource`, same holder, reusable there with a fresh proof per call (cached mode).
 */
export const AUDIENCE_CREDENTIAL_TOKEN_TYPE = 'urn:mandate:token-type:audience-credential'

export interface TokenRequest {
  params: FormParams
  /** The DPoP header value (exactly one). */
  dpop?: string
}

/** RFC 6749 §5.1 / RFC 8693 §2.2.1 success body. */
export interface TokenResponse {
  access_token: string
  /** What was issued: an access token (a mandate, root or delegated), a call credential or an audience credential. */
  issued_token_type: typeof ACCESS_TOKEN_TYPE | typeof CALL_CREDENTIAL_TOKEN_TYPE | typeof AUDIENCE_CREDENTIAL_TOKEN_TYPE
  token_type: 'DPoP'
  expires_in: number
  scope?: string
  txn: string
}

function answer(issued: IssuedMandate): TokenResponse {
  // RFC 8693 §2.2.1: issued_token_type names what was issued (the type the client asked for)
  const type = issued.claims.call !== undefined ? CALL_CREDENTIAL_TOKEN_TYPE : issued.claims.credential === 'audience' ? AUDIENCE_CREDENTIAL_TOKEN_TYPE : ACCESS_TOKEN_TYPE
  const out: TokenResponse = { access_token: issued.token, issued_token_type: type, token_type: 'DPoP', expires_in: issued.expiresIn, txn: issued.claims.txn }
  if (issued.claims.scope !== undefined) out.scope = issued.claims.scope
  return out
}

/** `actor_token_type` of an actor token: a JWT (here: the client's own assertion). */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'

/**
 * RFC 8693 §2.1 `actor_token`: the acting party. At this Authority the actor is always the
 * authenticated client (its client assertion, and its DPoP key for the issued token), so an actor
 * token adds nothing it could prove: it is accepted only when it is that same principal's
 * assertion (byte for byte the `client_assertion`, `actor_token_type` jwt) and refused otherwise,
 * so that no client believes a different actor was recorded.
 */
function actorToken(p: FormParams): void {
  const token = p.one('actor_token')
  const type = p.one('actor_token_type')
  if (token === undefined && type === undefined) return
  if (token === undefined || type === undefined) throw new MandateError('INVALID_REQUEST', 'actor_token and actor_token_type go together (RFC 8693 §2.1)')
  if (type !== JWT_TOKEN_TYPE || token !== p.one('client_assertion')) {
    throw new MandateError('INVALID_REQUEST', `the actor is the authenticated client: actor_token may only repeat its client_assertion (actor_token_type ${JWT_TOKEN_TYPE}); to act for another party, delegate to it with requested_actor`)
  }
}

/** Parse the RFC 8693 parameters of an exchange. */
export function parseExchange(p: FormParams): ExchangeParams {
  const subjectToken = p.required('subject_token')
  if (p.required('subject_token_type') !== ACCESS_TOKEN_TYPE) throw new MandateError('INVALID_REQUEST', `subject_token_type must be ${ACCESS_TOKEN_TYPE}`)
  actorToken(p)
  const requestedType = p.one('requested_token_type')
  const actor = p.one('requested_actor')
  const scopes = optScopes(p)
  if (requestedType === CALL_CREDENTIAL_TOKEN_TYPE) {
    if (actor !== undefined) throw new MandateError('INVALID_REQUEST', 'requested_actor cannot be combined with a call credential')
    // a call credential's grant, uses (1) and depth come from its parent and tool: asking for others
    // is refused, not ignored (a client would believe it got what it asked for)
    for (const n of ['authorization_details', 'max_depth', 'budget', 'max_uses', 'offline_max_hops']) {
      if (p.one(n) !== undefined) throw new MandateError('INVALID_REQUEST', `${n} does not apply to a call credential`)
    }
    const res = resources(p)
    if (!res || res.length !== 1) throw new MandateError('NARROWING_AUDIENCE', 'a call credential needs exactly one resource')
    const args = toolArguments(p)
    const expiresIn = optInt(p, 'expires_in', ...LIMITS.callExpiresIn)
    const approvalId = p.one('approval_id')
    return {
      kind: 'call', subjectToken, audience: res[0] as string, tool: p.required('tool'), arguments: args === undefined ? {} : args,
      ...(scopes !== undefined ? { scopes } : {}), ...(expiresIn !== undefined ? { expiresIn } : {}), ...(approvalId !== undefined ? { approvalId } : {}),
    }
  }
  if (requestedType === AUDIENCE_CREDENTIAL_TOKEN_TYPE) {
    if (actor !== undefined) throw new MandateError('INVALID_REQUEST', 'requested_actor cannot be combined with an audience credential (it stays with its holder)')
    for (const n of ['tool', 'tool_arguments', 'approval_id', 'max_depth', 'budget', 'max_uses']) if (p.one(n) !== undefined) throw new MandateError('INVALID_REQUEST', `${n} does not apply to an audience credential`)
    const res = resources(p)
    if (!res || res.length !== 1) throw new MandateError('NARROWING_AUDIENCE', 'an audience credential needs exactly one resource')
    const tools = optTools(p)
    const expiresIn = optInt(p, 'expires_in', ...LIMITS.audienceExpiresIn)
    return {
      kind: 'audience', subjectToken, audience: res[0] as string,
      ...(tools !== undefined ? { tools } : {}), ...(scopes !== undefined ? { scopes } : {}), ...(expiresIn !== undefined ? { expiresIn } : {}),
    }
  }
  if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) throw new MandateError('INVALID_REQUEST', 'unsupported requested_token_type')
  if (actor === undefined) throw new MandateError('INVALID_REQUEST', 'requested_actor (delegation) or requested_token_type=call-credential or audience-credential is required')
  for (const n of ['tool', 'tool_arguments', 'approval_id']) if (p.one(n) !== undefined) throw new MandateError('INVALID_REQUEST', `${n} applies to call credentials only`)
  const audiences = resources(p)
  const tools = optTools(p)
  const expiresIn = optInt(p, 'expires_in', ...LIMITS.mandateExpiresIn)
  const maxDepth = optInt(p, 'max_depth', ...LIMITS.maxDepth)
  const budget = optBudget(p)
  const maxUses = optInt(p, 'max_uses', ...LIMITS.maxUses)
  return {
    kind: 'delegation', subjectToken, requestedActor: actor,
    ...(audiences !== undefined ? { audiences } : {}), ...(scopes !== undefined ? { scopes } : {}), ...(tools !== undefined ? { tools } : {}),
    ...(expiresIn !== undefined ? { expiresIn } : {}), ...(maxDepth !== undefined ? { maxDepth } : {}),
    ...(budget !== undefined ? { budget } : {}), ...(maxUses !== undefined ? { maxUses } : {}),
  }
}

async function taskGrant(ctx: AuthorityContext, client: AgentRecord, p: FormParams, info: RefusalFields): Promise<IssuedMandate> {
  const audiences = resources(p)
  if (!audiences) throw new MandateError('INVALID_REQUEST', 'at least one resource is required')
  const tools = optTools(p)
  if (!tools) throw new MandateError('INVALID_REQUEST', 'authorization_details is required')
  const expiresIn = optInt(p, 'expires_in', ...LIMITS.mandateExpiresIn)
  const maxDepth = optInt(p, 'max_depth', ...LIMITS.maxDepth)
  const budget = optBudget(p)
  const maxUses = optInt(p, 'max_uses', ...LIMITS.maxUses)
  const purpose = p.one('purpose')
  const txn = p.one('txn')
  const scope = p.one('scope')
  const offlineHops = optInt(p, 'offline_max_hops', ...LIMITS.offlineHops)
  return grantRootMandate(ctx, {
    grantor: client.did, subject: p.required('subject'), agent: p.required('agent'), audiences, tools,
    ...(scope !== undefined ? { scopes: parseScope(scope) } : {}), ...(purpose !== undefined ? { purpose } : {}), ...(txn !== undefined ? { txn } : {}),
    ...(expiresIn !== undefined ? { expiresIn } : {}), ...(maxDepth !== undefined ? { maxDepth } : {}),
    ...(budget !== undefined ? { budget } : {}), ...(maxUses !== undefined ? { maxUses } : {}),
    ...(offlineHops !== undefined ? { offline: { maxHops: offlineHops } } : {}),
  }, info)
}

/** Handle one token-endpoint request; throws a MandateError on refusal (after auditing it). */
export async function handleTokenRequest(ctx: AuthorityContext, req: TokenRequest, info: RefusalFields = {}): Promise<TokenResponse> {
  const p = req.params
  const grantType = p.required('grant_type')
  info.grant_type = grantType.slice(0, 80)
  demandFreshNonce(ctx, req.dpop)
  // RFC 7523 §2.1: an external token under a federation rule; it authenticates the client (host
  // app) itself, or — for a workload — is the authentication, with the DPoP key as the agent
  if (grantType === JWT_BEARER_GRANT_TYPE) return answer(await jwtBearerGrant(ctx, p, req.dpop, info))
  if (grantType !== TASK_GRANT_TYPE && grantType !== TOKEN_EXCHANGE_GRANT_TYPE) {
    throw new MandateError('UNSUPPORTED_GRANT_TYPE', 'grant_type must be token-exchange, jwt-bearer or urn:mandate:grant-type:task')
  }
  const clientId = p.one('client_id')
  const assertionType = p.one('client_assertion_type')
  const assertion = p.one('client_assertion')
  const client = await authenticateClient(ctx, {
    ...(assertionType !== undefined ? { assertionType } : {}), ...(assertion !== undefined ? { assertion } : {}), ...(clientId !== undefined ? { clientId } : {}),
  }, ctx.endpoints.token)
  info.agent = client.did
  if (grantType === TASK_GRANT_TYPE) {
    // a grantor's proof is optional; when sent it must be valid and signed by the grantor's key
    if (req.dpop !== undefined) await verifyHolderProof(ctx, req.dpop, { url: ctx.tokenUrl, jkt: client.jkt, principal: client.did })
    return answer(await taskGrant(ctx, client, p, info))
  }
  const exchange = parseExchange(p)
  await verifyHolderProof(ctx, req.dpop, { url: ctx.tokenUrl, jkt: client.jkt, principal: client.did })
  return answer(await exchangeMandate(ctx, client, exchange, info))
}

/** Audit a refusal (never with tokens) and rethrow it as a MandateError. */
export async function auditRefusal(ctx: AuthorityContext, endpoint: string, err: unknown, info: RefusalFields): Promise<MandateError> {
  const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'internal error', { cause: err })
  if (e.code === 'APPROVAL_REQUIRED') return e // recorded as approval.requested
  const fields: Record<string, JsonValue> = { endpoint, code: e.code, error: e.oauthError, description: e.message.slice(0, 300), ...info }
  if (info.agent === undefined && info.approver === undefined) {
    // nobody authenticated: bounded, so that anonymous traffic cannot grow the log at will
    const suppressed = ctx.unattributedRefusals.take()
    if (suppressed === undefined) return e
    if (suppressed > 0) fields.suppressed = suppressed
  }
  try {
    await ctx.audit.append('refusal', fields)
  } catch {
    // the refusal stands even if its audit record cannot be written; the caller sees the refusal
  }
  return e
}

/**
 * `tool_arguments`: JSON text; a text that parses but is over the argument limits (nesting,
 * members, elements: docs/protocol.md), or holds a number a double cannot hold exactly, is
 * ARGUMENTS_INVALID, as at the guards; text that is not JSON at all stays INVALID_REQUEST.
 */
function toolArguments(p: FormParams): JsonValue | undefined {
  try {
    return optJson(p, 'tool_arguments')
  } catch (err) {
    const inner = MandateError.is(err) && MandateError.is(err.cause) ? err.cause : undefined
    if (inner && typeof inner.detail?.limit === 'string') {
      const why = inner.detail?.limit === 'number' ? 'refused' : 'over the argument limits'
      throw new MandateError('ARGUMENTS_INVALID', `tool_arguments is ${why} (${inner.message})`, { cause: inner })
    }
    throw err
  }
}
