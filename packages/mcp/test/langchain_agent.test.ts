// The guarded HTTP server used from LangChain agents (createAgent + a scripted model) through
// @langchain/mcp-adapters, against the real in-process Authority:
// 1. the Mandate exchange transport underneath: one MCP session, each call its own credential;
// 2. an MCP tool next to a local tool in ONE agent that uses @mandate/langchain's mandateMiddleware:
//    the middleware obtains one credential per call for both kinds, the MCP transport attaches the
//    call's credential from the middleware's context, and both are verified, audited and refused alike.
import { loadMcpTools } from '@langchain/mcp-adapters'
import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { argumentsDigest, createGuard, type Ed25519Key } from '@mandate/core'
import { createMandateFetch, delegateTo, getCallContext, mandateMiddleware, type CallContext } from '@mandate/langchain'
import { createAgent } from 'langchain'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createContextCredentialTransport, createMandateHttpTransport } from '../src/index.js'
import { createTestAuthority, SUBJECT, type TestAuthority } from './helpers/authority.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'
import { ScriptedChatModel } from './helpers/scripted_model.js'
import { COMPACT_JWS } from './helpers/compact_jws.js'

let world: TestAuthority
let server: RunningServer
beforeAll(async () => {
  world = await createTestAuthority()
  server = await startHttpServer(world)
})
afterAll(async () => {
  await server.close()
  await world.close()
})

const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))

