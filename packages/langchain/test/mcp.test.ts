import { ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { loadMcpTools } from '@langchain/mcp-adapters'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { argumentsDigest, type CallReport } from '@mandate/core'
import { createAgent } from 'langchain'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createMandateFetch, delegateTo, mandateMiddleware, withMandateAll } from '../src/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { startGuardedMcpServer } from './support/mcp_server.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { createWorld } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>
type Mcp = Awaited<ReturnType<typeof startGuardedMcpServer>>

const isToolsCall = (_url: URL, init: RequestInit | undefined) => typeof init?.body === 'string' && (JSON.parse(init.body) as { method?: string }).method === 'tools/call'
const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))

describe('tools loaded with @langchain/mcp-adapters', () => {
  let w: World
  let mcp: Mcp
  let client: Client
  beforeEach(async () => {
    let report: ((r: CallReport) => Promise<void>) | undefined
    mcp = await startGuardedMcpServer((r) => (report as (r: CallReport) => Promise<void>)(r))
    w = await createWorld({ audiences: [mcp.url], tools: [{ type: 'tool_access', tools: ['billing.lookup'], locations: [mcp.url] }] })
    report = async (r) => void (await w.authority.reportCall(r))
    mcp.useGuard(w.guardFor(mcp.url))
    client = new Client({ name: 'agent', version: '1.0.0' })
    // the transport's fetch attaches the current call's credential to tools/call, and only there
    await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { fetch: createMandateFetch({ outsideCall: 'passthrough', attach: isToolsCall }) }))
  })
  afterEach(async () => {
    await client.close()
    await mcp.close()
  })

  it('every MCP tool call carries its own credential, verified by the server guard, with the full chain', async () => {
    const sub = await delegateTo({ client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: w.subAgent.did, audiences: [mcp.url] })
    const loaded = await loadMcpTools('billing', client)
    expect(loaded.map((t) => t.name)).toEqual(['billing.lookup'])
    const tools = withMandateAll(loaded, { client: w.clientFor(w.subAgent), key: w.subAgent, mandate: sub.mandate, audience: mcp.url, remote: true })
    expect(tools[0]?.responseFormat).toBe('content_and_artifact')

    const model = new ScriptedChatModel([
      callTools({ name: 'billing.lookup', args: { invoice: 'inv_1' }, id: 'm1' }, { name: 'billing.lookup', args: { invoice: 'inv_2' }, id: 'm2' }),
    ])
    const agent = createAgent({ model, tools })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'look up inv_1 and inv_2' }] })

    const msgs = toolMessages(result.messages)
    expect(msgs.map((m) => m.status)).toEqual(['success', 'success'])
    expect(msgs[0]?.artifact).toBeDefined() // mcp-adapters' artifacts survive the wrapper
    expect(mcp.runs()).toBe(2)
    expect(mcp.verified.map((v) => v.actorChain)).toEqual([[w.orchestrator.did, w.subAgent.did], [w.orchestrator.did, w.subAgent.did]])
    expect(new Set(mcp.verified.map((v) => v.mandateId)).size).toBe(2)
    expect(mcp.verified.map((v) => v.argumentsDigest).sort()).toEqual([argumentsDigest({ invoice: 'inv_1' }), argumentsDigest({ invoice: 'inv_2' })].sort())
    expect(mcp.verified.every((v) => v.callBound && v.subject === 'alice@example.com')).toBe(true)
    // initialize / notifications went without a credential; only tools/call carried one
    expect(mcp.sawCredential.filter((s) => s.endsWith(':credential')).every((s) => s.startsWith('tools/call'))).toBe(true)

    const audit = await w.authority.audit.query({ txn: w.grant.claims.txn })
    const issued = audit.filter((r) => r.type === 'exchange' && r.fields.operation === 'call').map((r) => r.fields.jti)
    expect(issued.sort()).toEqual(mcp.verified.map((v) => v.mandateId).sort())
    expect(audit.filter((r) => r.type === 'call.report')).toHaveLength(2)
    expect(findLeaks(result.messages.map(dump), w.issued)).toEqual([])
  })

  it('also through the createAgent middleware; a call outside the mandate never reaches the server', async () => {
    const loaded = await loadMcpTools('billing', client)
    const narrow = await delegateTo({
      client: w.clientFor(w.orchestrator),
      mandate: w.grant.token,
      to: w.subAgent.did,
      audiences: [mcp.url],
      tools: [{ type: 'tool_access', tools: ['billing.lookup'], locations: [mcp.url], constraints: { invoice: { type: 'enum', values: ['inv_1'] } } }],
    })
    const model = new ScriptedChatModel([
      callTools({ name: 'billing.lookup', args: { invoice: 'inv_1' }, id: 'k1' }, { name: 'billing.lookup', args: { invoice: 'inv_666' }, id: 'k2' }),
    ])
    const agent = createAgent({ model, tools: loaded, middleware: [mandateMiddleware({ client: w.clientFor(w.subAgent), key: w.subAgent, mandate: narrow.mandate, audience: mcp.url, remote: true })] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    const byId = new Map(toolMessages(result.messages).map((m) => [m.tool_call_id, m]))
    expect(byId.get('k1')?.status).toBe('success')
    expect(byId.get('k2')?.content).toMatch(/\(NARROWING_CONSTRAINT\)/)
    expect(mcp.runs()).toBe(1)

    // without a credential the server refuses the call
    await expect(client.callTool({ name: 'billing.lookup', arguments: { invoice: 'inv_1' } })).rejects.toThrow()
    expect(mcp.refused).toContain('PROOF_MISSING')
  })
})
