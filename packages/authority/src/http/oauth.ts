/** RFC 8414 metadata, JWKS, token (RFC 8693), introspection (RFC 7662), revocation (RFC 7009), revocation status. */
import { MandateError } from '@mandate/core'
import type { Context, Hono } from 'hono'
import type { Authority } from '../authority.js'
import { readForm, singleJwtHeader, strictQueries } from './body.js'
import { formErrorAnswer, invalidClientChallenge, jsonErrorAnswer, NO_STORE, tokenErrorAnswer, type ErrorAnswer } from './errors.js'
import { noteRequest } from '../observability/request_info.js'
import type { RefusalFields } from '../exchange/issued.js'

export function send(c: Context, a: ErrorAnswer): Response {
  // the request log names the refusal by its code
  if (typeof a.body.mandate_code === 'string') noteRequest(c.req.raw, { code: a.body.mandate_code })
  return c.json(a.body, a.status as 400, a.headers)
}

/** The principal an operation authenticated (filled in by the Authority), for the request log. */
function notePrincipal(c: Context, info: RefusalFields): void {
  if (typeof info.agent === 'string') noteRequest(c.req.raw, { principal: info.agent })
}

/**
 * RFC 6749 §2.3: a client uses one authentication method per request. An Authorization header
 * next to a client assertion in the body is refused, as at the token endpoint (a header alone is
 * answered `invalid_client` with a challenge naming its scheme).
 */
function assertOneClientAuthentication(c: Context, params: { one(name: string): string | undefined }): void {
  if (c.req.header('authorization') !== undefined && params.one('client_assertion') !== undefined) {
    throw new MandateError('INVALID_REQUEST', 'use exactly one client authentication method (private_key_jwt in the body), not an Authorization header as well')
  }
}

/** The scheme of the request's Authorization header, if it has one (for an RFC 6749 §5.2 challenge). */
function usedScheme(c: Context): string | undefined {
  const h = c.req.header('authorization')
  return h === undefined ? undefined : h.trim().split(/\s/, 1)[0]
}

export function mountOAuth(app: Hono, authority: Authority, now: () => number): void {
  const e = authority.endpoints
  const metaPath = new URL(e.metadata).pathname
  app.get(metaPath, (c) => c.json(authority.metadata(), 200, { 'Cache-Control': 'public, max-age=300' }))
  const jwksPath = new URL(e.jwks).pathname
  app.get(jwksPath, (c) => c.json(authority.jwks(), 200, { 'Cache-Control': 'public, max-age=60', 'Content-Type': 'application/jwk-set+json' }))

  app.post(new URL(e.token).pathname, async (c) => {
    const info: RefusalFields = {}
    try {
      const dpop = singleJwtHeader(c, 'dpop')
      const params = await readForm(c)
      // RFC 6749 §2.3/§5.2: a header next to a body assertion is two methods (400); a header alone
      // is a method this Authority does not take: 401 invalid_client, challenging the scheme used
      assertOneClientAuthentication(c, params)
      if (c.req.header('authorization') !== undefined) {
        throw new MandateError('INVALID_CLIENT', 'this Authority authenticates clients with private_key_jwt (client_assertion in the body), not an Authorization header')
      }
      const res = await authority.token(params, dpop !== undefined ? { dpop } : {}, info)
      notePrincipal(c, info)
      const headers: Record<string, string> = { ...NO_STORE }
      const nonce = authority.dpopNonce()
      if (nonce) headers['DPoP-Nonce'] = nonce
      return c.json(res, 200, headers)
    } catch (err) {
      notePrincipal(c, info)
      const nonce = authority.dpopNonce()
      const answer = tokenErrorAnswer(err, { approvalsUrl: e.approvals, nowSec: Math.floor(now() / 1000), ...(nonce ? { dpopNonce: nonce } : {}) })
      // a 401 invalid_client to a client that used an HTTP authentication scheme names that scheme (RFC 6749 §5.2)
      const challenge = answer.status === 401 ? invalidClientChallenge(usedScheme(c)) : undefined
      if (challenge) answer.headers = { ...answer.headers, 'WWW-Authenticate': challenge }
      return send(c, answer)
    }
  })

  app.post(new URL(e.introspection).pathname, async (c) => {
    try {
      const params = await readForm(c)
      assertOneClientAuthentication(c, params)
      const caller = await authority.authenticateForm(params, e.introspection)
      noteRequest(c.req.raw, { principal: caller.did })
      const token = params.required('token')
      return c.json(await authority.introspect(token, caller), 200, NO_STORE)
    } catch (err) {
      return send(c, formErrorAnswer(err, usedScheme(c)))
    }
  })

  app.post(new URL(e.revocation).pathname, async (c) => {
    try {
      const params = await readForm(c)
      assertOneClientAuthentication(c, params)
      const caller = await authority.authenticateForm(params, e.revocation)
      noteRequest(c.req.raw, { principal: caller.did })
      const token = params.required('token')
      const hint = params.one('token_type_hint')
      await authority.revokeToken(token, caller, hint)
      return c.body(null, 200, NO_STORE)
    } catch (err) {
      return send(c, formErrorAnswer(err, usedScheme(c)))
    }
  })

  app.get(new URL(e.revocationStatus).pathname, async (c) => {
    try {
      const since = strictQueries(c).since
      if (since && since.length > 1) throw new MandateError('INVALID_REQUEST', 'since must not be repeated')
      const doc = await authority.revocationStatus(since?.[0])
      return c.json(doc, 200, { 'Cache-Control': `public, max-age=${Math.min(doc.refresh_interval ?? 5, 60)}` })
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
}
