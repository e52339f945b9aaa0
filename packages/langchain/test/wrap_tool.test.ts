import { ToolMessage, AIMessage, type BaseMessage } from '@langchain/core/messages'
import { DynamicStructuredTool, tool } from '@langchain/core/tools'
import { awaitAllCallbacks } from '@langchain/core/callbacks/promises'
import { Command, END, MemorySaver, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph'
import { ToolNode, toolsCondition } from '@langchain/langgraph/prebuilt'
import { argumentsDigest, MandateError } from '@mandate/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createMandateFetch, getCallContext, isApprovalInterrupt, mandateFetch, tryGetCallContext, withMandate, withMandateAll,
  type CallContext, type MandateOptions,
} from '../src/index.js'
import { startGuardedApi } from './support/http_api.js'
import { dump, findLeaks, RecordingHandler } from './support/leaks.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { BILLING, createWorld, DOCS } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>
type Api = Awaited<ReturnType<typeof startGuardedApi>>

function opts(w: World, extra: Partial<MandateOptions> = {}): MandateOptions {
  return {
    client: w.clientFor(w.orchestrator),
    key: w.orchestrator,
    mandate: w.grant.token,
    audience: (n) => (n.startsWith('billing_') ? BILLING : n.startsWith('docs_') ? DOCS : undefined),
    toolName: (n) => n.replace('_', '.'),
    guard: [w.guardFor(BILLING), w.guardFor(DOCS)],
    ...extra,
  }
}

function buildGraph(model: ScriptedChatModel, tools: ConstructorParameters<typeof ToolNode>[0], checkpointer?: MemorySaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode('agent', async (state) => ({ messages: [await model.invoke(state.messages)] }))
    .addNode('tools', new ToolNode(tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', toolsCondition, ['tools', END])
    .addEdge('tools', 'agent')
    .compile(checkpointer ? { checkpointer } : {})
}

const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))

