import { Agent, run, setTraceProcessors, setTracingDisabled, tool } from '@openai/agents'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { mandateApprovals, mandateTools, terminalRefusalOf } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { dump, findLeaks, MemoryTraceProcessor } from './support/leaks.js'
import { billingTools, options, toolOutputs, type Ran } from './support/tools.js'
import { createWorld, type World } from './support/world.js'

const traces = new MemoryTraceProcessor()
beforeAll(() => {
  setTraceProcessors([traces])
  setTracingDisabled(false)
})

describe('no credential, proof or mandate reaches the model, the traces, the events or the saved state', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
    traces.spans.length = 0
    traces.traces.length = 0
  })
  afterEach(async () => {
    await w.close()
  })

  it('a tool that echoes the mandate in its result or its error text is scrubbed', async () => {
    const echo = tool({
      name: 'billing_get_invoice',
      description: 'a careless tool',
      parameters: z.object({ invoice: z.string() }),
      // an error function that shows the error's text to the model, as some apps write
      errorFunction: (_rc, err) => `failed: ${(err as Error).message}`,
      execute: async ({ invoice }) => {
        if (invoice === 'boom') throw new Error(`upstream said: bad token ${w.grant.token}`)
        return `invoice ${invoice}, fetched with ${w.grant.token}`
      },
    })
    const tools = mandateTools([echo], options(w))
    const model = new ScriptedModel([
      callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } }, { name: 'billing_get_invoice', arguments: { invoice: 'boom' } }),
      reply('done'),
    ])
    const result = await run(new Agent({ name: 'billing', tools, model }), 'go')
    const outputs = toolOutputs(result.newItems)
    expect(outputs.call_1_1).toBe('invoice inv_1, fetched with [credential]')
    expect(outputs.call_1_2).toBe('failed: upstream said: bad token [credential]')
    expect(traces.spans.length).toBeGreaterThan(0)
    expect(findLeaks([dump(model.requests), dump(result.newItems), result.state.toString(), ...traces.spans, ...traces.traces], w.issued)).toEqual([])
  })

  it('a result too large to walk is checked as JSON: a clean one passes, one that cannot be checked is withheld', async () => {
    const rows = Array.from({ length: 15_000 }, (_, i) => ({ id: i }))
    const cyclic: Record<string, unknown> = { rows }
    cyclic.self = cyclic
    const big = tool({
      name: 'billing_get_invoice',
      description: 'a big answer',
      parameters: z.object({ invoice: z.string() }),
      execute: async ({ invoice }) => (invoice === 'cyclic' ? cyclic : { rows }),
    })
    const model = new ScriptedModel([
      callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } }, { name: 'billing_get_invoice', arguments: { invoice: 'cyclic' } }),
      reply('done'),
    ])
    const result = await run(new Agent({ name: 'billing', tools: mandateTools([big], options(w)), model }), 'go')
    const outputs = toolOutputs(result.newItems)
    expect(String(outputs.call_1_1)).toContain('"id":14999')
    expect(outputs.call_1_2).toBe('[the tool result was withheld: it could not be checked for credentials]')
  })

  it('across an approval pause and resume, a refusal, and a stopped run', async () => {
    const ran: Ran[] = []
    // the task is revoked right after the Authority refused the 4th credential request (the 9000 refund)
    const base = w.clientFor(w.orchestrator)
    let requests = 0
    const client = { ...base, callCredential: async (req: Parameters<typeof base.callCredential>[0]) => {
      try {
        return await base.callCredential(req)
      } finally {
        if (++requests === 4) await w.revoke({ txn: w.grant.claims.txn })
      }
    } }
    const tools = mandateTools(billingTools(ran), options(w, { client, onTerminalRefusal: 'stop' }))
    const model = new ScriptedModel([
      callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 20 } }, { name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } }),
      callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 9000 } }),
      callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_2' } }),
      reply('never'),
    ])
    const agent = new Agent({ name: 'billing', tools, model })
    const first = await run(agent, 'go')
    const saved = first.state.toString()
    const [ask] = mandateApprovals(first)
    await w.authority.approvals.approve(ask!.mandate.approvalId, { approver: w.approver.did })
    first.state.approve(ask!.item)
    const err = await run(agent, first.state).then(() => undefined, (e: unknown) => e)
    expect(terminalRefusalOf(err)).toMatchObject({ code: 'REVOKED' })
    expect(ran.map((r) => r.tool)).toEqual(['billing_get_invoice', 'billing_refund'])
    expect(JSON.stringify(model.requests[2]?.input)).toContain('Refused by Mandate (NARROWING_CONSTRAINT)')
    expect(findLeaks([saved, dump(first.newItems), dump(err), String((err as Error).stack), dump(model.requests), ...traces.spans, ...traces.traces], w.issued)).toEqual([])
  })
})
