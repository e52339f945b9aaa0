/** Admin JSON endpoints: principals, revocations, key rotation, federation rules; guard call reports; audit queries (export and verify: audit.ts). */
import { MandateError, type CallReport, type JsonObject } from '@mandate/core'
import type { Hono } from 'hono'
import type { Authority } from '../authority.js'
import type { RevocationTarget } from '../revocation/revoke.js'
import type { RegisterAgentInput, RevocationEntry } from '../types.js'
import { parseAuditFilter, parseRevocationFilter, readAuditPage } from './audit_query.js'
import { principal } from './auth.js'
import { readJson, strictQueries } from './body.js'
import { jsonErrorAnswer, NO_STORE } from './errors.js'
import { send } from './oauth.js'
import type { ListedFederationRule } from '../federation/registry.js'

/** Most characters of a foreign token `POST /admin/federation/test` reads (larger tokens are refused by the grant too). */
const MAX_TEST_TOKEN = 16 * 1024

/** A listed rule as the admin API shows it: the rule's members, then where it comes from. */
function ruleView(l: ListedFederationRule): Record<string, unknown> {
  return {
    ...l.rule, source: l.source,
    ...(l.createdAt !== undefined ? { createdAt: l.createdAt } : {}),
    ...(l.createdBy !== undefined ? { createdBy: l.createdBy } : {}),
    ...(l.inactive !== undefined ? { inactive: l.inactive } : {}),
  }
}

function only(body: JsonObject, allowed: string[]): void {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw new MandateError('INVALID_REQUEST', `unknown member "${k.slice(0, 32)}"`)
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
  // the revocation entries with when, why and by whom, oldest first; `after` is the seq cursor of
  // the revocation-status document (`next` when more may follow)
  app.get(`${admin}/revocations`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      const f = parseRevocationFilter(strictQueries(c))
      const revocations: RevocationEntry[] = []
      let after = f.after
      let scanned = 0
      for (;;) {
        const page = await authority.store.revocationsSince(after, 1000)
        for (const e of page) {
          const wanted = f.kind === undefined || e.kind === f.kind
          if (wanted && revocations.length === f.limit) return c.json({ revocations, next: String(after) }, 200, NO_STORE)
          if (wanted) revocations.push(e)
          after = e.seq
          scanned++
        }
        if (page.length < 1000) return c.json({ revocations }, 200, NO_STORE)
        if (scanned >= 20_000) break
      }
      return c.json({ revocations, next: String(after) }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  // store health for operators (`mandate doctor`): the store answers reads; the Authority's clock
  app.get(`${admin}/health`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      const started = Date.now()
      const [head, revocationHead] = await Promise.all([authority.store.auditHead(), authority.store.revocationHead()])
      return c.json({ ok: true, store: { ok: true, ms: Date.now() - started }, audit: { head: head?.seq ?? 0 }, revocations: { head: revocationHead }, time: new Date().toISOString() }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  // webhook delivery status for operators: per endpoint (no secret; URL origin only) pending,
  // delivered and failed counts, last success and failure, and the recent failed messages
  app.get(`${admin}/notifications`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      for (const k of Object.keys(strictQueries(c))) throw new MandateError('INVALID_REQUEST', `unknown parameter "${k.slice(0, 32)}"`)
      return c.json(await authority.notificationStatus(), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.post(`${admin}/keys/rotate`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      // no options: an empty body or {} (a member here would be a misunderstanding, not a request)
      only(await readJson(c), [])
      return c.json(await authority.rotateSigningKey({ by: who.did }), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  // federation rules: config rules are listed (read-only), store rules added and removed here
  app.get(`${admin}/federation/rules`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      for (const k of Object.keys(strictQueries(c))) throw new MandateError('INVALID_REQUEST', `unknown parameter "${k.slice(0, 32)}"`)
      return c.json({ rules: (await authority.federation.list()).map(ruleView) }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.post(`${admin}/federation/rules`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      const added = await authority.federation.add(await readJson(c), who.did)
      return c.json(ruleView(added), 201, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  app.delete(`${admin}/federation/rules/:id`, async (c) => {
    try {
      const who = await principal(c, authority, ['admin'])
      await authority.federation.remove(c.req.param('id') as string, who.did)
      return c.body(null, 204, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
  // which rule a foreign token matches and why not the others; issues nothing, never echoes the token
  app.post(`${admin}/federation/test`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      const body = await readJson(c)
      only(body, ['token', 'nonce'])
      if (typeof body.token !== 'string' || body.token.length === 0 || body.token.length > MAX_TEST_TOKEN) throw new MandateError('INVALID_REQUEST', `token must be a compact JWT of at most ${MAX_TEST_TOKEN} characters`)
      if (body.nonce !== undefined && (typeof body.nonce !== 'string' || body.nonce.length > 512)) throw new MandateError('INVALID_REQUEST', 'nonce must be a string of at most 512 characters')
      return c.json(await authority.explainFederation(body.token, body.nonce), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  app.post(`${audit}/reports`, async (c) => {
    try {
      const who = await principal(c, authority, ['resource', 'admin', 'agent'])
      const body = await readJson(c)
      only(body, ['mandateId', 'txn', 'tool', 'audience', 'argumentsDigest', 'decision', 'outcome', 'errorCode', 'actorChain', 'subject', 'offlineHops', 'offlineChain'])
      const report = body as unknown as CallReport
      // reportCall admits the reporter again (role, status, an agent only for its own calls)
      const rec = await authority.reportCall(report, { reporter: who.did })
      return c.json({ seq: rec.seq, hash: rec.hash }, 201, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  app.get(audit, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      // strict: an unknown, repeated or malformed parameter is refused, never ignored (audit_query.ts)
      return c.json(await readAuditPage(authority, parseAuditFilter(strictQueries(c))), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
}
