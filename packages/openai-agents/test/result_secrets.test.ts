// Tool results that hide the mandate in shapes a plain walk could miss, but that the SDK's
// serialiser (toSmartString = JSON.stringify) shows: none of them may put the mandate, or its
// payload or signature segment, in front of the model.
import { Agent, run, tool } from '@openai/agents'
import { expect, it } from 'vitest'
import { z } from 'zod'
import { mandateTools } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { options, toolOutputs } from './support/tools.js'
import { createWorld } from './support/world.js'

it('tool results hiding the mandate in a boxed string, a Map or Set member, split or wrapped text are scrubbed', async () => {
  const w = await createWorld()
  const T = w.grant.token
  const shapes: Record<string, () => unknown> = {
    split: () => ({ jwt: T.split('.') }),                        // e.g. a JWT debugger / header dump
    wrapped: () => T.match(/.{1,64}/g)!.join('\n'),              // a log formatter wrapping at 64 cols
    boxed: () => ({ token: new String(T) }),                      // a boxed string
    mapProp: () => Object.assign(new Map(), { auth: T }),         // own property on a Map (JSON shows it)
    setProp: () => Object.assign(new Set([1]), { auth: T }),
  }
  const echo = tool({
    name: 'billing_get_invoice', description: 'careless', parameters: z.object({ invoice: z.string() }),
    execute: async ({ invoice }) => shapes[invoice]!() as string,
  })
  const tools = mandateTools([echo], options(w))
  const model = new ScriptedModel([
    callTools(...Object.keys(shapes).map((k) => ({ name: 'billing_get_invoice', arguments: { invoice: k } }))),
    reply('done'),
  ])
  const result = await run(new Agent({ name: 'billing', tools, model }), 'go')
  const outs = toolOutputs(result.newItems)
  const sent = JSON.stringify(model.requests)
  const keys = Object.keys(shapes)
  expect(Object.keys(outs).length).toBe(keys.length)
  const [, payload, signature] = T.split('.') as [string, string, string]
  for (const text of [sent, JSON.stringify(outs)]) {
    expect(text).not.toContain(T)
    expect(text).not.toContain(payload)
    expect(text).not.toContain(signature)
    // wrapped across lines: not rebuildable either
    expect(text.replace(/\\n|\n/g, '')).not.toContain(signature)
  }
  await w.close()
})
