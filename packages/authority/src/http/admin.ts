/** Admin JSON endpoints: principals, revocations, key rotation; guard call reports; audit queries (export and verify: audit.ts). */
import { MandateError, type CallReport, type JsonObject } from '@mandate/core'
import type { Hono } from 'hono'
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
  for (const action of ['disable', 'enable'] as const) {
    app.post(`${admin}/agents/:did/${action}`, async (c) => {
      try {
        const who = await principal(c, authority, ['admin'])
        const body = await readJson(c)
        only(body, ['reason'])
        if (body.reason !== undefined && typeof body.reason !== 'string') throw new MandateError('INVALID_REQUEST', 'reason must be a string')
        const meta = { by: who.did, ...(body.reason !== undefined ? { reason: body.reason } : {}) }
        const did = c.req.param('did') as string
        return c.json(action === 'disable' ? await authority.disableAgent(did, meta) : await authority.enableAgent(did, meta), 200, NO_STORE)
      } catch (err) {
        return send(c, jsonErrorAnswer(err))
      }
    })
  }
  app.post(`${admin}/revocations`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      const body = await readJson(c)
      only(body, ['mandate', 'txn', 'agent', 'reason', 'preemptive'])
      const { reason, preemptive, ...target } = body
      if (reason !== undefined && typeof reason !== 'string') throw new MandateError('INVALID_REQUEST', 'reason must be a string')
      if (preemptive !== undefined && typeof preemptive !== 'boolean') throw new MandateError('INVALID_REQUEST', 'preemptive must be a boolean')
      // unknown target: 404 NOT_FOUND unless preemptive is true
      const result = await authority.revoke(target as unknown as RevocationTarget, { by: who.did, ...(reason !== undefined ? { reason } : {}), ...(preemptive !== undefined ? { preemptive } : {}) })
      return c.json(result, 200, NO_STORE)
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
      // reportCall admits the reporter again (role, status, an agent only for its own calls)
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
}
