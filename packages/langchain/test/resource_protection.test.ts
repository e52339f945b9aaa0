// Sent is not verified: createMandateFetch attaches a credential only to a resource that advertises
// Mandate protection by this Authority (RFC 9728 protected resource metadata), for the README's MCP
// recipe and for the bare fetch alike. Real MCP SDK, real servers on 127.0.0.1.
import { ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { loadMcpTools } from '@langchain/mcp-adapters'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallReport } from '@mandate/core'
import { createAgent } from 'langchain'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createMandateFetch, mandateFetch, mandateMiddleware, withMandate, withMandateAll, type MandateFetchOptions } from '../src/index.js'
import { startGuardedApi } from './support/http_api.js'
import { dump, findLeaks } from './support/leaks.js'
import { startGuardedMcpServer } from './support/mcp_server.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { startUnguardedMcpServer, type MetadataAnswer } from './support/unguarded_mcp_server.js'
import { createWorld } from './support/world.js'

const ISSUER = 'https://authority.example.test' // the issuer createWorld's Authority uses
const isToolsCall = (_url: URL, init: RequestInit | undefined) => typeof init?.body === 'string' && (JSON.parse(init.body) as { method?: string }).method === 'tools/call'
const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))
const json = (body: unknown): MetadataAnswer => (_resource, _req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** The README's MCP recipe: the MCP SDK transport with createMandateFetch as its fetch. */
async function recipeClient(url: string, options: MandateFetchOptions = {}) {
  const client = new Client({ name: 'agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createMandateFetch({ outsideCall: 'passthrough', attach: isToolsCall, ...options }) }))
  cleanups.push(() => client.close())
  return client
}

async function unguarded(options: { metadata?: MetadataAnswer } = {}) {
  const srv = await startUnguardedMcpServer(options)
  cleanups.push(srv.close)
  const w = await createWorld({ audiences: [srv.url], tools: [{ type: 'tool_access', tools: ['lookup'], locations: [srv.url] }] })
  return { srv, w, opts: { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience: srv.url, remote: true } as const }
}

describe('the README MCP recipe (createMandateFetch as the transport fetch) against an unguarded MCP server', () => {
  it('middleware: RESOURCE_NOT_PROTECTED, no credential sent, the tool never runs, nothing unverified reaches the model', async () => {
    const { srv, w, opts } = await unguarded()
    const tools = await loadMcpTools('billing', await recipeClient(srv.url))
    const model = new ScriptedChatModel([callTools({ name: 'lookup', args: { invoice: 'inv_1' }, id: 'r1' })])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware(opts)] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'look up inv_1' }] })

    const [msg] = toolMessages(result.messages)
    expect(msg?.status).toBe('error')
    expect(String(msg?.content)).toMatch(/^Refused by Mandate \(RESOURCE_NOT_PROTECTED\): .*does not advertise Mandate protection.*no credential was sent/)
    // the server never received the tools/call, so it neither saw the credential nor ran the tool
    expect(srv.authorizations).toEqual([])
    expect(srv.runs()).toBe(0)
    expect(dump(result.messages)).not.toContain(srv.secret)
    expect(findLeaks([...result.messages.map(dump), dump(model.seen)], w.issued)).toEqual([])
    // issued ≠ verified: the Authority is told the credential was not presented
    const reports = (await w.authority.audit.query({ txn: w.grant.claims.txn })).filter((r) => r.type === 'call.report')
    expect(reports.map((r) => [r.fields.decision, r.fields.error])).toEqual([['refused', 'CREDENTIAL_NOT_PRESENTED']])
  })

  it('withMandateAll: plain invoke rejects with RESOURCE_NOT_PROTECTED (detail names the resource), a tool call gets an error ToolMessage', async () => {
    const { srv, opts } = await unguarded()
    const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url)), opts)
    const err = await (t as NonNullable<typeof t>).invoke({ invoice: 'inv_2' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'MandateError', code: 'RESOURCE_NOT_PROTECTED', detail: { resource: srv.url } })
    const msg = (await (t as NonNullable<typeof t>).invoke({ name: 'lookup', args: { invoice: 'inv_3' }, id: 'r2', type: 'tool_call' })) as ToolMessage
    expect(String(msg.content)).toMatch(/\(RESOURCE_NOT_PROTECTED\)/)
    expect(srv.authorizations).toEqual([])
    expect(srv.runs()).toBe(0)
  })

  const hostile: [string, (resource: string) => unknown][] = [
    ['names another Authority', (resource) => ({ resource, authorization_servers: ['https://other-authority.example.test'] })],
    ['names another resource', () => ({ resource: 'https://elsewhere.example.test/mcp', authorization_servers: [ISSUER] })],
    ['names the resource in another spelling', (resource) => ({ resource: `${resource}/`, authorization_servers: [ISSUER] })],
    ['omits authorization_servers', (resource) => ({ resource })],
    ['is a JSON array', () => []],
    ['does not accept EdDSA proofs', (resource) => ({ resource, authorization_servers: [ISSUER], dpop_signing_alg_values_supported: ['ES256'] })],
  ]
  for (const [what, body] of hostile) {
    it(`a server whose metadata ${what} gets no credential (RESOURCE_NOT_PROTECTED)`, async () => {
      const { srv, opts } = await unguarded({ metadata: (resource, req, res) => json(body(resource))(resource, req, res) })
      const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url)), opts)
      await expect((t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_PROTECTED' })
      expect(srv.authorizations).toEqual([])
      expect(srv.runs()).toBe(0)
    })
  }

  it('a server answering its metadata URL with an HTML page (a catch-all route) gets no credential', async () => {
    const { srv, opts } = await unguarded({ metadata: (_r, _q, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>') })
    const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url)), opts)
    await expect((t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_PROTECTED' })
    expect(srv.authorizations).toEqual([])
  })

  it('metadata that never ends is read within its byte cap: INVALID_RESPONSE, no credential sent', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x20)
    const { srv, opts } = await unguarded({ metadata: (_r, _q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const pump = () => { while (res.write(chunk)); }
      res.on('drain', pump)
      pump()
    } })
    const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url)), opts)
    await expect((t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' })).rejects.toMatchObject({ code: 'INVALID_RESPONSE' })
    expect(srv.authorizations).toEqual([])
    expect(srv.runs()).toBe(0)
  })

  it('sendCredentialsToUnadvertisedResource: true is the explicit opt-out (the credential is then sent unchecked)', async () => {
    const { srv, opts } = await unguarded()
    const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url, { sendCredentialsToUnadvertisedResource: true })), opts)
    expect(String(await (t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' }))).toContain(srv.secret)
    expect(srv.authorizations).toEqual(['credential'])
    expect(srv.metadataRequests()).toBe(0)
    expect(() => createMandateFetch({ sendCredentialsToUnadvertisedResource: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})

describe('a guarded MCP server that advertises its protection', () => {
  it('gets the credential; discovery is cached per audience (one metadata read for several calls, parallel first calls included)', async () => {
    let report: ((r: CallReport) => Promise<void>) | undefined
    const mcp = await startGuardedMcpServer((r) => (report as (r: CallReport) => Promise<void>)(r))
    cleanups.push(mcp.close)
    const w = await createWorld({ audiences: [mcp.url], tools: [{ type: 'tool_access', tools: ['billing.lookup'], locations: [mcp.url] }] })
    report = async (r) => void (await w.authority.reportCall(r))
    mcp.useGuard(w.guardFor(mcp.url))
    const tools = withMandateAll(await loadMcpTools('billing', await recipeClient(mcp.url)), { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience: mcp.url, remote: true })
    const t = tools[0] as (typeof tools)[number]
    await Promise.all([t.invoke({ invoice: 'inv_1' }), t.invoke({ invoice: 'inv_2' }), t.invoke({ invoice: 'inv_3' })])
    await t.invoke({ invoice: 'inv_4' })
    expect(mcp.verified).toHaveLength(4)
    expect(mcp.metadataRequests()).toBe(1)
  })

  it('a failed discovery is not cached: once the server advertises, the next call goes through', async () => {
    let advertise = false
    const { srv, opts } = await unguarded({ metadata: (resource, _req, res) => {
      if (!advertise) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource, authorization_servers: [ISSUER] }))
    } })
    const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url)), opts)
    await expect((t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_PROTECTED' })
    advertise = true
    // (this server only claims protection; it still does not verify, which no client check can prove)
    expect(String(await (t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' }))).toContain('invoice inv_1')
    expect(srv.authorizations).toEqual(['credential'])
    expect(srv.metadataRequests()).toBe(2)
  })
})

describe('the proof alg follows what the resource advertises (RFC 9864)', () => {
  const proofAlgs = (algs: string[]): typeof fetch => (async (input: string | URL | Request, init?: RequestInit) => {
    const proof = new Headers(init?.headers).get('dpop')
    if (proof) algs.push((JSON.parse(Buffer.from(proof.split('.')[0] as string, 'base64url').toString()) as { alg: string }).alg)
    return globalThis.fetch(input, init)
  }) as typeof fetch
  for (const [advertised, expected] of [[undefined, 'Ed25519'], [['EdDSA', 'Ed25519'], 'Ed25519'], [['EdDSA'], 'EdDSA']] as const) {
    it(`metadata advertising ${advertised ? advertised.join(', ') : 'no algs'} gets ${expected} proofs`, async () => {
      const { srv, opts } = await unguarded({ metadata: (resource, req, res) => json({ resource, authorization_servers: [ISSUER], ...(advertised ? { dpop_signing_alg_values_supported: advertised } : {}) })(resource, req, res) })
      const algs: string[] = []
      const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url, { fetch: proofAlgs(algs) })), opts)
      await (t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' })
      expect(srv.authorizations).toEqual(['credential'])
      expect(algs).toEqual([expected])
    })
  }
})

describe('the cached answer expires', () => {
  it('a server that stops advertising is refused once discoveryTtlMs has passed', async () => {
    let advertise = true
    const { srv, opts } = await unguarded({ metadata: (resource, _req, res) => {
      if (!advertise) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource, authorization_servers: [ISSUER] }))
    } })
    const [t] = withMandateAll(await loadMcpTools('billing', await recipeClient(srv.url, { discoveryTtlMs: 50 })), opts)
    expect(String(await (t as NonNullable<typeof t>).invoke({ invoice: 'inv_1' }))).toContain('invoice inv_1')
    advertise = false
    await new Promise((r) => setTimeout(r, 200))
    await expect((t as NonNullable<typeof t>).invoke({ invoice: 'inv_2' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_PROTECTED' })
    expect(srv.authorizations).toEqual(['credential'])
    expect(srv.metadataRequests()).toBe(2)
  })

  it('discovery options are validated (CONFIG_INVALID)', () => {
    for (const bad of [{ discoveryTtlMs: 0 }, { discoveryTtlMs: 1.5 }, { discoveryTimeoutMs: -1 }, { discoveryFetch: 'x' as unknown as typeof fetch }, { outsideCall: 'sometimes' as 'refuse' }]) {
      expect(() => createMandateFetch(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    }
  })
})

describe('the bare mandateFetch (an HTTP API as a remote tool)', () => {
  async function apiTool(api: Awaited<ReturnType<typeof startGuardedApi>>, w: Awaited<ReturnType<typeof createWorld>>) {
    return withMandate(
      tool(async () => String((await (await mandateFetch(`${api.audience}/balance`)).json() as { ok?: boolean }).ok), { name: 'http_get_balance', description: 'Balance', schema: z.object({}) }),
      { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience: api.audience, toolName: (n) => n.replace('_', '.'), remote: true },
    )
  }

  it('refuses an API that serves no protected resource metadata before anything is sent', async () => {
    const api = await startGuardedApi()
    cleanups.push(api.close)
    const w = await createWorld({ audiences: [api.audience], tools: [{ type: 'tool_access', tools: ['http.get_balance'] }] })
    // no guard configured on the API side: it advertises nothing (and would accept nothing)
    await expect((await apiTool(api, w)).invoke({})).rejects.toMatchObject({ code: 'RESOURCE_NOT_PROTECTED' })
    expect(api.verified).toEqual([])
    expect(api.refused).toEqual([])
  })

  it('sends to an API that advertises protection by this Authority', async () => {
    const api = await startGuardedApi()
    cleanups.push(api.close)
    const w = await createWorld({ audiences: [api.audience], tools: [{ type: 'tool_access', tools: ['http.get_balance'] }] })
    api.useGuard(w.guardFor(api.audience))
    expect(await (await apiTool(api, w)).invoke({})).toBe('true')
    expect(api.verified).toHaveLength(1)
  })
})
