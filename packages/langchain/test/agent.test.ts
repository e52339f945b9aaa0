import { awaitAllCallbacks } from '@langchain/core/callbacks/promises'
import { ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { argumentsDigest, MandateError } from '@mandate/core'
import { createAgent } from 'langchain'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { z } from 'zod'
import { delegateTo, getCallContext, mandateMiddleware, TERMINAL_REFUSALS, withMandate, type CallContext, type MandateOptions } from '../src/index.js'
import { dump, findLeaks, RecordingHandler } from './support/leaks.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { BILLING, createWorld, DOCS } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>

/** Local tools that record what their own (guard-verified) view of each call was. */
function makeTools() {
  const seen: { tool: string; args: unknown; ctx: CallContext }[] = []
  const runs = { billing_get_invoice: 0, billing_refund: 0, docs_search: 0, admin_delete_user: 0, billing_flaky: 0 }
  const getInvoice = tool(
    async (args) => {
      runs.billing_get_invoice++
      seen.push({ tool: 'billing_get_invoice', args, ctx: getCallContext() })
      return JSON.stringify({ id: args.id, amount: 120, currency: 'EUR' })
    },
    { name: 'billing_get_invoice', description: 'Fetch an invoice', schema: z.object({ id: z.string() }) },
  )
  const refund = tool(
    async (args) => {
      runs.billing_refund++
      seen.push({ tool: 'billing_refund', args, ctx: getCallContext() })
      return `refunded ${args.amount} on ${args.invoice}`
    },
    { name: 'billing_refund', description: 'Refund an invoice', schema: z.object({ invoice: z.string(), amount: z.number() }) },
  )
  const search = tool(
    async (args) => {
      runs.docs_search++
      seen.push({ tool: 'docs_search', args, ctx: getCallContext() })
      return `3 results for ${args.query}`
    },
    { name: 'docs_search', description: 'Search the docs', schema: z.object({ query: z.string() }) },
  )
  const deleteUser = tool(
    async () => {
      runs.admin_delete_user++
      return 'deleted'
    },
    { name: 'admin_delete_user', description: 'Delete a user', schema: z.object({ user: z.string() }) },
  )
  const flaky = tool(
    async () => {
      runs.billing_flaky++
      throw new Error('upstream timeout')
    },
    { name: 'billing_flaky', description: 'Always fails', schema: z.object({}) },
  )
  return { seen, runs, tools: [getInvoice, refund, search, deleteUser, flaky] }
}

function options(w: World, key: World['subAgent'], mandate: string): MandateOptions {
  return {
    client: w.clientFor(key),
    key,
    mandate,
    audience: (name) => (name.startsWith('billing_') || name.startsWith('admin_') ? BILLING : name.startsWith('docs_') ? DOCS : undefined),
    toolName: (name) => name.replace('_', '.'),
    guard: [w.guardFor(BILLING), w.guardFor(DOCS)],
  }
}

function toolMessages(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))
}

