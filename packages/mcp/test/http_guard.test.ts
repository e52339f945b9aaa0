// Streamable HTTP on 127.0.0.1, driven by the real SDK Client, against the real in-process
// @mandate/authority (grant, per-call RFC 8693 exchange, revocation source, hash-chained audit log):
// allowed calls pass, and every attack is refused at the HTTP layer (401/403 + DPoP challenge)
// before any handler runs; each guarded call lands in the Authority's audit log without a token.
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { argumentsDigest, createNonceSource, createProof, type AuthorityClient, type Ed25519Key, MandateError, type MandateErrorCode } from '@mandate/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMandateHttpTransport, discoverProtectedResource } from '../src/index.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'
import { createTestAuthority, SUBJECT, type TestAuthority } from './helpers/authority.js'
import { COMPACT_JWS } from './helpers/compact_jws.js'

type Tamper = (url: string | URL, init: RequestInit) => RequestInit | Promise<RequestInit>
const OTHER = 'http://127.0.0.1:1/other-mcp'

let world: TestAuthority
let server: RunningServer
let agent: Ed25519Key
let rootJti: string
let rootTxn: string
let mandate: string
let tamper: Tamper | undefined
const seen: { url: string; headers: Headers; body: string }[] = []

function connect(opts: { mandate?: string; client?: AuthorityClient } = {}) {
  const transport = createMandateHttpTransport(server.url, {
    authority: opts.client ?? world.clientFor(agent),
    key: agent,
    mandate: opts.mandate ?? mandate,
    fetch: async (url, init) => {
      const final = tamper && init?.headers && new Headers(init.headers).has('authorization') ? await tamper(url, init) : (init ?? {})
      if (typeof final.body === 'string') seen.push({ url: String(url), headers: new Headers(final.headers), body: final.body })
      return fetch(url, final)
    },
  })
  const client = new Client({ name: 'test-agent', version: '1.0.0' })
  return { client, transport, ready: client.connect(transport) }
}

async function refused(p: Promise<unknown>, code: MandateErrorCode): Promise<MandateError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), `expected ${code}, got ${String(err)}`).toBe(true)
  expect((err as MandateError).code).toBe(code)
  return err as MandateError
}

/** Rewrite the body, then (as a confused holder of the key would) sign a fresh proof for the new body. */
function withBody(url: string | URL, init: RequestInit, edit: (msg: { params: { name: string; arguments: Record<string, unknown> } }) => void): RequestInit {
  const msg = JSON.parse(init.body as string)
  edit(msg)
  const h = new Headers(init.headers)
  h.set('dpop', createProof(agent, { method: 'POST', url: String(url), accessToken: h.get('authorization')!.slice(5), tool: msg.params.name, arguments: msg.params.arguments }))
  return { ...init, headers: h, body: JSON.stringify(msg) }
}

beforeAll(async () => {
  world = await createTestAuthority()
  server = await startHttpServer(world)
  agent = await world.agent('orchestrator')
  const g = await world.grant(agent, { audiences: [server.url, OTHER], scopes: ['tools:read', 'tools:write'], tools: [{ type: 'tool_access', tools: ['echo', 'add', 'refund', 'search'] }] })
  mandate = g.token
  rootJti = g.jti
  rootTxn = g.txn
})
afterAll(async () => {
  await server.close()
  await world.close()
})
afterEach(() => {
  tamper = undefined
})

