import { generateText, stepCountIs, streamText, tool } from 'ai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { isTerminalRefusal, mandateTools, stopOnTerminalRefusal, type MandateToolsOptions } from '../src/index.js'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'
import { BILLING, createWorld, type World } from './support/world.js'

function opts(w: World, extra: Partial<MandateToolsOptions> = {}): MandateToolsOptions {
  return { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING), ...extra }
}

function invoiceTools(runs: string[]) {
  return {
    'billing.get_invoice': tool({ inputSchema: z.object({ id: z.string() }), execute: async ({ id }) => (runs.push(id), `invoice ${id}`) }),
  }
}

/** A model that keeps retrying the same call, as a model reading "refused" may do. */
function stubbornModel(times: number) {
  return new ScriptedLanguageModel(Array.from({ length: times }, (_, i) => callTools(['billing.get_invoice', { id: `inv_${i}` }])), { whenExhausted: 'stop' })
}

describe('terminal refusals (revoked task)', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld()
  })
  afterEach(async () => {
    await w.close()
  })

  it("default 'report': the model reads REVOKED and may retry until stopWhen", async () => {
    const runs: string[] = []
    const tools = mandateTools(invoiceTools(runs), opts(w))
    await w.authority.revoke({ txn: w.grant.claims.txn })
    const result = await generateText({ model: stubbornModel(3), tools, prompt: 'go', stopWhen: stepCountIs(3) })
    const codes = result.steps.flatMap((s) => s.content.filter((p) => p.type === 'tool-error').map((p) => (p as { error: { code?: string } }).error.code))
    expect(codes).toEqual(['REVOKED', 'REVOKED', 'REVOKED'])
    expect(runs).toEqual([])
  })

  it("'stop': generateText rejects with the refusal at the first call; nothing runs", async () => {
    const runs: string[] = []
    const tools = mandateTools(invoiceTools(runs), opts(w, { onTerminalRefusal: 'stop' }))
    await w.authority.revoke({ txn: w.grant.claims.txn })
    const model = stubbornModel(5)
    const err = await generateText({ model, tools, prompt: 'go', stopWhen: stepCountIs(5) }).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'MandateError', code: 'REVOKED' })
    expect(isTerminalRefusal(err)).toBe(true)
    expect(model.prompts).toHaveLength(1)
    expect(runs).toEqual([])
  })

  it("'stop' with streamText: the stream errors with the refusal", async () => {
    const tools = mandateTools(invoiceTools([]), opts(w, { onTerminalRefusal: 'stop' }))
    await w.authority.revoke({ txn: w.grant.claims.txn })
    const result = streamText({ model: stubbornModel(5), tools, prompt: 'go', stopWhen: stepCountIs(5), onError: () => undefined })
    await expect(result.text).rejects.toMatchObject({ code: 'REVOKED' })
  })

  it("'stop' in approval mode 'wait' (no approval hook): stopOnTerminalRefusal ends the loop after the refused step", async () => {
    const tools = mandateTools(invoiceTools([]), opts(w, { onTerminalRefusal: 'stop', approval: { mode: 'wait' } }))
    await w.authority.revoke({ txn: w.grant.claims.txn })
    const model = stubbornModel(5)
    const result = await generateText({ model, tools, prompt: 'go', stopWhen: [stepCountIs(5), stopOnTerminalRefusal] })
    expect(result.steps).toHaveLength(1)
    expect(model.prompts).toHaveLength(1)
  })
})
