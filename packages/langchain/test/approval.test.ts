import { ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { Command, MemorySaver } from '@langchain/langgraph'
import { createAgent } from 'langchain'
import { beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getCallContext, isApprovalInterrupt, mandateMiddleware, type ApprovalInterrupt, type CallContext, type MandateOptions } from '../src/index.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { BILLING, createWorld } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>

function refundTool() {
  const calls: CallContext[] = []
  const t = tool(
    async (args) => {
      calls.push(getCallContext())
      return `refunded ${args.amount}`
    },
    { name: 'billing_refund', description: 'Refund an invoice', schema: z.object({ invoice: z.string(), amount: z.number() }) },
  )
  return { t, calls }
}

function opts(w: World, extra: Partial<MandateOptions> = {}): MandateOptions {
  return {
    client: w.clientFor(w.orchestrator),
    key: w.orchestrator,
    mandate: w.grant.token,
    audience: BILLING,
    toolName: (n) => n.replace('_', '.'),
    guard: w.guardFor(BILLING),
    ...extra,
  }
}

function interruptsOf(result: unknown): ApprovalInterrupt[] {
  const list = (result as { __interrupt__?: { value: unknown }[] }).__interrupt__ ?? []
  return list.map((i) => i.value).filter(isApprovalInterrupt)
}

const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))

describe('approvals', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
  })

  it('becomes a LangGraph interrupt; resuming after a human approved at the Authority runs the call', async () => {
    const { t, calls } = refundTool()
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'inv_9', amount: 120 }, id: 'a1' })])
    const agent = createAgent({ model, tools: [t], middleware: [mandateMiddleware(opts(w))], checkpointer: new MemorySaver() })
    const config = { configurable: { thread_id: 'approve-1' } }

    const first = await agent.invoke({ messages: [{ role: 'user', content: 'refund inv_9' }] }, config)
    const [pending] = interruptsOf(first)
    expect(pending).toMatchObject({ tool: 'billing.refund', audience: BILLING, arguments: { invoice: 'inv_9', amount: 120 }, toolCallId: 'a1' })
    expect(JSON.parse(JSON.stringify(pending))).toEqual(pending) // serialisable
    expect(calls).toHaveLength(0)

    // the agent can never approve its own call
    await expect(w.authority.approvals.approve(pending!.approvalId, { approver: w.orchestrator.did })).rejects.toMatchObject({ name: 'MandateError' })

    // resuming with "approved" before any human approved: the Authority still says pending → asked again
    const early = await agent.invoke(new Command({ resume: { decision: 'approved' } }), config)
    expect(interruptsOf(early)[0]?.approvalId).toBe(pending!.approvalId)
    expect(calls).toHaveLength(0)

    await w.authority.approvals.approve(pending!.approvalId, { approver: w.approver.did })
    const done = await agent.invoke(new Command({ resume: { decision: 'approved', approvalId: pending!.approvalId } }), config)
    expect(interruptsOf(done)).toEqual([])
    expect(calls).toHaveLength(1)
    expect(calls[0]?.approval).toMatchObject({ id: pending!.approvalId, approver: w.approver.did })
    expect(toolMessages(done.messages).map((m) => m.status)).toEqual(['success'])
    // only one approval was ever requested for this call, although the task re-ran on each resume
    expect((await w.authority.approvals.list()).filter((a) => a.tool === 'billing.refund')).toHaveLength(1)
  })

  it('returns a denial ToolMessage when the human denied', async () => {
    const { t, calls } = refundTool()
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'inv_9', amount: 120 }, id: 'd1' })])
    const agent = createAgent({ model, tools: [t], middleware: [mandateMiddleware(opts(w))], checkpointer: new MemorySaver() })
    const config = { configurable: { thread_id: 'deny-1' } }
    const first = await agent.invoke({ messages: [{ role: 'user', content: 'refund' }] }, config)
    const [pending] = interruptsOf(first)
    await w.authority.approvals.deny(pending!.approvalId, { approver: w.approver.did, reason: 'not this one' })
    const done = await agent.invoke(new Command({ resume: { decision: 'denied', reason: 'not this one' } }), config)
    expect(calls).toHaveLength(0)
    const [msg] = toolMessages(done.messages)
    expect(msg?.status).toBe('error')
    expect(msg?.content).toMatch(/\(APPROVAL_DENIED\)/)
  })

  it('a resume value cannot approve a call the Authority did not approve', async () => {
    const { t, calls } = refundTool()
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'inv_9', amount: 120 }, id: 'f1' })])
    const agent = createAgent({ model, tools: [t], middleware: [mandateMiddleware(opts(w))], checkpointer: new MemorySaver() })
    const config = { configurable: { thread_id: 'forge-1' } }
    await agent.invoke({ messages: [{ role: 'user', content: 'refund' }] }, config)
    let last: unknown
    for (let i = 0; i < 3; i++) last = await agent.invoke(new Command({ resume: { decision: 'approved' } }), config)
    expect(calls).toHaveLength(0)
    const msgs = toolMessages((last as { messages: BaseMessage[] }).messages)
    expect(msgs[0]?.content).toMatch(/\(APPROVAL_REQUIRED\)/)
  })

  it('without a checkpointer, waits for the approval event (approved from another async task)', async () => {
    const { t, calls } = refundTool()
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'inv_7', amount: 80 }, id: 'w1' })])
    const agent = createAgent({ model, tools: [t], middleware: [mandateMiddleware(opts(w, { approval: { timeoutMs: 10_000 } }))] })
    const human = (async () => {
      for (;;) {
        const p = (await w.authority.approvals.list({ status: 'pending' }))[0]
        if (p) {
          await w.authority.approvals.approve(p.id, { approver: w.approver.did })
          return p.id
        }
        await new Promise((r) => setTimeout(r, 5))
      }
    })()
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'refund inv_7' }] })
    const approvalId = await human
    expect(calls).toHaveLength(1)
    expect(calls[0]?.approval).toMatchObject({ id: approvalId, approver: w.approver.did })
    expect(toolMessages(result.messages).map((m) => m.status)).toEqual(['success'])
  })

  it('the waiting path times out into an APPROVAL_EXPIRED ToolMessage', async () => {
    const { t, calls } = refundTool()
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { invoice: 'inv_7', amount: 80 }, id: 'w2' })])
    const agent = createAgent({ model, tools: [t], middleware: [mandateMiddleware(opts(w, { approval: { mode: 'wait', timeoutMs: 100 } }))] })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'refund' }] })
    expect(calls).toHaveLength(0)
    expect(toolMessages(result.messages)[0]?.content).toMatch(/\(APPROVAL_EXPIRED\)/)
  })
})