describe('MCP tools through @langchain/mcp-adapters over the Mandate exchange transport', () => {
  it('runs an agent over one MCP session with a distinct credential per tool call', async () => {
    const agentKey = await world.agent('langchain-agent')
    const { token, txn } = await world.grant(agentKey, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo', 'add'] }] })
    const methods: string[] = []
    const client = new Client({ name: 'langchain-agent', version: '1.0.0' })
    await client.connect(
      createMandateHttpTransport(server.url, {
        authority: world.clientFor(agentKey),
        key: agentKey,
        mandate: token,
        fetch: async (url, init) => {
          if (typeof init?.body === 'string') methods.push((JSON.parse(init.body) as { method?: string }).method ?? 'response')
          return fetch(url, init)
        },
      }),
    )
    const tools = await loadMcpTools('billing', client, { prefixToolNameWithServerName: false, throwOnLoadError: true })
    const model = new ScriptedChatModel([
      new AIMessage({
        content: '',
        tool_calls: [
          { id: 'c1', name: 'echo', args: { text: 'one' }, type: 'tool_call' },
          { id: 'c2', name: 'add', args: { a: 20, b: 22 }, type: 'tool_call' },
        ],
      }),
      new AIMessage({ content: '', tool_calls: [{ id: 'c3', name: 'echo', args: { text: 'three' }, type: 'tool_call' }] }),
      new AIMessage('all done'),
    ])
    const agent = createAgent({ model, tools })
    const before = server.log.count
    const sessionsBefore = server.handler.sessions
    const out = await agent.invoke({ messages: [{ role: 'user', content: 'do the things' }] })

    expect(server.log.count - before).toBe(3)
    const jtis = server.log.calls.slice(-3).map((c) => c.call.mandateId)
    expect(new Set(jtis).size).toBe(3)
    expect(server.handler.sessions).toBe(sessionsBefore) // no forked sessions
    expect(methods.filter((m) => m === 'initialize')).toHaveLength(1)
    expect(methods.filter((m) => m === 'tools/call')).toHaveLength(3)
    const last = out.messages.at(-1)
    expect(last?.content).toBe('all done')
    const toolResults = out.messages.filter((m) => m.getType() === 'tool').map((m) => m.content)
    expect(JSON.stringify(toolResults)).toContain('echo:one')
    expect(JSON.stringify(toolResults)).toContain('42')
    // nothing the model saw carries a token or a proof
    expect(JSON.stringify(model.seen)).not.toMatch(COMPACT_JWS)
    expect(JSON.stringify(model.seen)).not.toMatch(/DPoP/)
    // the Authority's log: three allowed, attributed reports, one per credential
    const reports = await world.reports({ txn })
    expect(reports.map((r) => r.fields.jti).sort()).toEqual([...jtis].sort())
    expect(reports.every((r) => r.fields.decision === 'allowed' && (r.fields.actors as string[]).join() === agentKey.did)).toBe(true)
    await client.close()
  })

  it('a refused call becomes a tool error for the model, not a crash, and carries no token', async () => {
    const agentKey = await world.agent('langchain-agent')
    const { token } = await world.grant(agentKey, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const client = new Client({ name: 'langchain-agent', version: '1.0.0' })
    await client.connect(createMandateHttpTransport(server.url, { authority: world.clientFor(agentKey), key: agentKey, mandate: token }))
    const tools = await loadMcpTools('billing', client, { prefixToolNameWithServerName: false })
    const model = new ScriptedChatModel([
      new AIMessage({ content: '', tool_calls: [{ id: 'x1', name: 'add', args: { a: 1, b: 1 }, type: 'tool_call' }] }),
      new AIMessage('gave up'),
    ])
    const before = server.log.count
    const out = await createAgent({ model, tools }).invoke({ messages: [{ role: 'user', content: 'add' }] })
    expect(server.log.count).toBe(before)
    const toolMsg = toolMessages(out.messages)[0]
    expect(toolMsg?.status).toBe('error')
    expect(String(toolMsg?.content)).toMatch(/not granted|NARROWING_TOOL|not allowed|not covered/i)
    expect(JSON.stringify(out.messages)).not.toMatch(COMPACT_JWS)
    await client.close()
  })
})

describe('an MCP tool and a local tool in one agent with @mandate/langchain mandateMiddleware', () => {
  const NOTES = 'https://notes.example.test/api' // the local tool's audience (verified in process)
  let orchestrator: Ed25519Key
  let researcher: Ed25519Key
  let grant: { token: string; jti: string; txn: string }

  beforeAll(async () => {
    orchestrator = await world.agent('orchestrator')
    researcher = await world.agent('researcher')
    // user (alice) → orchestrator: the task mandate
    grant = await world.grant(orchestrator, {
      purpose: 'research refunds',
      audiences: [server.url, NOTES],
      scopes: ['tools:read', 'tools:write'],
      tools: [{ type: 'tool_access', tools: ['echo', 'add', 'refund', 'notes_lookup'] }],
    })
  })

  it('protects the MCP tool exactly like the local tool: one credential per call, full chain in the audit log, refusals as error ToolMessages', async () => {
    // orchestrator → researcher: narrower (no `add`, read scope only)
    const sub = await delegateTo({
      client: world.clientFor(orchestrator),
      mandate: grant.token,
      to: researcher,
      audiences: [server.url, NOTES],
      scopes: ['tools:read'],
      tools: [{ type: 'tool_access', tools: ['echo', 'refund', 'notes_lookup'] }],
    })

    // the local tool, verified in process by a guard for its own audience
    const localRuns: CallContext[] = []
    const notes = tool(
      async ({ topic }: { topic: string }) => {
        localRuns.push(getCallContext())
        return `notes about ${topic}`
      },
      { name: 'notes_lookup', description: 'Look up research notes', schema: z.object({ topic: z.string() }) },
    )
    const notesGuard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: NOTES, requireCallBinding: true, revocation: world.authority.revocationSource() })

    // the MCP tools: one MCP session; each tools/call carries the credential the middleware obtained for it
    const posts: { method: string; name?: string; credential: boolean }[] = []
    const client = new Client({ name: 'researcher', version: '1.0.0' })
    await client.connect(
      createContextCredentialTransport(server.url, {
        issuer: world.issuer,
        attach: (next) => createMandateFetch({ fetch: next }),
        fetch: async (url, init) => {
          if (init?.method === 'POST' && typeof init.body === 'string') {
            const msg = JSON.parse(init.body) as { method?: string; params?: { name?: string } }
            posts.push({ method: msg.method ?? 'response', ...(msg.params?.name ? { name: msg.params.name } : {}), credential: new Headers(init.headers).has('authorization') })
          }
          return fetch(url, init)
        },
      }),
    )
    const mcpTools = await loadMcpTools('tools', client, { prefixToolNameWithServerName: false, throwOnLoadError: true })
    const tools = [notes, ...mcpTools.filter((t) => ['echo', 'add', 'refund'].includes(t.name))]

    const model = new ScriptedChatModel([
      new AIMessage({
        content: '',
        tool_calls: [
          { id: 'l1', name: 'notes_lookup', args: { topic: 'refunds' }, type: 'tool_call' },
          { id: 'm1', name: 'echo', args: { text: 'hello' }, type: 'tool_call' },
        ],
      }),
      new AIMessage({
        content: '',
        tool_calls: [
          { id: 'm2', name: 'add', args: { a: 1, b: 2 }, type: 'tool_call' }, // not in the researcher's mandate
          { id: 'm3', name: 'refund', args: { amount: 5 }, type: 'tool_call' }, // in the mandate; the server demands tools:write
        ],
      }),
      new AIMessage('done'),
    ])
    const agent = createAgent({
      model,
      tools,
      middleware: [
        mandateMiddleware({
          client: world.clientFor(researcher),
          key: researcher,
          mandate: sub.mandate,
          audience: (name) => (name === 'notes_lookup' ? NOTES : server.url),
          guard: notesGuard,
          remote: mcpTools.map((t) => t.name), // verified by the MCP server's own guard
        }),
      ],
    })
    const handlerBefore = server.log.count
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'research refunds' }] })

    // the model's view: two results, two refusals as error ToolMessages; the run was not aborted
    const byId = new Map(toolMessages(result.messages).map((m) => [m.tool_call_id, m]))
    expect(byId.get('l1')).toMatchObject({ status: 'success', content: 'notes about refunds' })
    expect(byId.get('m1')?.status).toBe('success')
    expect(JSON.stringify(byId.get('m1')?.content)).toContain('echo:hello')
    expect(byId.get('m2')?.status).toBe('error')
    expect(String(byId.get('m2')?.content)).toMatch(/^Refused by Mandate \(NARROWING_TOOL\)/)
    expect(byId.get('m3')?.status).toBe('error')
    expect(String(byId.get('m3')?.content)).toMatch(/scope "tools:write" is required/)
    expect(result.messages.at(-1)?.content).toBe('done')

    // the server's handler ran for echo only; `add` never left the client, `refund` was refused by the guard
    expect(server.log.count - handlerBefore).toBe(1)
    const mcpCall = server.log.calls.at(-1)?.call
    expect(posts.filter((p) => p.method === 'tools/call')).toEqual([
      { method: 'tools/call', name: 'echo', credential: true },
      { method: 'tools/call', name: 'refund', credential: true },
    ])
    expect(posts.filter((p) => p.method !== 'tools/call').every((p) => !p.credential)).toBe(true)

    // both kinds of call: verified, one distinct credential each, same subject, task and actor chain
    expect(localRuns).toHaveLength(1)
    const localCall = localRuns[0] as CallContext
    expect(localCall.verified).toBe(true)
    const chain = [orchestrator.did, researcher.did]
    for (const c of [localCall, mcpCall]) {
      expect(c).toMatchObject({ subject: SUBJECT, actor: researcher.did, actorChain: chain, task: { id: grant.txn } })
    }
    expect(localCall.mandateId).not.toBe(mcpCall?.mandateId)
    expect(localCall.ancestors[0]).toBe(grant.jti)
    expect(mcpCall?.ancestors[0]).toBe(grant.jti)
    expect(mcpCall?.argumentsDigest).toBe(argumentsDigest({ text: 'hello' }))

    // the Authority's hash-chained log tells the same story for both
    const log = await world.authority.audit.query({ txn: grant.txn })
    const delegation = log.find((r) => r.type === 'exchange' && r.fields.operation === 'delegation')
    expect(delegation?.fields).toMatchObject({ agent: orchestrator.did, recipient: researcher.did, actors: chain, subject: SUBJECT })
    const issued = log.filter((r) => r.type === 'exchange' && r.fields.operation === 'call')
    expect(issued.map((r) => [r.fields.tool, r.fields.agent]).sort()).toEqual([
      ['echo', researcher.did],
      ['notes_lookup', researcher.did],
      ['refund', researcher.did],
    ])
    expect(issued.map((r) => r.fields.jti)).toEqual(expect.arrayContaining([localCall.mandateId, mcpCall?.mandateId]))
    const reports = log.filter((r) => r.type === 'call.report')
    const reportOf = (jti: string | undefined) => reports.filter((r) => r.fields.jti === jti)
    expect(reportOf(localCall.mandateId)).toHaveLength(1)
    expect(reportOf(mcpCall?.mandateId)).toHaveLength(1)
    const [local] = reportOf(localCall.mandateId)
    const [remote] = reportOf(mcpCall?.mandateId)
    expect(local?.fields).toMatchObject({ tool: 'notes_lookup', audience: NOTES, decision: 'allowed', outcome: 'success', actors: chain, subject: SUBJECT, reporter: researcher.did })
    expect(remote?.fields).toMatchObject({ tool: 'echo', audience: server.url, decision: 'allowed', outcome: 'success', actors: chain, subject: SUBJECT, reporter: world.resource.did })
    // the two refusals: `add` at the Authority (never issued), `refund` at the MCP server's guard
    const refusals = await world.authority.audit.query({ type: 'refusal' })
    expect(refusals.filter((r) => r.fields.code === 'NARROWING_TOOL' && r.fields.agent === researcher.did)).toHaveLength(1)
    expect(reports.filter((r) => r.fields.tool === 'refund').map((r) => [r.fields.decision, r.fields.error, r.fields.reporter])).toEqual([['refused', 'INSUFFICIENT_SCOPE', world.resource.did]])
    expect(reports.some((r) => r.fields.tool === 'add')).toBe(false)

    // no credential, mandate or proof reached the model, the messages or the audit log
    expect(JSON.stringify(model.seen)).not.toMatch(COMPACT_JWS)
    expect(JSON.stringify(model.seen)).not.toMatch(/DPoP /)
    expect(JSON.stringify(result.messages)).not.toMatch(COMPACT_JWS)
    expect(JSON.stringify(log)).not.toMatch(COMPACT_JWS)
    await expect(world.authority.audit.verify()).resolves.toMatchObject({ ok: true })
    await client.close()
  })

  it('a tools/call outside a guarded tool call never leaves the client', async () => {
    const client = new Client({ name: 'researcher', version: '1.0.0' })
    let sent = 0
    await client.connect(
      createContextCredentialTransport(server.url, {
        issuer: world.issuer,
        attach: (next) => createMandateFetch({ fetch: next, outsideCall: 'passthrough' }),
        fetch: async (url, init) => {
          if (typeof init?.body === 'string' && init.body.includes('"tools/call"')) sent++
          return fetch(url, init)
        },
      }),
    )
    const before = server.log.count
    await expect(client.callTool({ name: 'echo', arguments: { text: 'x' } })).rejects.toMatchObject({ code: 'PROOF_MISSING' })
    expect(sent).toBe(0)
    expect(server.log.count).toBe(before)
    await client.close()
  })
})
