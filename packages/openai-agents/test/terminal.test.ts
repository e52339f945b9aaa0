import { Agent, run, setTracingDisabled, ToolCallError } from '@openai/agents'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { isTerminalRefusal, mandateTools, terminalRefusalOf } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { billingTools, options, toolOutputs, type Ran } from './support/tools.js'
import { createWorld, type World } from './support/world.js'

beforeAll(() => setTracingDisabled(true))

/** A model that keeps retrying the same call, as a model reading "refused" may do. */
const stubborn = () => new ScriptedModel([callTools({ name: 'billing_get_invoice', arguments: { invoice: 'inv_1' } })], { whenExhausted: 'repeat' })

describe('terminal refusals (revoked task)', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld()
  })
  afterEach(async () => {
    await w.close()
  })

  it("default 'report': the model reads REVOKED and may retry until maxTurns", async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w))
    await w.revoke({ txn: w.grant.claims.txn })
    const model = stubborn()
    const err = await run(new Agent({ name: 'billing', tools, model }), 'go', { maxTurns: 3 }).then(() => undefined, (e: unknown) => e)
    expect(String(err)).toMatch(/max turns/i)
    expect(model.requests).toHaveLength(3)
    expect(JSON.stringify(model.requests[1]?.input)).toContain('Refused by Mandate (REVOKED)')
    expect(ran).toEqual([])
  })

  it("'stop': the run rejects at the first call, before the model can retry; nothing runs", async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w, { onTerminalRefusal: 'stop' }))
    await w.revoke({ txn: w.grant.claims.txn })
    const model = stubborn()
    const err = await run(new Agent({ name: 'billing', tools, model }), 'go', { maxTurns: 5 }).then(() => undefined, (e: unknown) => e)
    expect(isTerminalRefusal(err)).toBe(true)
    expect(terminalRefusalOf(err)).toMatchObject({ name: 'MandateError', code: 'REVOKED' })
    expect(model.requests).toHaveLength(1)
    expect(ran).toEqual([])
    expect(findLeaks([dump(err), String((err as Error).stack)], w.issued)).toEqual([])
  })

  it("'stop' also ends the run when the local guard sees the revocation after the credential was issued", async () => {
    const ran: Ran[] = []
    // the task is revoked right after the Authority issued the call credential, before the guard checks it
    const base = w.clientFor(w.orchestrator)
    const client = { ...base, callCredential: async (req: Parameters<typeof base.callCredential>[0]) => {
      const issued = await base.callCredential(req)
      await w.revoke({ txn: w.grant.claims.txn })
      return issued
    } }
    const tools = mandateTools(billingTools(ran), options(w, { client, onTerminalRefusal: 'stop' }))
    const err = await run(new Agent({ name: 'billing', tools, model: stubborn() }), 'go').then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(ToolCallError)
    expect(terminalRefusalOf(err)).toMatchObject({ code: 'REVOKED' })
    expect(ran).toEqual([])
    // it was the guard's refusal: the Authority had issued the credential
    expect(w.counter.exchanges).toBe(1)
  })

  it("a refusal that is not terminal still reaches the model with 'stop'", async () => {
    const ran: Ran[] = []
    const tools = mandateTools(billingTools(ran), options(w, { onTerminalRefusal: 'stop' }))
    const model = new ScriptedModel([callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 9999 } }), reply('no')])
    const result = await run(new Agent({ name: 'billing', tools, model }), 'go')
    expect(result.finalOutput).toBe('no')
    expect(toolOutputs(result.newItems).call_1_1).toMatch(/^Refused by Mandate \(NARROWING_CONSTRAINT\)/)
  })
})