describe('guarded MCP server over Streamable HTTP', () => {
  it('publishes RFC 9728 metadata that the client validates', async () => {
    const prm = await discoverProtectedResource(server.url, { issuer: world.issuer })
    expect(prm).toMatchObject({ resource: server.url, authorization_servers: [world.issuer], dpop_bound_access_tokens_required: true })
    expect(prm.dpop_signing_alg_values_supported).toContain('EdDSA')
    await refused(discoverProtectedResource(server.url, { issuer: 'http://evil.test' }), 'ISSUER_MISMATCH')
  })

  it('allows calls, one session, a fresh credential per call; tools/list needs none', async () => {
    const { client, transport, ready } = connect()
    await ready
    const sessions = server.handler.sessions
    const tools = await client.listTools()
    expect(tools.tools.map((t) => t.name).sort()).toEqual(['add', 'echo', 'refund', 'search'])
    const before = server.log.count
    const r1 = await client.callTool({ name: 'echo', arguments: { text: 'hi' } })
    const r2 = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })
    const r3 = await client.callTool({ name: 'echo', arguments: { text: 'again' } })
    expect(r1.content).toEqual([{ type: 'text', text: 'echo:hi' }])
    expect(r2.content).toEqual([{ type: 'text', text: '5' }])
    expect(r3.isError).toBeFalsy()
    expect(server.log.count - before).toBe(3)
    const calls = server.log.calls.slice(-3)
    expect(new Set(calls.map((c) => c.call.mandateId)).size).toBe(3)
    expect(calls.every((c) => c.call.callBound && c.call.subject === SUBJECT && c.call.actor === agent.did)).toBe(true)
    // the handler sees the request's headers (the SDK's extra.requestInfo), never the credential or its proof
    const headerNames = calls[0]?.headerNames ?? []
    expect(headerNames).toContain('mcp-session-id')
    expect(headerNames).not.toContain('authorization')
    expect(headerNames).not.toContain('dpop')
    expect(calls[0]?.call.ancestors).toEqual([rootJti])
    expect(server.handler.sessions).toBe(sessions)
    expect(transport.sessionId).toBeDefined()
    // the Authority issued each credential (one exchange per call) and holds one report per call
    const log = await world.authority.audit.query({ txn: rootTxn })
    const jtis = calls.map((c) => c.call.mandateId)
    const issued = log.filter((r) => r.type === 'exchange' && r.fields.operation === 'call').map((r) => r.fields.jti)
    expect(issued).toEqual(expect.arrayContaining(jtis))
    const reports = log.filter((r) => r.type === 'call.report' && jtis.includes(r.fields.jti as string))
    expect(reports).toHaveLength(3)
    for (const r of reports) {
      expect(r.fields).toMatchObject({ decision: 'allowed', outcome: 'success', subject: SUBJECT, actors: [agent.did], agent: agent.did, audience: server.url, reporter: world.resource.did })
    }
    expect(reports.map((r) => r.fields.args)).toEqual([argumentsDigest({ text: 'hi' }), argumentsDigest({ a: 2, b: 3 }), argumentsDigest({ text: 'again' })])
    await client.close()
  })

  describe('refusals (handler never runs)', () => {
    let client: Client
    beforeAll(async () => {
      const c = connect()
      await c.ready
      client = c.client
    })
    afterAll(async () => client.close())

    /** `status`: the server's HTTP answer; undefined when the Authority refused to issue (nothing was sent). */
    async function expectRefused(call: Promise<unknown>, code: MandateErrorCode, status: number | undefined) {
      const before = server.log.count
      const err = await refused(call, code)
      expect(err.detail?.status).toBe(status)
      expect(server.log.count).toBe(before)
      return err
    }

    it('replayed proof and credential', async () => {
      await client.callTool({ name: 'echo', arguments: { text: 'first' } })
      const captured = seen.filter((s) => s.headers.has('dpop')).at(-1)!
      tamper = (_u, init) => {
        const h = new Headers(init.headers)
        h.set('authorization', captured.headers.get('authorization')!)
        h.set('dpop', captured.headers.get('dpop')!)
        return { ...init, headers: h }
      }
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'first' } }), 'PROOF_REPLAYED', 401)
    })

    it('credential for another tool', async () => {
      tamper = (u, init) => withBody(u, init, (m) => ((m.params.name = 'add'), (m.params.arguments = { a: 1, b: 2 })))
      // the wrapper minted for echo{text}; the body now calls add: the credential's call binding refuses it
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'TOOL_NOT_ALLOWED', 403)
    })

    it('credential for another server (audience)', async () => {
      const other = await world.clientFor(agent).callCredential({ mandate, audience: OTHER, tool: 'echo', arguments: { text: 'x' } })
      if (other.status !== 'issued') throw new Error('not issued')
      tamper = (url, init) => {
        const h = new Headers(init.headers)
        h.set('authorization', `DPoP ${other.token}`)
        h.set('dpop', createProof(agent, { method: 'POST', url: String(url), accessToken: other.token, tool: 'echo', arguments: { text: 'x' } }))
        return { ...init, headers: h }
      }
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'AUDIENCE_MISMATCH', 401)
    })

    it('changed arguments', async () => {
      tamper = (u, init) => withBody(u, init, (m) => (m.params.arguments = { text: 'changed' }))
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'original' } }), 'ARGUMENTS_MISMATCH', 403)
    })

    it('no proof, and no Bearer downgrade', async () => {
      tamper = (_u, init) => {
        const h = new Headers(init.headers)
        h.delete('dpop')
        return { ...init, headers: h }
      }
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'PROOF_MISSING', 401)
      tamper = (_u, init) => {
        const h = new Headers(init.headers)
        h.set('authorization', h.get('authorization')!.replace(/^DPoP /, 'Bearer '))
        return { ...init, headers: h }
      }
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'PROOF_MISSING', 401)
    })

    it('a proof for another URL (htu)', async () => {
      tamper = (url, init) => {
        const h = new Headers(init.headers)
        h.set('dpop', createProof(agent, { method: 'POST', url: String(url).replace('/mcp', '/other'), accessToken: h.get('authorization')!.slice(5), tool: 'echo', arguments: { text: 'x' } }))
        return { ...init, headers: h }
      }
      await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'PROOF_INVALID', 401)
    })

    it('expired credential', async () => {
      // the Authority's clock runs 400 s behind: what it issues (≤ 60 s) is already expired at the guard
      // refusals reach the Authority from a queue after they are answered: let it drain before the
      // Authority's clock moves (a report sent meanwhile would carry a client assertion "from the future")
      let last = -1
      for (let n = (await world.reports()).length, i = 0; i < 100 && n !== last; i++) {
        last = n
        await new Promise((r) => setTimeout(r, 50))
        n = (await world.reports()).length
      }
      world.offset = -400
      try {
        const old = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
        // 'key' authentication: a wall-clock client assertion would be "from the future" for this Authority
        const c = connect({ mandate: old.token, client: world.clientFor(agent, { authentication: 'key' }) })
        await c.ready
        try {
          await expectRefused(c.client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'TOKEN_EXPIRED', 401)
        } finally {
          await c.client.close()
        }
      } finally {
        world.offset = 0
      }
    })

    it('missing scope declared by the tool: 403 insufficient_scope', async () => {
      const narrow = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['refund'] }] })
      const c = connect({ mandate: narrow.token })
      await c.ready
      const err = await expectRefused(c.client.callTool({ name: 'refund', arguments: { amount: 5 } }), 'INSUFFICIENT_SCOPE', 403)
      expect(err.detail?.scope).toBe('tools:write')
      await c.client.close()
    })

    it('revoked ancestor (the root task mandate)', async () => {
      const g = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      const c = connect({ mandate: g.token })
      await c.ready
      await c.client.callTool({ name: 'echo', arguments: { text: 'before' } })
      // the credential is minted first, then the root is revoked at the Authority: the guard must still refuse it
      tamper = async (_u, init) => {
        await world.revoke({ mandate: g.jti })
        return init
      }
      await expectRefused(c.client.callTool({ name: 'echo', arguments: { text: 'after' } }), 'REVOKED', 401)
      // and the Authority itself now refuses to issue from it
      await expectRefused(c.client.callTool({ name: 'echo', arguments: { text: 'later' } }), 'REVOKED', undefined)
      await c.client.close()
    })

    it('a schema default cannot bypass a constraint: the guard checks the raw signed arguments', async () => {
      // `search` declares limit ≤ 100 and its zod schema defaults limit to 1000. The mandate does not
      // constrain limit, so the Authority issues a credential for { query } alone; the guard refuses it
      // because the constrained argument is absent, before zod would fill in 1000.
      const err = await expectRefused(client.callTool({ name: 'search', arguments: { query: 'q' } }), 'CONSTRAINT_VIOLATED', 403)
      expect(err.message).toMatch(/limit/)
      const ok = await client.callTool({ name: 'search', arguments: { query: 'q', limit: 50 } })
      expect(ok.content).toEqual([{ type: 'text', text: 'search:q:50' }])
      // a mandate constraint on the defaulted argument: the Authority will not even issue the credential
      const g = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['search'], constraints: { limit: { type: 'max', value: 10 } } }] })
      const c = connect({ mandate: g.token })
      await c.ready
      await expectRefused(c.client.callTool({ name: 'search', arguments: { query: 'q' } }), 'NARROWING_CONSTRAINT', undefined)
      await c.client.close()
    })

    it("refusals are in the Authority's audit log, attributed, without tokens; the chain verifies", async () => {
      // refusals are recorded off the request path: wait (bounded) for the queue to reach the Authority
      const attributed = ['PROOF_REPLAYED', 'TOOL_NOT_ALLOWED', 'ARGUMENTS_MISMATCH', 'PROOF_MISSING', 'PROOF_INVALID', 'INSUFFICIENT_SCOPE', 'REVOKED', 'CONSTRAINT_VIOLATED']
      let refusedReports = (await world.reports()).filter((r) => r.fields.decision === 'refused')
      for (let i = 0; i < 200 && !attributed.every((c) => refusedReports.some((r) => r.fields.error === c)); i++) {
        await new Promise((r) => setTimeout(r, 25))
        refusedReports = (await world.reports()).filter((r) => r.fields.decision === 'refused')
      }
      expect(refusedReports.map((r) => r.fields.error)).toEqual(expect.arrayContaining(attributed))
      // a credential the guard did not accept for this resource (another audience, expired) is not
      // attributed to anyone, so it never reaches the Authority's log
      expect(refusedReports.map((r) => r.fields.error)).not.toContain('AUDIENCE_MISMATCH')
      expect(refusedReports.map((r) => r.fields.error)).not.toContain('TOKEN_EXPIRED')
      // attributed to the verified credential (subject, task, actor), reported by the MCP server
      for (const r of refusedReports) expect(r.fields).toMatchObject({ subject: SUBJECT, agent: agent.did, reporter: world.resource.did, audience: server.url })
      // the Bearer downgrade is recorded too (the presented credential, refused for its missing proof)
      expect(refusedReports.filter((r) => r.fields.error === 'PROOF_MISSING').length).toBeGreaterThanOrEqual(2)
      // the Authority refused the exchanges from the revoked root and the constrained mandate itself
      const authorityRefusals = await world.authority.audit.query({ type: 'refusal' })
      expect(authorityRefusals.map((r) => r.fields.code)).toEqual(expect.arrayContaining(['REVOKED', 'NARROWING_CONSTRAINT']))
      const all = await world.authority.audit.query()
      expect(JSON.stringify(all)).not.toMatch(COMPACT_JWS) // no token, credential or proof anywhere in the log
      await expect(world.authority.audit.verify()).resolves.toMatchObject({ ok: true })
    })
  })

  it('never sends a credential to another URL', async () => {
    const { createMandateFetch } = await import('../src/index.js')
    let sent = 0
    const f = createMandateFetch({ serverUrl: server.url, authority: world.clientFor(agent), key: agent, mandate, fetch: async () => (sent++, new Response('{}')) })
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } })
    await refused(f(server.url.replace('/mcp', '/elsewhere'), { method: 'POST', body }), 'AUDIENCE_MISMATCH')
    await refused(f('http://evil.test/mcp', { method: 'POST', body }), 'AUDIENCE_MISMATCH')
    expect(sent).toBe(0)
  })
})

