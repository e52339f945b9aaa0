// The tool runs with the arguments the credential binds, even when its zod schema would rewrite
// them (outside probe: `amount: z.number().transform((n) => n * 1000)` turned a checked `5` into an
// unchecked 5000 refund under `max 500`). Real Authority, real guard, real LangChain tools.
import { DynamicTool, tool } from '@langchain/core/tools'
import { createAgent } from 'langchain'
import { ToolMessage } from '@langchain/core/messages'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { mandateMiddleware, withMandate, type MandateOptions } from '../src/index.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { BILLING, createWorld } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>
const opts = (w: World): MandateOptions => ({
  client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token,
  audience: BILLING, toolName: (n) => n.replace('_', '.'), guard: w.guardFor(BILLING),
})

describe('a schema that rewrites arguments', () => {
  const ran: unknown[] = []
  const refundWith = (amount: z.ZodType) => tool(async (a) => {
    ran.push(a)
    return `refunded ${JSON.stringify(a)}`
  }, { name: 'billing_refund', description: 'refund', schema: z.object({ amount }) })

  it('is refused before any credential is issued; the tool does not run', async () => {
    const w = await createWorld()
    const rewrites: Array<[string, z.ZodType, unknown]> = [
      ['transform', z.number().transform((n) => n * 1000), 5],
      ['coerce', z.coerce.number(), '5'],
      ['default', z.number().default(9000), undefined],
      ['catch', z.number().catch(9000), 'x'],
    ]
    for (const [name, schema, amount] of rewrites) {
      ran.length = 0
      const before = w.issued.length
      const wrapped = withMandate(refundWith(schema), opts(w))
      const args = amount === undefined ? {} : { amount }
      await expect(wrapped.invoke(args as never), name).rejects.toMatchObject({ code: 'ARGUMENTS_INVALID' })
      expect(ran, name).toEqual([])
      expect(w.issued.length, name).toBe(before)
    }
    // the same through a tool call: an error ToolMessage the model reads, the tool not run
    const out = await withMandate(refundWith(z.number().transform((n) => n * 1000)), opts(w)).invoke({ type: 'tool_call', id: 'c1', name: 'billing_refund', args: { amount: 5 } })
    expect(ToolMessage.isInstance(out) && out.status).toBe('error')
    expect(ran).toEqual([])
  })

  it('a plain schema, one dropping unknown members, refinements and string tools still run', async () => {
    const w = await createWorld()
    ran.length = 0
    expect(await withMandate(refundWith(z.number()), opts(w)).invoke({ amount: 5 })).toBe('refunded {"amount":5}')
    // zod strips members the schema does not name: the tool gets less than the credential binds
    expect(await withMandate(refundWith(z.number().refine((n) => n > 0)), opts(w)).invoke({ amount: 7, note: 'x' })).toBe('refunded {"amount":7}')
    const echo = new DynamicTool({ name: 'billing_get_invoice', description: 'invoice', func: async (s) => `invoice ${s}` })
    expect(await withMandate(echo, opts(w)).invoke({ input: 'inv-1' })).toBe('invoice inv-1')
    // a string tool's input is optional, and other members are dropped by its schema (review)
    expect(await withMandate(echo, opts(w)).invoke({ input: 'inv-2', extra: 1 } as never)).toBe('invoice inv-2')
    expect(await withMandate(echo, opts(w)).invoke({} as never)).toBe('invoice undefined')
  })

  it('the createAgent middleware refuses it too', async () => {
    const w = await createWorld()
    ran.length = 0
    const model = new ScriptedChatModel([callTools({ name: 'billing_refund', args: { amount: 5 }, id: 'r1' })])
    const agent = createAgent({ model, tools: [refundWith(z.number().transform((n) => n * 1000))], middleware: [mandateMiddleware(opts(w))] })
    const res = await agent.invoke({ messages: [{ role: 'user', content: 'refund' }] })
    const msg = res.messages.find((m) => ToolMessage.isInstance(m)) as ToolMessage
    expect(msg.status).toBe('error')
    expect(String(msg.content)).toContain('ARGUMENTS_INVALID')
    expect(ran).toEqual([])
  })
})