describe('createAgent + mandateMiddleware (user → orchestrator → sub-agent)', () => {
  let w: World
  let logs: string[]
  beforeEach(async () => {
    w = await createWorld()
    logs = []
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logs.push(dump(args)))
    }
  })
  afterEach(() => vi.restoreAllMocks())

  it('gives every tool call its own credential bound to that tool and those arguments, with the full actor chain', async () => {
    // the orchestrator narrows its mandate for the sub-agent in one call
    const sub = await delegateTo({
      client: w.clientFor(w.orchestrator),
      mandate: w.grant.token,
      to: w.subAgent.did,
      tools: [
        { type: 'tool_access', tools: ['billing.get_invoice'], locations: [BILLING] },
        { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING], constraints: { amount: { type: 'max', value: 200 } } },
        { type: 'tool_access', tools: ['docs.search'], locations: [DOCS] },
      ],
      expiresIn: 600,
    })
    const { tools, seen, runs } = makeTools()
    const model = new ScriptedChatModel([
      // two tool calls in one turn: run in parallel, each with its own credential
      callTools({ name: 'billing_get_invoice', args: { id: 'inv_1' }, id: 'c1' }, { name: 'docs_search', args: { query: 'refund policy' }, id: 'c2' }),
      callTools({ name: 'billing_refund', args: { invoice: 'inv_1', amount: 50 }, id: 'c3' }),
    ])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware(options(w, w.subAgent, sub.mandate))] })
    const recorder = new RecordingHandler()
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'refund inv_1 if the policy allows' }] }, { callbacks: [recorder] })
    await awaitAllCallbacks()

    expect(runs).toMatchObject({ billing_get_invoice: 1, docs_search: 1, billing_refund: 1 })
    const msgs = toolMessages(result.messages)
    expect(msgs.map((m) => m.status)).toEqual(['success', 'success', 'success'])

    // the tools' own view: verified by a core Guard, distinct credential per call, full chain
    expect(seen).toHaveLength(3)
    for (const s of seen) {
      expect(s.ctx.verified).toBe(true)
      expect(s.ctx.subject).toBe('alice@example.com')
      expect(s.ctx.actorChain).toEqual([w.orchestrator.did, w.subAgent.did])
      expect(s.ctx.actor).toBe(w.subAgent.did)
      expect(s.ctx.task).toEqual({ id: w.grant.claims.txn, purpose: 'triage billing anomalies' })
      expect(s.ctx.tool).toBe(s.tool.replace('_', '.'))
      expect(s.ctx.argumentsDigest).toBe(argumentsDigest(s.args))
      expect(s.ctx.ancestors).toHaveLength(2) // root grant, delegated mandate
      expect(s.ctx.ancestors[0]).toBe(w.grant.claims.jti)
    }
    const ids = seen.map((s) => s.ctx.mandateId)
    expect(new Set(ids).size).toBe(3)
    expect(seen.find((s) => s.tool === 'docs_search')?.ctx.audience).toBe(DOCS)
    expect(seen.find((s) => s.tool === 'billing_refund')?.ctx.audience).toBe(BILLING)

    // the Authority's audit log: one call credential per tool call, and one allowed+success report each
    const audit = await w.authority.audit.query({ txn: w.grant.claims.txn })
    const exchanges = audit.filter((r) => r.type === 'exchange' && r.fields.operation === 'call')
    expect(exchanges.map((r) => r.fields.jti).sort()).toEqual([...ids].sort())
    for (const s of seen) {
      const rec = exchanges.find((r) => r.fields.jti === s.ctx.mandateId)
      expect(rec?.fields).toMatchObject({ tool: s.ctx.tool, args: argumentsDigest(s.args), actors: [w.orchestrator.did, w.subAgent.did], subject: 'alice@example.com', agent: w.subAgent.did })
    }
    const reports = audit.filter((r) => r.type === 'call.report')
    expect(reports.map((r) => r.fields.jti).sort()).toEqual([...ids].sort())
    for (const r of reports) expect(r.fields).toMatchObject({ decision: 'allowed', outcome: 'success', actors: [w.orchestrator.did, w.subAgent.did] })

    // the credential never reaches the model, the messages, callbacks/traces or logs
    expect(w.issued.length).toBeGreaterThanOrEqual(5) // grant, delegation, 3 call credentials
    const haystacks = [
      ...result.messages.map((m) => dump(m)),
      ...model.seen.flat().map((m) => dump(m)),
      ...recorder.payloads,
      ...logs,
      dump(tools.map((t) => ({ name: t.name, description: t.description, schema: t.schema }))),
    ]
    expect(recorder.payloads.length).toBeGreaterThan(5)
    expect(findLeaks(haystacks, w.issued)).toEqual([])
  })

  it('refuses out-of-scope tools and out-of-constraint arguments without running the tool; the run goes on', async () => {
    const sub = await delegateTo({
      client: w.clientFor(w.orchestrator),
      mandate: w.grant.token,
      to: w.subAgent,
      tools: [{ type: 'tool_access', tools: ['billing.refund'], locations: [BILLING], constraints: { amount: { type: 'max', value: 200 } } }],
      audiences: [BILLING],
    })
    const { tools, runs } = makeTools()
    const model = new ScriptedChatModel([
      callTools(
        { name: 'admin_delete_user', args: { user: 'bob' }, id: 'x1' }, // not granted at all
        { name: 'billing_refund', args: { invoice: 'inv_1', amount: 900 }, id: 'x2' }, // over the sub-agent's max
        { name: 'docs_search', args: { query: 'x' }, id: 'x3' }, // audience not delegated
      ),
      callTools({ name: 'billing_refund', args: { invoice: 'inv_1', amount: 150 }, id: 'x4' }),
    ])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware(options(w, w.subAgent, sub.mandate))] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    expect(runs).toMatchObject({ admin_delete_user: 0, docs_search: 0, billing_refund: 1 })
    const byId = new Map(toolMessages(result.messages).map((m) => [m.tool_call_id, m]))
    expect(byId.get('x1')?.status).toBe('error')
    expect(byId.get('x1')?.content).toMatch(/^Refused by Mandate \(NARROWING_TOOL\)/)
    expect(byId.get('x2')?.content).toMatch(/^Refused by Mandate \(NARROWING_CONSTRAINT\)/)
    expect(byId.get('x3')?.content).toMatch(/^Refused by Mandate \(NARROWING_(AUDIENCE|TOOL)\)/)
    expect(byId.get('x4')?.status).toBe('success')
    // the model read the refusals on its next turn
    expect(dump(model.seen[1])).toContain('NARROWING_CONSTRAINT')
    expect(findLeaks(result.messages.map(dump), w.issued)).toEqual([])
  })

  it('turns tool errors into error ToolMessages and records the error outcome', async () => {
    const { tools, runs } = makeTools()
    const model = new ScriptedChatModel([callTools({ name: 'billing_flaky', args: {}, id: 'f1' })])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware(options(w, w.orchestrator, w.grant.token))] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    expect(runs.billing_flaky).toBe(1)
    const msg = toolMessages(result.messages)[0]
    expect(msg?.status).toBe('error')
    expect(msg?.content).toContain('upstream timeout')
    const reports = (await w.authority.audit.query({ txn: w.grant.claims.txn })).filter((r) => r.type === 'call.report')
    expect(reports.map((r) => r.fields.outcome)).toEqual(['error'])
  })

  it('a tool with no audience configured fails the run before the model can call it (fail closed, CONFIG_INVALID)', async () => {
    const { tools } = makeTools()
    let ran = 0
    const counted = tool(
      async () => {
        ran++
        return 'ran'
      },
      { name: 'stray', description: 'x', schema: z.object({}) },
    )
    const model = new ScriptedChatModel([callTools({ name: 'stray', args: {}, id: 's1' })])
    const agent = createAgent({ model, tools: [counted, ...tools], middleware: [mandateMiddleware(options(w, w.orchestrator, w.grant.token))] })
    const err = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] }).catch((e: unknown) => e)
    // LangChain wraps middleware errors; the MandateError is the cause
    expect((err as Error).cause).toMatchObject({ name: 'MandateError', code: 'CONFIG_INVALID', detail: { tool: 'stray' } })
    expect(String((err as Error).message)).toMatch(/no audience is configured for tool "stray"/)
    expect(model.seen).toHaveLength(0)
    expect(ran).toBe(0)
    const audit = await w.authority.audit.query({ txn: w.grant.claims.txn })
    expect(audit.filter((r) => r.type === 'exchange' && r.fields.operation === 'call')).toEqual([])
  })

  it('stops the next call once the task is revoked mid-run', async () => {
    const { tools, runs } = makeTools()
    const model = new ScriptedChatModel([
      callTools({ name: 'billing_get_invoice', args: { id: 'inv_1' }, id: 'r1' }),
      async () => {
        // between turns, an admin revokes the whole task
        await w.authority.revoke({ txn: w.grant.claims.txn })
        return callTools({ name: 'billing_get_invoice', args: { id: 'inv_2' }, id: 'r2' })
      },
    ])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware(options(w, w.orchestrator, w.grant.token))] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    expect(runs.billing_get_invoice).toBe(1)
    const byId = new Map(toolMessages(result.messages).map((m) => [m.tool_call_id, m]))
    expect(byId.get('r1')?.status).toBe('success')
    expect(byId.get('r2')?.content).toMatch(/\(REVOKED\)/)
  })
})

