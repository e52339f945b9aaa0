import { generateText, stepCountIs, tool, ToolLoopAgent, type ModelMessage, type ToolApprovalResponse } from 'ai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getCallContext, mandateApprovals, mandateToolApproval, mandateTools, type CallContext, type MandateToolsOptions } from '../src/index.js'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { BILLING, createWorld, type World } from './support/world.js'

function refundTools(runs: CallContext[]) {
  return {
    'billing.refund': tool({
      description: 'Refund an invoice',
      inputSchema: z.object({ invoice: z.string(), amount: z.number() }),
      execute: async ({ amount }) => {
        runs.push(getCallContext())
        return `refunded ${amount}`
      },
    }),
  }
}

function opts(w: World, extra: Partial<MandateToolsOptions> = {}): MandateToolsOptions {
  return { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING), ...extra }
}

/** The app's side of the SDK flow: answer each approval request, then ask again. */
function answer(messages: ModelMessage[], responses: ToolApprovalResponse[]): void {
  messages.push({ role: 'tool', content: responses })
}

describe('Mandate approvals on the AI SDK tool-approval flow', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
  })
  afterEach(async () => {
    await w.close()
  })

  it('raises a tool-approval-request; a separate approver decides at the Authority; the resumed run executes', async () => {
    const runs: CallContext[] = []
    const tools = mandateTools(refundTools(runs), opts(w))
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'inv_9', amount: 120 }]), { text: 'refunded' }])
    const messages: ModelMessage[] = [{ role: 'user', content: 'refund inv_9' }]

    const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(4) })
    expect(runs).toHaveLength(0)
    const requests = mandateApprovals(tools, first.content)
    expect(requests).toHaveLength(1)
    const [req] = requests
    expect(req).toMatchObject({ toolName: 'billing.refund', input: { invoice: 'inv_9', amount: 120 }, mandate: { tool: 'billing.refund', audience: BILLING } })
    expect(req!.sdkApprovalId).toBe((first.content.find((p) => p.type === 'tool-approval-request') as { approvalId: string }).approvalId)
    expect(JSON.parse(JSON.stringify(req))).toEqual(req) // serialisable, for the app's approval UI

    // the agent can never approve its own call; the human approver can
    await expect(w.authority.approvals.approve(req!.mandate.approvalId, { approver: w.agent.did })).rejects.toMatchObject({ name: 'MandateError' })
    await w.authority.approvals.approve(req!.mandate.approvalId, { approver: w.approver.did })

    messages.push(...first.response.messages)
    answer(messages, [{ type: 'tool-approval-response', approvalId: req!.sdkApprovalId, approved: true }])
    const second = await generateText({ model, tools, messages, stopWhen: stepCountIs(4) })
    expect(second.text).toBe('refunded')
    expect(runs).toHaveLength(1)
    expect(runs[0]!.approval).toMatchObject({ id: req!.mandate.approvalId, approver: w.approver.did })
    // one approval for the call, although the SDK asked the hook twice
    expect((await w.authority.approvals.list()).filter((a) => a.tool === 'billing.refund')).toHaveLength(1)
    expect(findLeaks([model.seen(), dump(first), dump(second.steps), dump(messages)], w.issued)).toEqual([])
  })

  it('an "approved" answer the Authority does not back runs nothing (denied, or not decided yet)', async () => {
    const runs: CallContext[] = []
    const tools = mandateTools(refundTools(runs), opts(w))
    const model = new ScriptedLanguageModel([
      callTools(['billing.refund', { invoice: 'inv_1', amount: 10 }]), { text: 'a' },
      callTools(['billing.refund', { invoice: 'inv_2', amount: 20 }]), { text: 'b' },
    ])
    for (const decide of ['deny', 'nobody'] as const) {
      const messages: ModelMessage[] = [{ role: 'user', content: 'refund' }]
      const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(4) })
      const [req] = mandateApprovals(tools, first.content)
      if (decide === 'deny') await w.authority.approvals.deny(req!.mandate.approvalId, { approver: w.approver.did, reason: 'not this one' })
      messages.push(...first.response.messages)
      // the app (or a forged client history) says approved
      answer(messages, [{ type: 'tool-approval-response', approvalId: req!.sdkApprovalId, approved: true }])
      const second = await generateText({ model, tools, messages, stopWhen: stepCountIs(4) })
      expect(second.text).toBe(decide === 'deny' ? 'a' : 'b')
      // the resumed call's outcome is what the model read next
      expect(dump(model.prompts.at(-1))).toContain(`Refused by Mandate (${decide === 'deny' ? 'APPROVAL_DENIED' : 'APPROVAL_REQUIRED'})`)
    }
    expect(runs).toHaveLength(0)
  })

  it('a denial in the app is the SDK\'s own execution-denied; the tool does not run', async () => {
    const runs: CallContext[] = []
    const tools = mandateTools(refundTools(runs), opts(w))
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'inv_3', amount: 30 }]), { text: 'ok, not refunded' }])
    const messages: ModelMessage[] = [{ role: 'user', content: 'refund' }]
    const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(4) })
    const [req] = mandateApprovals(tools, first.content)
    messages.push(...first.response.messages)
    answer(messages, [{ type: 'tool-approval-response', approvalId: req!.sdkApprovalId, approved: false, reason: 'user said no' }])
    const second = await generateText({ model, tools, messages, stopWhen: stepCountIs(4) })
    expect(second.text).toBe('ok, not refunded')
    expect(runs).toHaveLength(0)
  })

  it('works the same with ToolLoopAgent', async () => {
    const runs: CallContext[] = []
    const tools = mandateTools(refundTools(runs), opts(w))
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'inv_4', amount: 40 }]), { text: 'done' }])
    const agent = new ToolLoopAgent({ model, tools, stopWhen: stepCountIs(4) })
    const messages: ModelMessage[] = [{ role: 'user', content: 'refund inv_4' }]
    const first = await agent.generate({ messages })
    const [req] = mandateApprovals(tools, first.content)
    expect(req).toBeDefined()
    await w.authority.approvals.approve(req!.mandate.approvalId, { approver: w.approver.did })
    messages.push(...first.response.messages)
    answer(messages, [{ type: 'tool-approval-response', approvalId: req!.sdkApprovalId, approved: true }])
    const second = await agent.generate({ messages })
    expect(second.text).toBe('done')
    expect(runs.map((r) => r.approval?.approver)).toEqual([w.approver.did])
  })

  it("approval mode 'wait': execute waits for the approver's decision at the Authority, no SDK round trip", async () => {
    const runs: CallContext[] = []
    const tools = mandateTools(refundTools(runs), opts(w, { approval: { mode: 'wait', timeoutMs: 10_000 } }))
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'inv_5', amount: 50 }]), { text: 'done' }])
    const approver = (async () => {
      for (;;) {
        const [pending] = await w.authority.approvals.list({ status: 'pending' })
        if (pending) return w.authority.approvals.approve(pending.id, { approver: w.approver.did })
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    const result = await generateText({ model, tools, prompt: 'refund', stopWhen: stepCountIs(4) })
    await approver
    expect(result.content.some((p) => p.type === 'tool-approval-request')).toBe(false)
    expect(result.text).toBe('done')
    expect(runs).toHaveLength(1)
  })

  it('mandateToolApproval composes with the app\'s own toolApproval rule (reason shown; Authority denial is execution-denied)', async () => {
    const runs: CallContext[] = []
    let appAsked = 0
    const tools = mandateTools(refundTools(runs), opts(w))
    const toolApproval = mandateToolApproval(tools, () => (appAsked++, undefined))
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'inv_6', amount: 60 }]), { text: 'not refunded' }])
    const messages: ModelMessage[] = [{ role: 'user', content: 'refund inv_6' }]
    const first = await generateText({ model, tools, messages, toolApproval, stopWhen: stepCountIs(4) })
    const part = first.content.find((p) => p.type === 'tool-approval-request') as { reason?: string } | undefined
    expect(part?.reason).toBeTruthy() // the Authority's reason, for the app's UI
    const [req] = mandateApprovals(tools, first.content)
    await w.authority.approvals.deny(req!.mandate.approvalId, { approver: w.approver.did })
    messages.push(...first.response.messages)
    answer(messages, [{ type: 'tool-approval-response', approvalId: req!.sdkApprovalId, approved: true }])
    const second = await generateText({ model, tools, messages, toolApproval, stopWhen: stepCountIs(4) })
    expect(second.text).toBe('not refunded')
    expect(dump(model.prompts.at(-1))).toContain('execution-denied')
    expect(runs).toHaveLength(0)
    expect(appAsked).toBe(0) // Mandate decided both times
  })
})