describe('DPoP nonce and approvals', () => {
  it('retries once with the server nonce (use_dpop_nonce)', async () => {
    const a = await createTestAuthority()
    const s = await startHttpServer(a, { nonce: createNonceSource() })
    const k = await a.agent('agent')
    const g = await a.grant(k, { audiences: [s.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const statuses: number[] = []
    const transport = createMandateHttpTransport(s.url, {
      authority: a.clientFor(k), key: k, mandate: g.token,
      fetch: async (u, i) => {
        const r = await fetch(u, i)
        if (new Headers(i?.headers).has('dpop')) statuses.push(r.status)
        return r
      },
    })
    const client = new Client({ name: 't', version: '1' })
    await client.connect(transport)
    await client.callTool({ name: 'echo', arguments: { text: '1' } })
    await client.callTool({ name: 'echo', arguments: { text: '2' } })
    expect(statuses).toEqual([401, 200, 200]) // one nonce challenge, then the remembered nonce works
    expect(s.log.count).toBe(2)
    // the nonce challenge is a refusal the Authority's log records too (off the request path)
    for (let i = 0; i < 200 && (await a.reports({ txn: g.txn })).length < 3; i++) await new Promise((r) => setTimeout(r, 25))
    // (the refusal's record may land after the retried call's: it is written from a queue)
    expect((await a.reports({ txn: g.txn })).map((r) => `${r.fields.decision}:${r.fields.error ?? r.fields.outcome}`).sort()).toEqual(['allowed:success', 'allowed:success', 'refused:NONCE_REQUIRED'])
    await client.close()
    await s.close()
    await a.close()
  })

  it("approval 'throw': the same call made again redeems the approval it opened (one approval, no second request)", async () => {
    const a = await createTestAuthority({ policy: [{ effect: 'require_approval', tool: 'refund', on: 'call' }] })
    const s = await startHttpServer(a)
    const k = await a.agent('agent')
    const g = await a.grant(k, { audiences: [s.url], scopes: ['tools:read', 'tools:write'], tools: [{ type: 'tool_access', tools: ['refund'] }] })
    const c = new Client({ name: 't', version: '1' })
    await c.connect(createMandateHttpTransport(s.url, { authority: a.clientFor(k), key: k, mandate: g.token }))
    const first = await refused(c.callTool({ name: 'refund', arguments: { amount: 10 } }), 'APPROVAL_REQUIRED')
    const id = first.detail?.approval_id as string
    // not decided yet: the same approval again, nothing new opened, nothing ran
    const still = await refused(c.callTool({ name: 'refund', arguments: { amount: 10 } }), 'APPROVAL_REQUIRED')
    expect(still.detail?.approval_id).toBe(id)
    expect((await a.authority.approvals.list({ status: 'pending' })).map((v) => v.id)).toEqual([id])
    // other arguments are another call: they need their own approval
    const other = await refused(c.callTool({ name: 'refund', arguments: { amount: 11 } }), 'APPROVAL_REQUIRED')
    expect(other.detail?.approval_id).not.toBe(id)
    expect(s.log.count).toBe(0)
    await a.authority.approvals.approve(id, { approver: a.approver.did })
    const res = await c.callTool({ name: 'refund', arguments: { amount: 10 } })
    expect(res.content).toEqual([{ type: 'text', text: 'refunded 10' }])
    expect(s.log.calls.at(-1)?.call.approval?.id).toBe(id)
    expect(s.log.count).toBe(1)
    await c.close()
    await s.close()
    await a.close()
  })

  it('surfaces approval_required as a typed error, or waits for the decision', async () => {
    const a = await createTestAuthority({ policy: [{ effect: 'require_approval', tool: 'refund', on: 'call' }] })
    const s = await startHttpServer(a)
    const k = await a.agent('agent')
    const g = await a.grant(k, { audiences: [s.url], scopes: ['tools:read', 'tools:write'], tools: [{ type: 'tool_access', tools: ['refund'] }] })
    const c1 = new Client({ name: 't', version: '1' })
    await c1.connect(createMandateHttpTransport(s.url, { authority: a.clientFor(k), key: k, mandate: g.token }))
    const err = await refused(c1.callTool({ name: 'refund', arguments: { amount: 10 } }), 'APPROVAL_REQUIRED')
    expect(typeof err.detail?.approval_id).toBe('string')
    expect(s.log.count).toBe(0)

    const c2 = new Client({ name: 't', version: '1' })
    await c2.connect(createMandateHttpTransport(s.url, { authority: a.clientFor(k), key: k, mandate: g.token, approval: 'wait' }))
    const refusals = async () => (await a.authority.audit.query({ type: 'refusal' })).length
    const before = await refusals()
    const pending = c2.callTool({ name: 'refund', arguments: { amount: 10 } })
    // the same request again is answered with the approval already pending, not a new one
    for (let i = 0; i < 200 && (await refusals()) === before; i++) await new Promise((r) => setTimeout(r, 10))
    const open = await a.authority.approvals.list({ status: 'pending' })
    expect(open.map((v) => v.id)).toEqual([err.detail?.approval_id])
    const id = open[0]?.id
    await a.authority.approvals.approve(id as string, { approver: a.approver.did })
    const res = await pending
    expect(res.content).toEqual([{ type: 'text', text: 'refunded 10' }])
    expect(s.log.calls.at(-1)?.call.approval?.id).toBe(id)
    expect(s.log.count).toBe(1)
    await c1.close()
    await c2.close()
    await s.close()
    await a.close()
  })
})