describe('onTerminalRefusal', () => {
  it("'stop' ends the run on a revoked task instead of letting the model retry", async () => {
    const w = await createWorld()
    const { tools, runs } = makeTools()
    const model = new ScriptedChatModel([
      callTools({ name: 'billing_get_invoice', args: { id: 'inv_1' }, id: 't1' }),
      async () => {
        await w.authority.revoke({ txn: w.grant.claims.txn })
        return callTools({ name: 'billing_get_invoice', args: { id: 'inv_2' }, id: 't2' })
      },
      callTools({ name: 'billing_get_invoice', args: { id: 'inv_3' }, id: 't3' }), // a model retrying forever
    ])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware({ ...options(w, w.orchestrator, w.grant.token), onTerminalRefusal: 'stop' })] })
    const err = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] }).catch((e: unknown) => e)
    expect((err as Error).cause).toMatchObject({ name: 'MandateError', code: 'REVOKED' })
    expect(findLeaks([dump(err), String((err as Error).message)], w.issued)).toEqual([])
    expect(runs.billing_get_invoice).toBe(1)
    expect(model.seen).toHaveLength(2) // the model never got a third turn

    // the wrapper throws it even for a tool call, instead of returning a ToolMessage
    const getInvoice = tool(async ({ id }) => id, { name: 'billing_get_invoice', description: 'Fetch', schema: z.object({ id: z.string() }) })
    const guarded = withMandate(getInvoice, { ...options(w, w.orchestrator, w.grant.token), onTerminalRefusal: 'stop' })
    await expect(guarded.invoke({ name: 'billing_get_invoice', args: { id: 'x' }, id: 't4', type: 'tool_call' })).rejects.toMatchObject({ code: 'REVOKED' })
  })

  it("'stop' does not end the run on INVALID_CLIENT: a stranger may provoke it, so the model gets the refusal and the next call can pass", async () => {
    const w = await createWorld()
    const { tools, runs } = makeTools()
    const real = w.clientFor(w.orchestrator)
    // what the Authority answered every registered agent while strangers filled its single-use store
    let lockedOut = true
    const client: MandateOptions['client'] = { ...real, callCredential: async (r) => {
      if (lockedOut) {
        lockedOut = false
        throw new MandateError('INVALID_CLIENT', 'client assertion has already been used')
      }
      return real.callCredential(r)
    } }
    expect(TERMINAL_REFUSALS.has('INVALID_CLIENT')).toBe(false)
    expect([...TERMINAL_REFUSALS].sort()).toEqual(['AGENT_DISABLED', 'AGENT_UNKNOWN', 'REVOKED', 'TOKEN_EXPIRED'])
    const model = new ScriptedChatModel([
      callTools({ name: 'billing_get_invoice', args: { id: 'inv_1' }, id: 'i1' }),
      callTools({ name: 'billing_get_invoice', args: { id: 'inv_1' }, id: 'i2' }),
    ])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware({ ...options(w, w.orchestrator, w.grant.token), client, onTerminalRefusal: 'stop' })] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    const msgs = toolMessages(result.messages)
    expect(String(msgs[0]?.content)).toMatch(/^Refused by Mandate \(INVALID_CLIENT\)/)
    expect(msgs[1]?.status).not.toBe('error')
    expect(runs.billing_get_invoice).toBe(1)
  })

  it("'report' (default) and 'stop' alike report an ordinary refusal to the model", async () => {
    const w = await createWorld()
    const { tools } = makeTools()
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'inv_1', amount: 9000 }, id: 'n1' })])
    const agent = createAgent({ model, tools, middleware: [mandateMiddleware({ ...options(w, w.orchestrator, w.grant.token), onTerminalRefusal: 'stop' })] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    expect(toolMessages(result.messages)[0]?.content).toMatch(/\(NARROWING_CONSTRAINT\)/)
  })
})
