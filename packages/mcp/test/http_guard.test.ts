// Streamable HTTP on 127.0.0.1, driven by the real SDK Client: allowed calls pass, and every attack is
// refused at the HTTP layer (401/403 + DPoP challenge) before any handler runs.
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createNonceSource, createProof, Ed25519Key, MandateError, type MandateErrorCode } from '@mandate/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMandateHttpTransport, discoverProtectedResource } from '../src/index.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'
import { LocalAuthority } from './helpers/local_authority.js'

type Tamper = (url: string | URL, init: RequestInit) => RequestInit
const OTHER = 'http://127.0.0.1:1/other-mcp'

let authority: LocalAuthority
let server: RunningServer
let agent: Ed25519Key
let rootJti: string
let mandate: string
let tamper: Tamper | undefined
const seen: { url: string; headers: Headers; body: string }[] = []

function connect(opts: { mandate?: string } = {}) {
  const transport = createMandateHttpTransport(server.url, {
    authority: authority.clientFor(agent),
    key: agent,
    mandate: opts.mandate ?? mandate,
    fetch: async (url, init) => {
      const final = tamper && init?.headers && new Headers(init.headers).has('authorization') ? tamper(url, init) : (init ?? {})
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
  authority = new LocalAuthority()
  server = await startHttpServer(authority)
  agent = Ed25519Key.generate()
  const g = authority.grant(agent, { audiences: [server.url, OTHER], scopes: ['tools:read', 'tools:write'], tools: [{ type: 'tool_access', tools: ['echo', 'add', 'refund'] }] })
  mandate = g.token
  rootJti = g.jti
})
afterAll(async () => server.close())
afterEach(() => {
  tamper = undefined
})

describe('guarded MCP server over Streamable HTTP', () => {
  it('publishes RFC 9728 metadata that the client validates', async () => {
    const prm = await discoverProtectedResource(server.url, { issuer: authority.issuer })
    expect(prm).toMatchObject({ resource: server.url, authorization_servers: [authority.issuer], dpop_bound_access_tokens_required: true })
    expect(prm.dpop_signing_alg_values_supported).toContain('EdDSA')
    await refused(discoverProtectedResource(server.url, { issuer: 'http://evil.test' }), 'ISSUER_MISMATCH')
  })

  it('allows calls, one session, a fresh credential per call; tools/list needs none', async () => {
    const { client, transport, ready } = connect()
    await ready
    const sessions = server.handler.sessions
    const tools = await client.listTools()
    expect(tools.tools.map((t) => t.name).sort()).toEqual(['add', 'echo', 'refund'])
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
    expect(calls.every((c) => c.call.callBound && c.call.subject === 'alice@example.com' && c.call.actor === agent.did)).toBe(true)
    expect(calls[0]?.call.ancestors).toEqual([rootJti])
    expect(server.handler.sessions).toBe(sessions)
    expect(transport.sessionId).toBeDefined()
    const allowed = authority.reports.filter((r) => r.decision === 'allowed')
    expect(allowed.length).toBeGreaterThanOrEqual(3)
    expect(JSON.stringify(authority.reports)).not.toMatch(/eyJ/) // no tokens in audit records
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

    async function expectRefused(call: Promise<unknown>, code: MandateErrorCode, status: number) {
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
      const other = await authority.clientFor(agent).callCredential({ mandate, audience: OTHER, tool: 'echo', arguments: { text: 'x' } })
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
      authority.offset = -400
      const old = authority.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      const c = connect({ mandate: old.token })
      await c.ready
      try {
        await expectRefused(c.client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'TOKEN_EXPIRED', 401)
      } finally {
        authority.offset = 0
        await c.client.close()
      }
    })

    it('missing scope declared by the tool: 403 insufficient_scope', async () => {
      const narrow = authority.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['refund'] }] })
      const c = connect({ mandate: narrow.token })
      await c.ready
      const err = await expectRefused(c.client.callTool({ name: 'refund', arguments: { amount: 5 } }), 'INSUFFICIENT_SCOPE', 403)
      expect(err.detail?.scope).toBe('tools:write')
      await c.client.close()
    })

    it('revoked ancestor (the root task mandate)', async () => {
      const g = authority.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      const c = connect({ mandate: g.token })
      await c.ready
      await c.client.callTool({ name: 'echo', arguments: { text: 'before' } })
      // mint the credential first, then revoke: the guard must still refuse it
      tamper = (_u, init) => {
        authority.revocations.revokeMandate(g.jti)
        return init
      }
      await expectRefused(c.client.callTool({ name: 'echo', arguments: { text: 'after' } }), 'REVOKED', 401)
      await c.client.close()
    })

    it('refusals are audited without tokens', () => {
      const refusedReports = authority.reports.filter((r) => r.decision === 'refused')
      expect(refusedReports.map((r) => r.errorCode)).toEqual(expect.arrayContaining(['PROOF_REPLAYED', 'TOOL_NOT_ALLOWED', 'AUDIENCE_MISMATCH', 'ARGUMENTS_MISMATCH', 'PROOF_MISSING', 'TOKEN_EXPIRED', 'REVOKED']))
      expect(JSON.stringify(refusedReports)).not.toMatch(/eyJ/)
    })
  })

  it('never sends a credential to another URL', async () => {
    const { createMandateFetch } = await import('../src/index.js')
    let sent = 0
    const f = createMandateFetch({ serverUrl: server.url, authority: authority.clientFor(agent), key: agent, mandate, fetch: async () => (sent++, new Response('{}')) })
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } })
    await refused(f(server.url.replace('/mcp', '/elsewhere'), { method: 'POST', body }), 'AUDIENCE_MISMATCH')
    await refused(f('http://evil.test/mcp', { method: 'POST', body }), 'AUDIENCE_MISMATCH')
    expect(sent).toBe(0)
  })
})

