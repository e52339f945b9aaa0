/** Admin JSON endpoints: principals, revocations, key rotation; guard call reports; audit queries. */
import { MandateError, type CallReport, type JsonObject } from '@mandate/core'
import type { Hono } from 'hono'
import { stream } from 'hono/streaming'
import type { Authority } from '../authority.js'
import type { RevocationTarget } from '../revocation/revoke.js'
import type { AuditQuery, RegisterAgentInput } from '../types.js'
import { principal } from './auth.js'
import { readJson } from './body.js'
import { jsonErrorAnswer, NO_STORE } from './errors.js'
import { send } from './oauth.js'

function only(body: JsonObject, allowed: string[]): void {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw new MandateError('INVALID_REQUEST', `unknown member "${k.slice(0, 32)}"`)
}

function msParam(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  if (!/^[0-9]{1,15}$/.test(v)) throw new MandateError('INVALID_REQUEST', `${name} must be milliseconds since the epoch`)
  return Number(v)
}

export function mountAdmin(app: Hono, authority: Authority): void {
  const admin = new URL(authority.endpoints.admin).pathname
  const audit = new URL(authority.endpoints.audit).pathname

  app.post(`${admin}/agents`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      const body = await readJson(c)
      only(body, ['did', 'name', 'owner', 'role', 'metadata'])
      const agent = await authority.registerAgent(body as unknown as RegisterAgentInput, { by: who.did })
      return c.json(agent, 201, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.get(`${admin}/agents`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      return c.json({ agents: await authority.listAgents() }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.post(`${admin}/agents/:did/disable`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      const body = await readJson(c)
      only(body, ['reason'])
      const reason = typeof body.reason === 'string' ? body.reason : undefined
      return c.json(await authority.disableAgent(c.req.param('did') as string, { by: who.did, ...(reason ? { reason } : {}) }), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.post(`${admin}/revocations`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      const body = await readJson(c)
      only(body, ['mandate', 'txn', 'agent', 'reason'])
      const { reason, ...target } = body
      if (reason !== undefined && typeof reason !== 'string') throw new MandateError('INVALID_REQUEST', 'reason must be a string')
      const revoked = await authority.revoke(target as unknown as RevocationTarget, { by: who.did, ...(reason !== undefined ? { reason } : {}) })
      return c.json({ revoked }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.post(`${admin}/keys/rotate`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      return c.json(await authority.rotateSigningKey({ by: who.did }), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  app.post(`${audit}/reports`, async (c) => {
    try {
      const who = await principal(c, authority, ['resource', 'admin', 'agent'])
      const body = await readJson(c)
      only(body, ['mandateId', 'txn', 'tool', 'audience', 'argumentsDigest', 'decision', 'outcome', 'errorCode', 'actorChain', 'subject'])
      const report = body as unknown as CallReport
      if (who.role === 'agent' && (!Array.isArray(report.actorChain) || report.actorChain[report.actorChain.length - 1] !== who.did)) {
        throw new MandateError('ACCESS_DENIED', 'an agent can report only its own calls')
      }
      const rec = await authority.reportCall(report, { reporter: who.did })
      return c.json({ seq: rec.seq, hash: rec.hash }, 201, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  const query = (q: Record<string, string | undefined>): AuditQuery => {
    const out: AuditQuery = {}
    for (const k of ['txn', 'agent', 'subject'] as const) if (q[k] !== undefined) out[k] = q[k] as string
    const since = msParam(q.since, 'since')
    const until = msParam(q.until, 'until')
    const limit = msParam(q.limit, 'limit')
    if (since !== undefined) out.since = since
    if (until !== undefined) out.until = until
    if (limit !== undefined) out.limit = Math.min(limit, 10_000)
    return out
  }
  app.get(audit, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      return c.json({ records: await authority.audit.query(query(c.req.query())) }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.get(`${audit}/export`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      const q = query(c.req.query())
      delete q.limit
      c.header('Content-Type', 'application/x-ndjson')
      c.header('Cache-Control', 'no-store')
      return stream(c, async (s) => {
        for await (const line of authority.audit.exportJsonl(q)) await s.write(line)
      })
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.get(`${audit}/verify`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      return c.json(await authority.audit.verify(), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
}
