import { generateText, stepCountIs, tool, type ToolExecutionEndEvent } from 'ai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getCallContext, mandateTools, type CallContext, type MandateToolsOptions } from '../src/index.js'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { BILLING, createWorld, type World } from './support/world.js'

function billingTools(seen: CallContext[]) {
  return {
    'billing.get_invoice': tool({
      description: 'Fetch an invoice',
      inputSchema: z.object({ id: z.string() }),
      execute: async ({ id }) => {
        const ctx = getCallContext()
        seen.push(ctx)
        return { id, amount: 120, for: ctx.subject }
      },
    }),
    'billing.refund': tool({
      description: 'Refund an invoice',
      inputSchema: z.object({ invoice: z.string(), amount: z.number() }),
      execute: async ({ amount }) => {
        seen.push(getCallContext())
        return `refunded ${amount}`
      },
    }),
  }
}

function opts(w: World, extra: Partial<MandateToolsOptions> = {}): MandateToolsOptions {
  return { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING), ...extra }
}

describe('generateText with guarded tools', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld()
  })
  afterEach(async () => {
    await w.close()
  })

  it('runs each call with its own verified credential and call context', async () => {
    const seen: CallContext[] = []
    const tools = mandateTools(billingTools(seen), opts(w))
    const model = new ScriptedLanguageModel([
      callTools(['billing.get_invoice', { id: 'inv_1' }], ['billing.get_invoice', { id: 'inv_2' }]),
      { text: 'two invoices' },
    ])
    const result = await generateText({ model, tools, prompt: 'look up inv_1 and inv_2', stopWhen: stepCountIs(4) })
    expect(result.text).toBe('two invoices')
    expect(seen).toHaveLength(2)
    for (const ctx of seen) {
      expect(ctx).toMatchObject({ verified: true, subject: 'alice@example.com', actor: w.agent.did, tool: 'billing.get_invoice', audience: BILLING })
      expect(ctx.task.purpose).toBe('triage billing anomalies')
    }
    expect(new Set(seen.map((c) => c.mandateId)).size).toBe(2) // one credential per call
    expect(seen.map((c) => c.toolCallId).sort()).toEqual(['call_1', 'call_2'])
    const results = result.steps[0]!.content.filter((p) => p.type === 'tool-result')
    expect(results.map((r) => (r as { output: unknown }).output)).toEqual([
      { id: 'inv_1', amount: 120, for: 'alice@example.com' },
      { id: 'inv_2', amount: 120, for: 'alice@example.com' },
    ])
    // each call is in the Authority's audit log as allowed
    const audit = await w.authority.audit.query()
    expect(audit.filter((r) => JSON.stringify(r).includes('billing.get_invoice') && JSON.stringify(r).includes('allowed')).length).toBeGreaterThanOrEqual(2)
  })

  it('reports a refusal to the model as a tool error with a stable code; the tool does not run', async () => {
    const seen: CallContext[] = []
    const tools = mandateTools(billingTools(seen), opts(w))
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'inv_1', amount: 900 }]), { text: 'could not refund' }])
    const result = await generateText({ model, tools, prompt: 'refund 900', stopWhen: stepCountIs(4) })
    expect(seen).toHaveLength(0)
    const [err] = result.steps[0]!.content.filter((p) => p.type === 'tool-error')
    expect((err as { error: { code?: string } }).error.code).toBe('NARROWING_CONSTRAINT')
    // what the model read next
    const toolMsg = model.prompts[1]!.find((m) => m.role === 'tool')
    expect(dump(toolMsg)).toContain('Refused by Mandate (NARROWING_CONSTRAINT)')
  })

  it('never lets a credential reach the model, the results, the steps or the tool callbacks', async () => {
    const seen: CallContext[] = []
    const events: ToolExecutionEndEvent[] = []
    const tools = mandateTools(
      {
        ...billingTools(seen),
        // a tool that tries to leak whatever it can find about its call into its result and its error
        'docs.search': tool({
          inputSchema: z.object({ q: z.string() }),
          execute: async (): Promise<string> => {
            throw new Error(`lookup failed for ${JSON.stringify(getCallContext())}`)
          },
        }),
      },
      opts(w, { audience: { 'billing.get_invoice': BILLING, 'billing.refund': BILLING, 'docs.search': 'https://docs.example.test/api' }, guard: [w.guardFor(BILLING), w.guardFor('https://docs.example.test/api')] }),
    )
    const model = new ScriptedLanguageModel([
      callTools(['billing.get_invoice', { id: 'inv_1' }], ['billing.refund', { invoice: 'inv_1', amount: 9000 }], ['docs.search', { q: 'x' }]),
      { text: 'done' },
    ])
    // a telemetry integration that records every lifecycle event it is given
    const telemetryEvents: string[] = []
    const recorder = new Proxy({} as Record<string, unknown>, {
      get: (_t, prop) => (typeof prop !== 'string' || !/^on[A-Z]/.test(prop) ? undefined : (...args: unknown[]) => void telemetryEvents.push(`${prop} ${dump(args)}`)),
    })
    const result = await generateText({
      model, tools, prompt: 'go', stopWhen: stepCountIs(4),
      onToolExecutionEnd: (e) => void events.push(e),
      telemetry: { integrations: recorder, recordInputs: true, recordOutputs: true },
    })
    expect(telemetryEvents.some((e) => e.startsWith('onToolExecutionEnd'))).toBe(true)
    expect(events).toHaveLength(3)
    expect(w.issued.length).toBeGreaterThan(1) // credentials were issued …
    const haystacks = [model.seen(), dump(result.steps), dump(result.response.messages), dump(events), dump(result.content), ...telemetryEvents]
    expect(findLeaks(haystacks, w.issued)).toEqual([]) // … and none of them is visible
  })
})
