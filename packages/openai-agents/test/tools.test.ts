import { Agent, run, setTraceProcessors, setTracingDisabled, tool } from '@openai/agents'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { isMandateTool, mandateTools, tryGetCallContext } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { dump, findLeaks, MemoryTraceProcessor } from './support/leaks.js'
import { billingTools, options, toolOutputs, type Ran } from './support/tools.js'
import { BILLING, createWorld, SUBJECT, type World } from './support/world.js'

const traces = new MemoryTraceProcessor()
beforeAll(() => {
  // the SDK's tracing stays on, exported to memory only: the test reads what an exporter would send
  setTraceProcessors([traces])
  setTracingDisabled(false)
})

describe('mandateTools over SDK function tools', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld()
  })
  afterEach(async () => {
    await w.close()
  })

  it('gets each call its own credential for exactly that tool and those arguments, verified by the guard before the tool runs', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    expect(tools.every(isMandateTool)).toBe(true)
    const model = new ScriptedModel([
      callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } }, { name: 'docs_search', arguments: { query: 'refund policy' } }),
      callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 120 } }),
      reply('done'),
    ])
    const result = await run(new Agent({ name: 'billing', tools, model }), 'handle inv_1')
    expect(result.finalOutput).toBe('done')
    expect(ran.map((r) => [r.tool, r.args])).toEqual([
      ['billing_get_invoice', { invoice: 'inv_1' }],
      ['docs_search', { query: 'refund policy' }],
      ['billing_refund', { invoice: 'inv_1', amount: 120 }],
    ])
    for (const r of ran) {
      expect(r.context).toMatchObject({ verified: true, subject: SUBJECT, actor: w.orchestrator.did, task: { purpose: 'triage billing anomalies' } })
    }
    expect(ran.map((r) => r.context.tool)).toEqual(['billing.get_invoice', 'docs.search', 'billing.refund'])
    expect(ran[0]!.context.toolCallId).toBe('call_1_1')
    // one credential per call, each for its own call
    expect(new Set(ran.map((r) => r.context.mandateId)).size).toBe(3)
    expect(w.counter.exchanges).toBe(3)
    expect(tryGetCallContext()).toBeUndefined()
    const outputs = toolOutputs(result.newItems)
    expect(outputs.call_1_1).toBe(`invoice inv_1: 120 EUR for ${SUBJECT}`)
    // the traces hold the tool calls' inputs and outputs (sensitive data on, as by default) ...
    expect(traces.spans.some((s) => s.includes('"type":"function"') && s.includes('120 EUR for'))).toBe(true)
    // ... but nothing the model read, nor any trace, holds a credential or the mandate
    expect(findLeaks([dump(model.requests), dump(result.newItems), dump(result.state), ...traces.spans, ...traces.traces], w.issued)).toEqual([])
  })

  it('parallel calls of the same tool each get their own credential', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran, { delayMs: 20 }), options(w))
    const calls = Array.from({ length: 4 }, (_, i) => ({ name: 'billing_get_invoice', arguments: { invoice: `inv_${i}` } }))
    const model = new ScriptedModel([callTools(...calls), reply('done')])
    await run(new Agent({ name: 'billing', tools, model }), 'read four')
    expect(ran).toHaveLength(4)
    expect(new Set(ran.map((r) => r.context.mandateId)).size).toBe(4)
    expect(new Set(ran.map((r) => r.context.argumentsDigest)).size).toBe(4)
    expect(ran.map((r) => (r.args as { invoice: string }).invoice).sort()).toEqual(['inv_0', 'inv_1', 'inv_2', 'inv_3'])
  })

  it('a streamed run guards its calls the same way', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    const model = new ScriptedModel([callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_7' } }, { name: 'billing_refund', arguments: { invoice: 'inv_7', amount: 9000 } }), reply('streamed')])
    const stream = await run(new Agent({ name: 'billing', tools, model }), 'go', { stream: true })
    const events: string[] = []
    for await (const e of stream) events.push(dump(e))
    await stream.completed
    expect(stream.finalOutput).toBe('streamed')
    expect(ran.map((r) => [r.tool, r.context.verified])).toEqual([['billing_get_invoice', true]])
    const outputs = toolOutputs(stream.newItems)
    expect(outputs.call_1_2).toMatch(/^Refused by Mandate \(NARROWING_CONSTRAINT\)/)
    expect(events.length).toBeGreaterThan(0)
    expect(findLeaks([...events, dump(model.requests)], w.issued)).toEqual([])
  })

  it('a refused call does not run; the model reads the refusal with its code and the run goes on', async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    const model = new ScriptedModel([
      callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 900 } }),
      reply('could not'),
    ])
    const result = await run(new Agent({ name: 'billing', tools, model }), 'refund 900')
    expect(ran).toEqual([])
    expect(result.finalOutput).toBe('could not')
    expect(toolOutputs(result.newItems).call_1_1).toMatch(/^Refused by Mandate \(NARROWING_CONSTRAINT\): /)
    expect(JSON.stringify(model.requests[1]?.input)).toContain('Refused by Mandate (NARROWING_CONSTRAINT)')
  })

  it('arguments that are not JSON are refused before any credential is asked for', async () => {
    const ran: Ran[] = []
    const [refund] = mandateTools(billingTools(ran).slice(0, 1), options(w))
    const out = await refund!.invoke(undefined as never, '{"invoice": "inv_1", "amount": ', { toolCall: { type: 'function_call', callId: 'c1', name: 'billing_refund', arguments: '' } })
    expect(out).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\)/)
    expect(w.counter.exchanges).toBe(0)
    expect(ran).toEqual([])
  })

  it('a remote tool whose credential was never presented fails closed: CREDENTIAL_NOT_PRESENTED, result withheld', async () => {
    let ran = 0
    const lookup = tool({
      name: 'billing_get_invoice',
      description: 'Read an invoice from a remote API (but it forgets the Mandate fetch)',
      parameters: z.object({ invoice: z.string() }),
      execute: async () => (ran++, 'SECRET INVOICE DATA'),
    })
    const tools = mandateTools([lookup], options(w, { remote: true, guard: undefined, audience: BILLING }))
    const model = new ScriptedModel([callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } }), reply('done')])
    const result = await run(new Agent({ name: 'billing', tools, model }), 'read')
    expect(ran).toBe(1)
    const out = toolOutputs(result.newItems).call_1_1
    expect(out).toMatch(/^Refused by Mandate \(CREDENTIAL_NOT_PRESENTED\)/)
    expect(out).not.toContain('SECRET INVOICE DATA')
    expect(JSON.stringify(model.requests)).not.toContain('SECRET INVOICE DATA')
    // and the Authority's audit log knows
    const refused = (await w.authority.audit.query()).filter((r) => JSON.stringify(r).includes('CREDENTIAL_NOT_PRESENTED'))
    expect(refused).toHaveLength(1)
  })

  it('a guarded tool called from inside another guarded call is refused (no credential reuse across calls)', async () => {
    const ran: Ran[] = []
    const [inner] = mandateTools(billingTools(ran).slice(1, 2), options(w))
    const outer = tool({
      name: 'docs_search',
      description: 'calls another guarded tool from inside itself',
      parameters: z.object({ query: z.string() }),
      execute: async () => String(await inner!.invoke(undefined as never, '{"invoice":"inv_1"}', { toolCall: { type: 'function_call', callId: 'nested', name: 'billing_get_invoice', arguments: '{"invoice":"inv_1"}' } })),
    })
    const tools = mandateTools([outer], options(w))
    const model = new ScriptedModel([callTools({ name: 'docs_search', arguments: { query: 'x' } }), reply('done')])
    const result = await run(new Agent({ name: 'docs', tools, model }), 'go')
    expect(ran).toEqual([])
    expect(toolOutputs(result.newItems).call_1_1).toMatch(/INVALID_REQUEST/)
  })
})
