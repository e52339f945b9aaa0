import { tool, type ToolSet } from 'ai'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  getCallContext, mandateApprovals, mandateMcpTransport, mandateToolApproval, mandateTools,
  type CallContext, type MandateApprovalRequest, type MandateToolsOptions,
} from '../src/index.js'
import { ScriptedLanguageModel } from '../src/testing/index.js'

describe('public types', () => {
  it('keep the ToolSet type and are never any', () => {
    const tools = { a: tool({ inputSchema: z.object({ id: z.string() }), execute: async ({ id }) => id }) }
    type Wrapped = ReturnType<typeof mandateTools<typeof tools>>
    expectTypeOf<Wrapped>().toEqualTypeOf<typeof tools>()
    expectTypeOf<MandateToolsOptions>().not.toBeAny()
    expectTypeOf(getCallContext).returns.toEqualTypeOf<CallContext>()
    expectTypeOf<CallContext['subject']>().toEqualTypeOf<string>()
    expectTypeOf(mandateApprovals).returns.toEqualTypeOf<MandateApprovalRequest[]>()
    expectTypeOf<MandateApprovalRequest['input']>().toBeUnknown()
    expectTypeOf(mandateToolApproval).returns.not.toBeAny()
    expectTypeOf(mandateMcpTransport).returns.not.toBeAny()
    expectTypeOf<ScriptedLanguageModel['prompts']>().not.toBeAny()
    expectTypeOf<ToolSet>().not.toBeAny()
  })
})