describe('withMandate (any LangChain tool)', () => {
  let w: World
  let api: Api
  beforeEach(async () => {
    api = await startGuardedApi()
    w = await createWorld({
      audiences: [api.audience],
      tools: [{ type: 'tool_access', tools: ['http.get_balance'], locations: [api.audience] }],
      policy: [{ effect: 'require_approval', tool: 'billing.refund' }],
    })
    api.useGuard(w.guardFor(api.audience))
  })
  afterEach(() => api.close())

  it('keeps name, description, schema, responseFormat and works with plain invoke', async () => {
    let seen: CallContext | undefined
    const inner = new DynamicStructuredTool({
      name: 'billing_get_invoice',
      description: 'Fetch an invoice',
      schema: z.object({ id: z.string() }),
      responseFormat: 'content_and_artifact',
      func: async ({ id }) => {
        seen = getCallContext()
        return [`invoice ${id}`, { id, amount: 120 }]
      },
    })
    const guarded = withMandate(inner, opts(w))
    expect(guarded.name).toBe(inner.name)
    expect(guarded.description).toBe(inner.description)
    expect(guarded.schema).toBe(inner.schema)
    expect(guarded.responseFormat).toBe('content_and_artifact')
    expect(guarded).toBeInstanceOf(DynamicStructuredTool)

    // invoked with a ToolCall: a ToolMessage carrying the artifact, as without the wrapper
    const msg = await guarded.invoke({ name: 'billing_get_invoice', args: { id: 'inv_1' }, id: 'tc1', type: 'tool_call' })
    expect(ToolMessage.isInstance(msg)).toBe(true)
    expect((msg as ToolMessage).artifact).toEqual({ id: 'inv_1', amount: 120 })
    expect(seen).toMatchObject({ verified: true, tool: 'billing.get_invoice', actorChain: [w.orchestrator.did], toolCallId: 'tc1', argumentsDigest: argumentsDigest({ id: 'inv_1' }) })

    // plain args: content only (LangChain drops the artifact without a tool call id)
    const out = await guarded.invoke({ id: 'inv_2' })
    expect(out).toBe('invoice inv_2')
    expect(tryGetCallContext()).toBeUndefined()
    expect(() => getCallContext()).toThrow(MandateError)
  })

  it('refuses before running: a MandateError for plain invoke, an error ToolMessage for a tool call', async () => {
    let runs = 0
    const refund = withMandate(
      tool(async () => (runs++, 'ok'), { name: 'billing_delete_invoice', description: 'Delete', schema: z.object({ invoice: z.string() }) }),
      opts(w),
    )
    await expect(refund.invoke({ invoice: 'i' })).rejects.toMatchObject({ code: 'NARROWING_TOOL' })
    const msg = (await refund.invoke({ name: 'billing_delete_invoice', args: { invoice: 'i' }, id: 'r1', type: 'tool_call' })) as ToolMessage
    expect(msg.status).toBe('error')
    expect(msg.content).toMatch(/\(NARROWING_TOOL\)/)
    expect(runs).toBe(0)
    expect(() => withMandate(refund, opts(w))).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' })) // no double wrapping
  })

  it('runs in a custom LangGraph graph with ToolNode: distinct verified credentials, no leaks', async () => {
    const seen: CallContext[] = []
    const base = [
      tool(async ({ id }) => (seen.push(getCallContext()), `invoice ${id}`), { name: 'billing_get_invoice', description: 'Fetch', schema: z.object({ id: z.string() }) }),
      tool(async ({ query }) => (seen.push(getCallContext()), `hits for ${query}`), { name: 'docs_search', description: 'Search', schema: z.object({ query: z.string() }) }),
    ]
    const tools = withMandateAll(base, opts(w))
    const model = new ScriptedChatModel([
      callTools({ name: 'billing_get_invoice', args: { id: 'a' }, id: 'g1' }, { name: 'docs_search', args: { query: 'q' }, id: 'g2' }, { name: 'billing_get_invoice', args: { id: 'b' }, id: 'g3' }),
    ])
    const graph = buildGraph(model, tools)
    const recorder = new RecordingHandler()
    const result = await graph.invoke({ messages: [{ role: 'user', content: 'go' }] }, { callbacks: [recorder] })
    await awaitAllCallbacks()
    expect(toolMessages(result.messages).map((m) => m.status)).toEqual(['success', 'success', 'success'])
    expect(seen).toHaveLength(3)
    expect(new Set(seen.map((c) => c.mandateId)).size).toBe(3)
    expect(seen.every((c) => c.verified && c.subject === 'alice@example.com')).toBe(true)
    const exchanges = (await w.authority.audit.query({ txn: w.grant.claims.txn })).filter((r) => r.type === 'exchange' && r.fields.operation === 'call')
    expect(exchanges.map((r) => r.fields.jti).sort()).toEqual(seen.map((c) => c.mandateId).sort())
    // tracing stays intact: tool runs show up as tool callbacks under the graph run
    expect(recorder.payloads.filter((p) => p.startsWith('handleToolStart'))).toHaveLength(3)
    expect(findLeaks([...result.messages.map(dump), ...recorder.payloads], w.issued)).toEqual([])
  })

  it('approval through ToolNode: interrupt, approve at the Authority, resume', async () => {
    let runs = 0
    const refund = withMandate(
      tool(async ({ amount }) => (runs++, `refunded ${amount}`), { name: 'billing_refund', description: 'Refund', schema: z.object({ invoice: z.string(), amount: z.number() }) }),
      opts(w),
    )
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'i', amount: 10 }, id: 'p1' })])
    const graph = buildGraph(model, [refund], new MemorySaver())
    const config = { configurable: { thread_id: 'toolnode-approval' } }
    const first = await graph.invoke({ messages: [{ role: 'user', content: 'go' }] }, config)
    const pending = (first as { __interrupt__?: { value: unknown }[] }).__interrupt__?.[0]?.value
    expect(isApprovalInterrupt(pending)).toBe(true)
    expect(runs).toBe(0)
    if (!isApprovalInterrupt(pending)) return
    await w.authority.approvals.approve(pending.approvalId, { approver: w.approver.did })
    const done = await graph.invoke(new Command({ resume: { decision: 'approved', approvalId: pending.approvalId } }), config)
    expect(runs).toBe(1)
    expect(toolMessages(done.messages).map((m) => m.status)).toEqual(['success'])
  })

  it('refuses nesting one guarded call inside another', async () => {
    const inner = withMandate(tool(async () => 'inner', { name: 'docs_search', description: 'x', schema: z.object({}) }), opts(w))
    const outer = withMandate(
      tool(async () => inner.invoke({}), { name: 'billing_get_invoice', description: 'x', schema: z.object({}) }),
      opts(w),
    )
    await expect(outer.invoke({})).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
  })

  it('mandateFetch attaches the credential and a fresh DPoP proof for its audience only', async () => {
    const results: unknown[] = []
    const balance = withMandate(
      tool(
        async ({ account }) => {
          const res = await mandateFetch(`${api.audience}/balance?account=${account}`)
          results.push(await res.json())
          // the same credential cannot be sent twice (single use), nor to another origin
          await expect(mandateFetch(`${api.audience}/again`)).rejects.toMatchObject({ code: 'TOKEN_REPLAYED' })
          await expect(createMandateFetch()('https://evil.example.test/api')).rejects.toMatchObject({ code: 'AUDIENCE_MISMATCH' })
          await expect(createMandateFetch()(`${api.origin}/other`)).rejects.toMatchObject({ code: 'AUDIENCE_MISMATCH' })
          return 'ok'
        },
        { name: 'http_get_balance', description: 'Balance', schema: z.object({ account: z.string() }) },
      ),
      // the HTTP API verifies the credential itself
      opts(w, { audience: api.audience, toolName: (n) => n.replace('_', '.'), remote: true, guard: [] }),
    )
    expect(await balance.invoke({ account: 'acc_1' })).toBe('ok')
    expect(results).toEqual([{ ok: true, actor: w.orchestrator.did }])
    expect(api.verified).toHaveLength(1)
    expect(api.verified[0]).toMatchObject({ tool: 'http.get_balance', callBound: true, subject: 'alice@example.com', audience: api.audience })
    // outside a guarded call there is nothing to send
    await expect(mandateFetch(`${api.audience}/balance`)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    // a captured request replayed without the agent's key gets nowhere
    const replay = await fetch(`${api.audience}/balance`, { headers: { authorization: 'DPoP not-a-token' } })
    expect(replay.status).toBe(401)
    void AIMessage
  })
})
