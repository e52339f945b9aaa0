import { Agent, run, setTracingDisabled } from '@openai/agents'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { mandateApprovals, mandateTools } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { billingTools, options, toolOutputs, type Ran } from './support/tools.js'
import { createWorld, type World } from './support/world.js'

beforeAll(() => setTracingDisabled(true))

const refund = (invoice: string, amount: number) => callTools({ name: 'billing_refund', arguments: { invoice, amount } })

describe('Mandate approvals on the SDK interruptions flow', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
  })
  afterEach(async () => {
    await w.close()
  })

  it('the run pauses with an interruption; an approver decides at the Authority; approve + resume runs the tool once', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    const model = new ScriptedModel([
      callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_9' } }, { name: 'billing_refund', arguments: { invoice: 'inv_9', amount: 120 } }),
      reply('refunded'),
    ])
    const agent = new Agent({ name: 'billing', tools, model })
    const first = await run(agent, 'refund inv_9')
    // the call the Authority did not ask about ran; the refund waits
    expect(ran.map((r) => r.tool)).toEqual(['billing_get_invoice'])
    expect(first.interruptions).toHaveLength(1)
    const asks = mandateApprovals(first)
    expect(asks).toHaveLength(1)
    const [ask] = asks
    expect(ask).toMatchObject({ toolName: 'billing_refund', toolCallId: 'call_1_2', mandate: { tool: 'billing.refund' } })
    expect(ask!.item.rawItem).toEqual(first.interruptions[0]!.rawItem)
    expect(mandateApprovals(first.interruptions)).toHaveLength(1)

    // the agent cannot approve its own call; the human approver can
    await expect(w.authority.approvals.approve(ask!.mandate.approvalId, { approver: w.orchestrator.did })).rejects.toMatchObject({ name: 'MandateError' })
    await w.authority.approvals.approve(ask!.mandate.approvalId, { approver: w.approver.did })
    first.state.approve(ask!.item)
    const second = await run(agent, first.state)
    expect(second.finalOutput).toBe('refunded')
    expect(ran.map((r) => r.tool)).toEqual(['billing_get_invoice', 'billing_refund'])
    expect(ran[1]!.context.approval).toMatchObject({ id: ask!.mandate.approvalId, approver: w.approver.did })
    expect(toolOutputs(second.newItems).call_1_2).toBe('refunded 120 EUR on inv_9')
    expect((await w.authority.approvals.list()).filter((a) => a.tool === 'billing.refund')).toHaveLength(1)
    expect(findLeaks([dump(model.requests), dump(first.state), dump(second.newItems), dump(asks)], w.issued)).toEqual([])
  })

  it('an SDK approval the Authority does not back runs nothing (not decided yet, or denied)', async () => {
    for (const decide of ['nobody', 'deny'] as const) {
      const ran: Ran[] = []
      const tools = mandateTools(billingTools(ran), options(w))
      const model = new ScriptedModel([refund('inv_1', 10), reply('ok')])
      const agent = new Agent({ name: 'billing', tools, model })
      const first = await run(agent, 'refund')
      const [ask] = mandateApprovals(first)
      if (decide === 'deny') await w.authority.approvals.deny(ask!.mandate.approvalId, { approver: w.approver.did })
      first.state.approve(ask!.item)
      const second = await run(agent, first.state)
      expect(ran).toEqual([])
      expect(toolOutputs(second.newItems).call_1_1).toMatch(decide === 'deny' ? /^Refused by Mandate \(APPROVAL_DENIED\)/ : /^Refused by Mandate \(APPROVAL_REQUIRED\)/)
      expect(JSON.stringify(model.requests[1]?.input)).toContain('Refused by Mandate')
    }
  })

  it('the app rejects in the SDK: nothing runs, even when the Authority approved', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    const model = new ScriptedModel([refund('inv_1', 10), reply('ok')])
    const agent = new Agent({ name: 'billing', tools, model })
    const first = await run(agent, 'refund')
    const [ask] = mandateApprovals(first)
    await w.authority.approvals.approve(ask!.mandate.approvalId, { approver: w.approver.did })
    first.state.reject(ask!.item)
    const second = await run(agent, first.state)
    expect(second.finalOutput).toBe('ok')
    expect(ran).toEqual([])
  })

  it('a rejected call the model repeats (same call id, same arguments) does not run on the Authority\'s approval alone', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    const again = callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 10 }, callId: 'dup' })
    const model = new ScriptedModel([again, again, reply('gave up')])
    const agent = new Agent({ name: 'billing', tools, model })
    const first = await run(agent, 'refund')
    const [ask] = mandateApprovals(first)
    await w.authority.approvals.approve(ask!.mandate.approvalId, { approver: w.approver.did })
    first.state.reject(ask!.item)
    const second = await run(agent, first.state)
    expect(ran).toEqual([])
    // the SDK keeps the app's rejection for that call id: the repeat is rejected too
    expect(second.interruptions).toEqual([])
    expect(second.finalOutput).toBe('gave up')
    expect(toolOutputs(second.newItems).dup).toBe('Tool execution was not approved.')
  })

  it('the app\'s own needsApproval still applies, and its interruptions are not Mandate approvals', async () => {
    const ran: Ran[] = []
    const [, getInvoice] = billingTools(ran)
    const asked = { ...getInvoice!, needsApproval: async () => true }
    const tools = mandateTools([asked], options(w))
    const model = new ScriptedModel([callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } }), reply('ok')])
    const agent = new Agent({ name: 'billing', tools, model })
    const first = await run(agent, 'read')
    expect(first.interruptions).toHaveLength(1)
    expect(mandateApprovals(first)).toEqual([])
    first.state.approve(first.interruptions[0]!)
    await run(agent, first.state)
    expect(ran.map((r) => r.tool)).toEqual(['billing_get_invoice'])
  })

  it("approval mode 'wait': invoke waits for the approver's decision at the Authority; the run does not pause", async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w, { approval: { mode: 'wait', timeoutMs: 10_000 } }))
    const model = new ScriptedModel([refund('inv_1', 10), refund('inv_2', 20), reply('ok')])
    // a human decides as soon as each approval appears: the first approved, the second denied
    let decided = 0
    const approver = setInterval(async () => {
      for (const a of await w.authority.approvals.list({ status: 'pending' })) {
        decided++
        if (decided === 1) await w.authority.approvals.approve(a.id, { approver: w.approver.did })
        else await w.authority.approvals.deny(a.id, { approver: w.approver.did })
      }
    }, 20)
    try {
      const result = await run(new Agent({ name: 'billing', tools, model }), 'refund')
      expect(result.interruptions).toEqual([])
      expect(ran.map((r) => (r.args as { invoice: string }).invoice)).toEqual(['inv_1'])
      const outputs = toolOutputs(result.newItems)
      expect(outputs.call_1_1).toBe('refunded 10 EUR on inv_1')
      expect(outputs.call_2_1).toMatch(/^Refused by Mandate \(APPROVAL_DENIED\)/)
    } finally {
      clearInterval(approver)
    }
  })
})
