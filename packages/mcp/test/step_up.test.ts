// Scope step-up (MCP authorization; RFC 6750 §3.1), against real guarded servers on 127.0.0.1
// (Streamable HTTP) and the real in-process Authority:
// - the guard answers a credential that lacks a tool's scope with 403 and
//   `WWW-Authenticate: DPoP error="insufficient_scope", scope="<all required>", resource_metadata="<PRM>"`;
// - the Mandate client (HTTP, and over stdio the `_meta` transport) answers that once with a fresh per-call credential for its scopes plus the
//   challenged ones; the Authority never issues a scope the mandate does not grant, which surfaces as
//   a typed INSUFFICIENT_SCOPE; a second refusal is never retried.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGuard, createProof, MandateError, type AuthorityClient, type CallCredentialParams, type Ed25519Key, type Guard } from '@mandate/core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { z } from 'zod'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMandateHttpTransport, createMcpHttpHandler, mandateErrorFrom, withMetaCredentials, type CallCredentialOptions, type GuardedMcpServer, type McpHttpHandler } from '../src/index.js'
import { challengeParams } from '../src/client/step_up.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'

const TOOLS = [{ type: 'tool_access' as const, tools: ['echo', 'refund', 'transfer'] }]
const ACCEPT = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

interface StepUpServer {
  url: string
  metadataUrl: string
  log: HandlerLog
  guard: Guard
  /** Every tools/call POST that reached the server: its tool and the credential it carried. */
  calls: { tool: string; authorization: string }[]
  close(): Promise<void>
}

/**
 * The helper tool server (echo needs tools:read, refund tools:write) plus `transfer`, which needs
 * tools:write and payments:send. `escalate` makes refund demand one more scope (tools:admin) from
 * its second call on: a server whose second answer is again a step-up challenge.
 */
async function startServer(world: TestAuthority, opts: { reusable?: boolean; escalate?: boolean; requiredScopes?: string[] } = {}): Promise<StepUpServer> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  const url = `${origin}/mcp`
  const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url, requireCallBinding: opts.reusable !== true, revocation: world.authority.revocationSource(), ...(opts.requiredScopes ? { requiredScopes: opts.requiredScopes } : {}) })
  const log: HandlerLog = { count: 0, calls: [] }
  const errors: Error[] = []
  let refunds = 0
  const handler: McpHttpHandler = createMcpHttpHandler({
    guard,
    createServer: () => {
      const s: GuardedMcpServer = createToolServer({ guard }, log)
      s.tool('transfer', { description: 'Transfer money', inputSchema: { to: z.string() }, scopes: ['tools:write', 'payments:send'] }, async ({ to }) => {
        log.count++
        return { content: [{ type: 'text', text: `sent to ${to}` }] }
      })
      if (opts.escalate) {
        const declared = s.requirements.bind(s)
        s.requirements = (tool) => (tool === 'refund' && refunds++ > 0 ? { scopes: ['tools:write', 'tools:admin'] } : declared(tool))
      }
      return s
    },
    onError: (e) => void errors.push(e),
  })
  const calls: StepUpServer['calls'] = []
  http.on('request', (req, res) => {
    // observe (not alter) what reaches the server: the tool of each tools/call and its credential
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      try {
        const msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { method?: string; params?: { name?: string } }
        if (msg.method === 'tools/call') calls.push({ tool: String(msg.params?.name), authorization: String(req.headers.authorization) })
      } catch {
        // not JSON: the handler answers it
      }
    })
    void handler(req, res)
  })
  return {
    url,
    metadataUrl: `${origin}/.well-known/oauth-protected-resource/mcp`,
    log,
    guard,
    calls,
    async close() {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
      if (errors.length) throw new AggregateError(errors, errors.map((e) => e.message).join('; '))
    },
  }
}

/** The agent's Authority client, recording the scopes each call-credential exchange asked for and how it ended. */
function recordingClient(inner: AuthorityClient, log: { tool: string; scopes: string[] | undefined; outcome: string }[]): AuthorityClient {
  return {
    ...inner,
    issuer: inner.issuer,
    delegate: (r) => inner.delegate(r),
    waitForApproval: (id, o) => inner.waitForApproval(id, o),
    ...(inner.audienceCredential ? { audienceCredential: (r) => (inner.audienceCredential as NonNullable<AuthorityClient['audienceCredential']>)(r) } : {}),
    async callCredential(r: CallCredentialParams) {
      const entry = { tool: r.tool, scopes: r.scopes ? [...r.scopes] : undefined, outcome: 'pending' }
      log.push(entry)
      try {
        const res = await inner.callCredential(r)
        entry.outcome = res.status
        return res
      } catch (err) {
        entry.outcome = MandateError.is(err) ? err.code : 'error'
        throw err
      }
    },
  }
}