describe('DPoP nonce and approvals', () => {
  it('retries once with the server nonce (use_dpop_nonce)', async () => {
    const a = new LocalAuthority()
    const s = await startHttpServer(a, { nonce: createNonceSource() })
    const k = Ed25519Key.generate()
    const g = a.grant(k, { audiences: [s.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
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
    await client.close()
    await s.close()
  })

  it('surfaces approval_required as a typed error, or waits for the decision', async () => {
    const a = new LocalAuthority()
    a.approvalTools.add('refund')
    const s = await startHttpServer(a)
    const k = Ed25519Key.generate()
    const g = a.grant(k, { audiences: [s.url], scopes: ['tools:read', 'tools:write'], tools: [{ type: 'tool_access', tools: ['refund'] }] })
    const c1 = new Client({ name: 't', version: '1' })
    await c1.connect(createMandateHttpTransport(s.url, { authority: a.clientFor(k), key: k, mandate: g.token }))
    const err = await refused(c1.callTool({ name: 'refund', arguments: { amount: 10 } }), 'APPROVAL_REQUIRED')
    expect(typeof err.detail?.approval_id).toBe('string')
    expect(s.log.count).toBe(0)

    const c2 = new Client({ name: 't', version: '1' })
    await c2.connect(createMandateHttpTransport(s.url, { authority: a.clientFor(k), key: k, mandate: g.token, approval: 'wait' }))
    const pending = c2.callTool({ name: 'refund', arguments: { amount: 10 } })
    await new Promise((r) => setTimeout(r, 20))
    const id = [...a.approvals.entries()].find(([, v]) => v.status === 'pending' && v.waiters.length)?.[0]
    a.approve(id!)
    const res = await pending
    expect(res.content).toEqual([{ type: 'text', text: 'refunded 10' }])
    expect(s.log.calls.at(-1)?.call.approval?.id).toBe(id)
    await c1.close()
    await c2.close()
    await s.close()
  })
})
