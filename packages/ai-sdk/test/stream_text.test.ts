import { stepCountIs, streamText, tool, ToolLoopAgent } from 'ai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getCallContext, mandateTools, tryGetCallContext, type MandateToolsOptions } from '../src/index.js'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { BILLING, createWorld, type World } from './support/world.js'

function opts(w: World, extra: Partial<MandateToolsOptions> = {}): MandateToolsOptions {
  return { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING), ...extra }
}

describe('streamText, streaming tools and ToolLoopAgent', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld()
  })
  afterEach(async () => {
    await w.close()
  })

  it('a streaming tool (async function*) sees its call context at every step; preliminary results stream through', async () => {
    const seenAt: string[] = []
    const tools = mandateTools(
      {
        'billing.get_invoice': tool({
          inputSchema: z.object({ id: z.string() }),
          async *execute({ id }) {
            seenAt.push(`start:${getCallContext().subject}`)
            yield { status: 'loading', id }
            await new Promise((r) => setTimeout(r, 5))
            seenAt.push(`after-await:${getCallContext().tool}`)
            yield { status: 'done', id, amount: 120 }
          },
        }),
      },
      opts(w),
    )
    const model = new ScriptedLanguageModel([callTools(['billing.get_invoice', { id: 'inv_7' }]), { text: 'fetched' }])
    const result = streamText({ model, tools, prompt: 'fetch inv_7', stopWhen: stepCountIs(4) })
    const parts: { type: string; preliminary?: boolean; output?: unknown }[] = []
    for await (const p of result.fullStream) if (p.type === 'tool-result' || p.type === 'tool-error') parts.push(p as never)
    expect(await result.text).toBe('fetched')
    expect(seenAt).toEqual(['start:alice@example.com', 'after-await:billing.get_invoice'])
    expect(parts.map((p) => [p.type, p.preliminary ?? false])).toEqual([
      ['tool-result', true], ['tool-result', true], ['tool-result', false],
    ])
    expect(parts.at(-1)!.output).toEqual({ status: 'done', id: 'inv_7', amount: 120 })
    // the call context is gone once the call settled
    expect(tryGetCallContext()).toBeUndefined()
    expect(findLeaks([model.seen(), dump(await result.steps)], w.issued)).toEqual([])
  })

  it('a refused streaming call yields nothing and is a tool error', async () => {
    let ran = false
    const tools = mandateTools(
      {
        'billing.refund': tool({
          inputSchema: z.object({ invoice: z.string(), amount: z.number() }),
          async *execute() {
            ran = true
            yield 'partial'
          },
        }),
      },
      opts(w),
    )
    const model = new ScriptedLanguageModel([callTools(['billing.refund', { invoice: 'i', amount: 10_000 }]), { text: 'no' }])
    const result = streamText({ model, tools, prompt: 'refund', stopWhen: stepCountIs(4) })
    const kinds: string[] = []
    for await (const p of result.fullStream) if (p.type === 'tool-result' || p.type === 'tool-error') kinds.push(p.type === 'tool-error' ? `error:${(p.error as { code?: string }).code}` : p.type)
    expect(kinds).toEqual(['error:NARROWING_CONSTRAINT'])
    expect(ran).toBe(false)
  })

  it('ToolLoopAgent.stream runs guarded tools with per-call credentials', async () => {
    const ids: string[] = []
    const tools = mandateTools(
      {
        'billing.get_invoice': tool({
          inputSchema: z.object({ id: z.string() }),
          execute: async ({ id }) => {
            ids.push(getCallContext().mandateId)
            return `invoice ${id}`
          },
        }),
      },
      opts(w),
    )
    const model = new ScriptedLanguageModel([
      callTools(['billing.get_invoice', { id: 'a' }]),
      callTools(['billing.get_invoice', { id: 'b' }]),
      { text: 'both' },
    ])
    const agent = new ToolLoopAgent({ model, tools, stopWhen: stepCountIs(5) })
    const result = await agent.stream({ prompt: 'fetch a then b' })
    await result.consumeStream()
    expect(await result.text).toBe('both')
    expect(ids).toHaveLength(2)
    expect(new Set(ids).size).toBe(2)
  })
})
