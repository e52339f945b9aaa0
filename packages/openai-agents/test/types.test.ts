import { Agent, tool, type FunctionTool, type Tool } from '@openai/agents'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { mandateMcpTools, mandateTools, type CallContext, type MandateToolsOptions } from '../src/index.js'

describe('types', () => {
  it('mandateTools keeps the tools\' types, and an Agent takes them', () => {
    const schema = z.object({ a: z.string() })
    const t = tool({ name: 'x', description: 'x', parameters: z.object({ a: z.string() }), execute: async ({ a }) => a })
    const opts = {} as MandateToolsOptions
    // type-level only: none of these is called
    expectTypeOf(() => mandateTools([t], opts)).returns.toEqualTypeOf<(typeof t)[]>()
    expectTypeOf(() => mandateTools<Tool>([t], opts)).returns.toEqualTypeOf<Tool[]>()
    const make = () => new Agent({ name: 'a', tools: mandateTools([t], opts) })
    expectTypeOf(make).returns.toMatchTypeOf<Agent>()
    // a tool over the app's own run context type, and an agent of that context
    interface AppContext { tenant: string }
    const typed = tool<typeof schema, AppContext>({ name: 'y', description: 'y', parameters: schema, execute: async (_i, rc) => rc?.context.tenant ?? '' })
    expectTypeOf(() => mandateTools([typed], opts)).returns.toEqualTypeOf<(typeof typed)[]>()
    const makeTyped = () => new Agent<AppContext>({ name: 'b', tools: mandateTools([typed], opts) })
    expectTypeOf(makeTyped).returns.toMatchTypeOf<Agent<AppContext>>()
    expectTypeOf(mandateMcpTools).returns.resolves.toEqualTypeOf<FunctionTool[]>()
    expectTypeOf<CallContext['actorChain']>().toEqualTypeOf<readonly string[]>()
    // the credential is not part of what a tool sees
    expectTypeOf<CallContext>().not.toHaveProperty('token')
  })
})