async function refusal(p: Promise<unknown>): Promise<MandateError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), `expected a MandateError, got ${String(err)}`).toBe(true)
  return err as MandateError
}

let world: TestAuthority
let server: StepUpServer
let agent: Ed25519Key

beforeAll(async () => {
  world = await createTestAuthority()
  server = await startServer(world)
  agent = await world.agent('step-up-agent')
})
afterAll(async () => {
  await server.close()
  await world.close()
})

async function connect(target: StepUpServer, mandate: string, options: Partial<CallCredentialOptions> = {}) {
  const exchanges: { tool: string; scopes: string[] | undefined; outcome: string }[] = []
  const client = new Client({ name: 'step-up', version: '1.0.0' })
  await client.connect(createMandateHttpTransport(target.url, { authority: recordingClient(world.clientFor(agent), exchanges), key: agent, mandate, ...options }))
  return { client, exchanges }
}

describe('the guard: 403 insufficient_scope with the required scopes and the metadata URL', () => {
  /** POST a tools/call with a fresh credential asked with `scopes`, in a new session. */
  async function callWith(scopes: string[], tool: string, args: Record<string, unknown>, mandate: string, target: StepUpServer = server): Promise<Response> {
    const init = await fetch(target.url, { method: 'POST', headers: ACCEPT, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) })
    await init.text()
    const sid = init.headers.get('mcp-session-id') as string
    const r = await world.clientFor(agent).callCredential({ mandate, audience: target.url, tool, arguments: args, scopes })
    if (r.status !== 'issued') throw new Error('not issued')
    return fetch(target.url, {
      method: 'POST',
      headers: { ...ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', authorization: `DPoP ${r.token}`, dpop: createProof(agent, { method: 'POST', url: target.url, accessToken: r.token, tool, arguments: args }) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: args } }),
    })
  }

  it('names the missing scope and the RFC 9728 metadata URL, exactly; the tool never runs', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
    const before = server.log.count
    const res = await callWith(['tools:read'], 'refund', { amount: 5 }, mandate)
    expect(res.status).toBe(403)
    const header = res.headers.get('www-authenticate') ?? ''
    // DPoP scheme (RFC 9449 §7.1: the credential is DPoP-bound), RFC 6750 §3.1 parameters
    expect(header).toMatch(/^DPoP /)
    expect(header).toContain('error="insufficient_scope"')
    expect(header).toContain('scope="tools:write"')
    expect(header).toContain(`resource_metadata="${server.metadataUrl}"`)
    const params = challengeParams(header)
    expect(params.error).toBe('insufficient_scope')
    expect(params.scope).toBe('tools:write')
    expect(params.resource_metadata).toBe(server.metadataUrl)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(await res.json()).toMatchObject({ error: 'insufficient_scope', mandate_code: 'INSUFFICIENT_SCOPE', scope: 'tools:write' })
    expect(server.log.count).toBe(before)
    // the advertised metadata is this resource's, naming the Authority
    const prm = (await (await fetch(params.resource_metadata as string)).json()) as { resource: string; authorization_servers: string[] }
    expect(prm.resource).toBe(server.url)
    expect(prm.authorization_servers).toEqual([world.issuer])
  })

  it('lists every scope the tool requires in one challenge, not just the first missing one', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read', 'tools:write', 'payments:send'], tools: TOOLS })
    const res = await callWith(['tools:read'], 'transfer', { to: 'bob' }, mandate)
    expect(res.status).toBe(403)
    const params = challengeParams(res.headers.get('www-authenticate'))
    expect(params.error).toBe('insufficient_scope')
    expect(params.scope).toBe('tools:write payments:send')
    expect(params.resource_metadata).toBe(server.metadataUrl)
    await res.text()
  })
  it("a guard-wide required scope (core's requiredScopes) is challenged together with the tool's own", async () => {
    const strict = await startServer(world, { requiredScopes: ['tools:read'] })
    try {
      const { token: mandate } = await world.grant(agent, { audiences: [strict.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
      const res = await callWith(['tools:write'], 'refund', { amount: 1 }, mandate, strict)
      expect(res.status).toBe(403)
      const params = challengeParams(res.headers.get('www-authenticate'))
      expect(params.error).toBe('insufficient_scope')
      expect(params.scope).toBe('tools:read tools:write')
      expect(params.resource_metadata).toBe(strict.metadataUrl)
      await res.text()
      // and the client's one step-up then meets both
      const { client, exchanges } = await connect(strict, mandate, { scopes: ['tools:write'] })
      try {
        expect((await client.callTool({ name: 'refund', arguments: { amount: 1 } })).content).toEqual([{ type: 'text', text: 'refunded 1' }])
        expect(exchanges.map((e) => e.scopes)).toEqual([['tools:write'], ['tools:write', 'tools:read']])
      } finally {
        await client.close()
      }
    } finally {
      await strict.close()
    }
  })
})

describe('the client: one step-up with a fresh credential, never wider than the mandate', () => {
  it('succeeds when the mandate grants the challenged scope: a fresh credential with the union, one retry', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate, { scopes: ['tools:read'] })
    try {
      // least privilege first: echo needs only what was asked for
      expect((await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content).toEqual([{ type: 'text', text: 'echo:hi' }])
      expect(server.log.calls.at(-1)?.call.scopes).toEqual(['tools:read'])
      const posts = server.calls.length
      const ran = server.log.count
      const result = await client.callTool({ name: 'refund', arguments: { amount: 40 } })
      expect(result.isError).toBeFalsy()
      expect(result.content).toEqual([{ type: 'text', text: 'refunded 40' }])
      expect(server.log.count).toBe(ran + 1)
      expect(server.log.calls.at(-1)?.call.scopes).toEqual(['tools:read', 'tools:write'])
      // two POSTs for the refund, each with its own single-use credential
      const refunds = server.calls.slice(posts)
      expect(refunds.map((c) => c.tool)).toEqual(['refund', 'refund'])
      expect(refunds[0]?.authorization).not.toBe(refunds[1]?.authorization)
      expect(exchanges.filter((e) => e.tool === 'refund')).toEqual([
        { tool: 'refund', scopes: ['tools:read'], outcome: 'issued' },
        { tool: 'refund', scopes: ['tools:read', 'tools:write'], outcome: 'issued' },
      ])
      // the next call starts from the configured scopes again (step-up is per call, not sticky)
      await client.callTool({ name: 'echo', arguments: { text: 'again' } })
      expect(exchanges.at(-1)).toEqual({ tool: 'echo', scopes: ['tools:read'], outcome: 'issued' })
    } finally {
      await client.close()
    }
  })

  it('asks for every challenged scope at once (transfer: tools:write and payments:send)', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read', 'tools:write', 'payments:send'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate, { scopes: ['tools:read'] })
    try {
      expect((await client.callTool({ name: 'transfer', arguments: { to: 'bob' } })).content).toEqual([{ type: 'text', text: 'sent to bob' }])
      expect(exchanges.map((e) => e.scopes)).toEqual([['tools:read'], ['tools:read', 'tools:write', 'payments:send']])
    } finally {
      await client.close()
    }
  })

  it('fails closed, typed, when the mandate lacks the scope: the Authority refuses to widen and no retry is sent', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate, { scopes: ['tools:read'] })
    try {
      const posts = server.calls.length
      const ran = server.log.count
      const err = await refusal(client.callTool({ name: 'refund', arguments: { amount: 40 } }))
      expect(err.code).toBe('INSUFFICIENT_SCOPE')
      expect(err.status).toBe(403)
      expect(err.detail).toMatchObject({ scope: 'tools:write', source: 'resource', status: 403, step_up: 'refused' })
      expect(MandateError.is(err.cause) && err.cause.code).toBe('NARROWING_SCOPE')
      expect(server.log.count).toBe(ran)
      expect(server.calls.length).toBe(posts + 1)
      expect(exchanges).toEqual([
        { tool: 'refund', scopes: ['tools:read'], outcome: 'issued' },
        { tool: 'refund', scopes: ['tools:read', 'tools:write'], outcome: 'NARROWING_SCOPE' },
      ])
    } finally {
      await client.close()
    }
  })

  it('without a scopes option (the credential carried all the mandate grants) it does not step up: no exchange that could only be refused', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate)
    try {
      const posts = server.calls.length
      const err = await refusal(client.callTool({ name: 'refund', arguments: { amount: 1 } }))
      expect(err.code).toBe('INSUFFICIENT_SCOPE')
      expect(err.detail).toMatchObject({ scope: 'tools:write', source: 'resource', status: 403 })
      expect(err.detail?.step_up).toBeUndefined()
      expect(server.calls.length).toBe(posts + 1)
      expect(exchanges.map((e) => [e.scopes, e.outcome])).toEqual([[undefined, 'issued']])
    } finally {
      await client.close()
    }
  })

  it('stepUp: true without scopes asks for the challenged scopes and fails closed when the mandate lacks them', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate, { stepUp: true })
    try {
      const err = await refusal(client.callTool({ name: 'refund', arguments: { amount: 1 } }))
      expect(err.code).toBe('INSUFFICIENT_SCOPE')
      expect(err.detail).toMatchObject({ scope: 'tools:write', step_up: 'refused' })
      expect(exchanges.map((e) => [e.scopes, e.outcome])).toEqual([[undefined, 'issued'], [['tools:write'], 'NARROWING_SCOPE']])
    } finally {
      await client.close()
    }
  })

  it('a second 403 is not retried, even one that challenges again and that the mandate could meet', async () => {
    const escalating = await startServer(world, { escalate: true })
    const { token: mandate } = await world.grant(agent, { audiences: [escalating.url], scopes: ['tools:read', 'tools:write', 'tools:admin'], tools: TOOLS })
    const { client, exchanges } = await connect(escalating, mandate, { scopes: ['tools:read'] })
    try {
      const err = await refusal(client.callTool({ name: 'refund', arguments: { amount: 2 } }))
      expect(err.code).toBe('INSUFFICIENT_SCOPE')
      // the server's second answer, as it gave it (not an Authority refusal)
      expect(err.detail).toMatchObject({ scope: 'tools:write tools:admin', source: 'resource', status: 403 })
      expect(err.detail?.step_up).toBeUndefined()
      expect(escalating.log.count).toBe(0)
      expect(escalating.calls.map((c) => c.tool)).toEqual(['refund', 'refund'])
      expect(exchanges.map((e) => e.scopes)).toEqual([['tools:read'], ['tools:read', 'tools:write']])
    } finally {
      await client.close()
      await escalating.close()
    }
  })

  it('a 403 after the step-up that is not about scope is the answer too (refund over its limit)', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate, { scopes: ['tools:read'] })
    try {
      const posts = server.calls.length
      const err = await refusal(client.callTool({ name: 'refund', arguments: { amount: 5000 } }))
      expect(err.code).toBe('CONSTRAINT_VIOLATED')
      expect(server.calls.length).toBe(posts + 2)
      expect(exchanges).toHaveLength(2)
    } finally {
      await client.close()
    }
  })

  it('stepUp: false leaves the refusal as it is (one POST, one exchange)', async () => {
    const { token: mandate } = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
    const { client, exchanges } = await connect(server, mandate, { scopes: ['tools:read'], stepUp: false })
    try {
      const posts = server.calls.length
      const err = await refusal(client.callTool({ name: 'refund', arguments: { amount: 3 } }))
      expect(err.code).toBe('INSUFFICIENT_SCOPE')
      expect(err.detail).toMatchObject({ scope: 'tools:write', source: 'resource' })
      expect(err.detail?.step_up).toBeUndefined()
      expect(server.calls.length).toBe(posts + 1)
      expect(exchanges).toHaveLength(1)
    } finally {
      await client.close()
    }
  })

  it('cached mode: the audience credential is stepped up with a per-call credential, and stays cached for the next call', async () => {
    const reusable = await startServer(world, { reusable: true })
    const { token: mandate } = await world.grant(agent, { audiences: [reusable.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
    const { client, exchanges } = await connect(reusable, mandate, { scopes: ['tools:read'], mode: 'cached' })
    try {
      expect((await client.callTool({ name: 'echo', arguments: { text: 'c1' } })).content).toEqual([{ type: 'text', text: 'echo:c1' }])
      expect(reusable.log.calls.at(-1)?.call.scopes).toEqual(['tools:read'])
      expect((await client.callTool({ name: 'refund', arguments: { amount: 9 } })).content).toEqual([{ type: 'text', text: 'refunded 9' }])
      expect(reusable.log.calls.at(-1)?.call.scopes).toEqual(['tools:read', 'tools:write'])
      expect((await client.callTool({ name: 'echo', arguments: { text: 'c2' } })).content).toEqual([{ type: 'text', text: 'echo:c2' }])
      // one per-call exchange (the step-up); both echoes used the cached audience credential
      expect(exchanges).toEqual([{ tool: 'refund', scopes: ['tools:read', 'tools:write'], outcome: 'issued' }])
      const echoes = reusable.calls.filter((c) => c.tool === 'echo')
      expect(echoes[0]?.authorization).toBe(echoes[1]?.authorization)
    } finally {
      await client.close()
      await reusable.close()
    }
  })
})

describe('step-up and approvals', () => {
  it("approval 'throw': the stepped-up call's approval is redeemed with the stepped-up scopes; the call completes after two decisions", async () => {
    const a = await createTestAuthority({ policy: [{ effect: 'require_approval', tool: 'refund', on: 'call' }] })
    const s = await startServer(a)
    try {
      const k = await a.agent('approving-agent')
      const { token: mandate } = await a.grant(k, { audiences: [s.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
      const exchanges: { tool: string; scopes: string[] | undefined; outcome: string }[] = []
      const client = new Client({ name: 'approvals', version: '1.0.0' })
      await client.connect(createMandateHttpTransport(s.url, { authority: recordingClient(a.clientFor(k), exchanges), key: k, mandate, scopes: ['tools:read'] }))
      try {
        const call = () => client.callTool({ name: 'refund', arguments: { amount: 12 } })
        // 1st: the configured scopes need an approval
        const first = await refusal(call())
        expect(first.code).toBe('APPROVAL_REQUIRED')
        await a.authority.approvals.approve(first.detail?.approval_id as string, { approver: a.approver.did })
        // 2nd: that approval is redeemed, the server asks for tools:write, and the stepped-up call needs its own approval
        const second = await refusal(call())
        expect(second.code).toBe('APPROVAL_REQUIRED')
        expect(second.detail?.approval_id).not.toBe(first.detail?.approval_id)
        expect(s.calls.map((c) => c.tool)).toEqual(['refund'])
        await a.authority.approvals.approve(second.detail?.approval_id as string, { approver: a.approver.did })
        // 3rd: redeemed with the scopes it was opened for: no further refusal, no third approval
        expect((await call()).content).toEqual([{ type: 'text', text: 'refunded 12' }])
        expect(s.log.calls.at(-1)?.call.scopes).toEqual(['tools:read', 'tools:write'])
        expect(s.log.calls.at(-1)?.call.approval?.id).toBe(second.detail?.approval_id)
        expect(exchanges.map((e) => [e.scopes, e.outcome])).toEqual([
          [['tools:read'], 'approval_required'],
          [['tools:read'], 'issued'],
          [['tools:read', 'tools:write'], 'approval_required'],
          [['tools:read', 'tools:write'], 'issued'],
        ])
        expect(await a.authority.approvals.list({ status: 'pending' })).toEqual([])
      } finally {
        await client.close()
      }
    } finally {
      await s.close()
      await a.close()
    }
  })
})

describe('configuration', () => {
  it('refuses malformed scopes and a non-boolean stepUp at construction (CONFIG_INVALID)', () => {
    const base = { authority: world.clientFor(agent), key: agent, mandate: 'm' }
    for (const bad of [{ scopes: ['a b'] }, { scopes: ['dup', 'dup'] }, { scopes: [''] }, { scopes: [] }, { scopes: 'tools:read' as unknown as string[] }, { stepUp: 'yes' as unknown as boolean }]) {
      let err: unknown
      try {
        createMandateHttpTransport(server.url, { ...base, ...bad })
      } catch (e) {
        err = e
      }
      expect(MandateError.is(err) && err.code, JSON.stringify(bad)).toBe('CONFIG_INVALID')
    }
  })

  it('reads auth-params the way RFC 9110 writes them (quoted, escaped, token, any order, case-insensitive names)', () => {
    expect(challengeParams('DPoP error="insufficient_scope", error_description="scope \\"a\\" is required, scope=\\"x\\"", Scope="a b", resource_metadata="https://r/.well-known/oauth-protected-resource/mcp"')).toEqual({
      error: 'insufficient_scope',
      error_description: 'scope "a" is required, scope="x"',
      scope: 'a b',
      resource_metadata: 'https://r/.well-known/oauth-protected-resource/mcp',
    })
    expect(challengeParams('Bearer error=insufficient_scope,scope="x"')).toEqual({ error: 'insufficient_scope', scope: 'x' })
    expect(challengeParams(null)).toEqual({})
  })
})

describe('over stdio (credentials in _meta): the same one step-up', () => {
  const AUD = 'urn:mandate:test:stdio-step-up'
  let stdioWorld: TestAuthority
  let dir: string
  let stdioAgent: Ed25519Key
  const handlerCount = () => {
    const f = join(dir, 'count.jsonl')
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).length : 0
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mandate-mcp-step-up-'))
    // the spawned guard trusts the real Authority over HTTP (JWKS, revocation status, audit reports)
    stdioWorld = await createTestAuthority({ http: true })
    stdioAgent = await stdioWorld.agent('stdio-step-up-agent')
  }, 60_000)
  afterAll(async () => {
    await stdioWorld?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  async function connectStdio(scopes: string[], options: Partial<CallCredentialOptions> = {}) {
    const { token: mandate } = await stdioWorld.grant(stdioAgent, { audiences: [AUD], scopes, tools: TOOLS })
    const endpoints = stdioWorld.authority.endpoints
    const stdio = new StdioClientTransport({
      command: process.execPath,
      args: ['--conditions=@mandate/source', '--import', 'tsx', fileURLToPath(new URL('./fixtures/stdio_server.ts', import.meta.url))],
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: {
        ...(process.env as Record<string, string>),
        MANDATE_ISSUER: stdioWorld.issuer,
        MANDATE_JWKS_URL: endpoints.jwks,
        MANDATE_AUDIENCE: AUD,
        MANDATE_REVOCATION_URL: endpoints.revocationStatus,
        MANDATE_RESOURCE_KEY: JSON.stringify(stdioWorld.resource.exportPrivateJwk()),
        MANDATE_COUNT_FILE: join(dir, 'count.jsonl'),
        MANDATE_AUDIT_FILE: join(dir, 'audit.jsonl'),
        MANDATE_ERROR_FILE: join(dir, 'errors.log'),
      },
      stderr: 'inherit',
    })
    const exchanges: { tool: string; scopes: string[] | undefined; outcome: string }[] = []
    const client = new Client({ name: 'stdio-step-up', version: '1.0.0' })
    await client.connect(withMetaCredentials(stdio, { resource: AUD, authority: recordingClient(stdioWorld.clientFor(stdioAgent), exchanges), key: stdioAgent, mandate, ...options }))
    return { client, exchanges }
  }

  it('steps up once when the mandate grants the scope, and fails closed (INSUFFICIENT_SCOPE) when it does not', async () => {
    const granted = await connectStdio(['tools:read', 'tools:write'], { scopes: ['tools:read'] })
    try {
      const before = handlerCount()
      expect((await granted.client.callTool({ name: 'refund', arguments: { amount: 7 } })).content).toEqual([{ type: 'text', text: 'refunded 7' }])
      expect(handlerCount()).toBe(before + 1)
      expect(granted.exchanges.map((e) => [e.scopes, e.outcome])).toEqual([[['tools:read'], 'issued'], [['tools:read', 'tools:write'], 'issued']])
    } finally {
      await granted.client.close()
    }
    const lacking = await connectStdio(['tools:read'], { scopes: ['tools:read'] })
    try {
      const before = handlerCount()
      const err = await lacking.client.callTool({ name: 'refund', arguments: { amount: 7 } }).then(() => undefined, (e: unknown) => e)
      expect((err as { data?: { mandate_code?: string; scope?: string } }).data).toMatchObject({ mandate_code: 'INSUFFICIENT_SCOPE', scope: 'tools:write' })
      expect(mandateErrorFrom(err)?.code).toBe('INSUFFICIENT_SCOPE')
      expect(handlerCount()).toBe(before)
      expect(lacking.exchanges.map((e) => [e.scopes, e.outcome])).toEqual([[['tools:read'], 'issued'], [['tools:read', 'tools:write'], 'NARROWING_SCOPE']])
    } finally {
      await lacking.client.close()
    }
  }, 60_000)
})
