import { Agent, handoff, run, setTracingDisabled } from '@openai/agents'
import { Ed25519Key } from '@mandate/core'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { delegatedMandate, mandateTools, type DelegatedMandateOptions } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { dump, findLeaks } from './support/leaks.js'
import { billingTools, options, toolOutputs, type Ran } from './support/tools.js'
import { createWorld, DOCS, type World } from './support/world.js'

beforeAll(() => setTracingDisabled(true))

describe('sub-agents (handoffs, agents as tools) run with a delegated, narrower mandate', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld()
  })
  afterEach(async () => {
    await w.close()
  })

  /** The researcher: the same tools as the orchestrator, but a mandate for docs.search only. */
  function researcher(ran: Ran[], model: ScriptedModel, narrow: Partial<DelegatedMandateOptions> = {}) {
    const mandate = delegatedMandate({
      client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: w.subAgent,
      audiences: [DOCS], tools: [{ type: 'tool_access', tools: ['docs.search'], locations: [DOCS] }], maxDepth: 0, ...narrow,
    })
    const tools = mandateTools(billingTools(ran), { ...options(w), client: w.clientFor(w.subAgent), key: w.subAgent, mandate })
    return { agent: new Agent({ name: 'researcher', handoffDescription: 'searches the docs', tools, model }), mandate }
  }

  it('a handoff target acts under its delegated mandate: allowed what was delegated, refused the rest', async () => {
    const ran: Ran[] = []
    const sub = researcher(ran, new ScriptedModel([
      callTools({ name: 'docs_search', arguments: { query: 'refund policy' } }),
      callTools({ name: 'billing_refund', arguments: { invoice: 'inv_1', amount: 10 } }),
      reply('researched'),
    ]))
    const orchestrator = new Agent({
      name: 'triage',
      tools: mandateTools(billingTools(ran), options(w)),
      handoffs: [handoff(sub.agent)],
      model: new ScriptedModel([callTools({ name: 'transfer_to_researcher' })]),
    })
    const result = await run(orchestrator, 'what is the refund policy?')
    expect(result.finalOutput).toBe('researched')
    expect(result.lastAgent?.name).toBe('researcher')
    expect(ran.map((r) => r.tool)).toEqual(['docs_search'])
    // the sub-agent is the actor; the orchestrator that delegated is on the chain
    expect(ran[0]!.context).toMatchObject({ actor: w.subAgent.did, tool: 'docs.search' })
    expect(ran[0]!.context.actorChain).toEqual([w.orchestrator.did, w.subAgent.did])
    const outputs = toolOutputs(result.newItems)
    expect(outputs.call_2_1).toMatch(/^Refused by Mandate \(NARROWING_[A-Z]+\)/)
    expect(findLeaks([dump(result.newItems), dump(result.state)], w.issued)).toEqual([])
  })

  it('an agent used as a tool (agent.asTool) runs its tools under its delegated mandate', async () => {
    const ran: Ran[] = []
    const sub = researcher(ran, new ScriptedModel([callTools({ name: 'docs_search', arguments: { query: 'fees' } }), reply('fees are 2%')]))
    const orchestrator = new Agent({
      name: 'triage',
      // the agent tool itself is not wrapped: its sub-agent's own tools are guarded
      tools: [...mandateTools(billingTools(ran), options(w)), sub.agent.asTool({ toolName: 'ask_researcher', toolDescription: 'ask the researcher' })],
      model: new ScriptedModel([callTools({ name: 'ask_researcher', arguments: { input: 'fees?' } }), reply('done')]),
    })
    const result = await run(orchestrator, 'fees?')
    expect(result.finalOutput).toBe('done')
    expect(ran.map((r) => [r.tool, r.context.actor])).toEqual([['docs_search', w.subAgent.did]])
    expect(toolOutputs(result.newItems).call_1_1).toContain('fees are 2%')
  })

  it('the sub-agent cannot widen: a delegation asking more than the parent holds is refused by the Authority, and nothing runs', async () => {
    const ran: Ran[] = []
    const sub = researcher(ran, new ScriptedModel([callTools({ name: 'docs_search', arguments: { query: 'x' } }), reply('ok')]), {
      tools: [{ type: 'tool_access', tools: ['docs.search', 'billing.delete_all'], locations: [DOCS] }],
    })
    const result = await run(sub.agent, 'search')
    expect(ran).toEqual([])
    expect(toolOutputs(result.newItems).call_1_1).toMatch(/^Refused by Mandate \(NARROWING_[A-Z]+\)/)
    await expect(sub.mandate()).rejects.toMatchObject({ name: 'MandateError', code: expect.stringMatching(/^NARROWING_/) })
  })

  it('nor delegate onwards when maxDepth is 0, and the delegated mandate is exchanged once and reused', async () => {
    const ran: Ran[] = []
    const sub = researcher(ran, new ScriptedModel([
      callTools({ name: 'docs_search', arguments: { query: 'a' } }, { name: 'docs_search', arguments: { query: 'b' } }),
      reply('ok'),
    ]))
    await run(sub.agent, 'search')
    expect(ran).toHaveLength(2)
    const delegated = await sub.mandate()
    expect(await sub.mandate()).toBe(delegated)
    expect(ran[0]!.context.ancestors).toEqual(ran[1]!.context.ancestors)
    const third = Ed25519Key.generate()
    await w.authority.registerAgent({ did: third.did, name: 'third', role: 'agent' })
    const onwards = delegatedMandate({ client: w.clientFor(w.subAgent), mandate: sub.mandate, to: third, tools: [{ type: 'tool_access', tools: ['docs.search'], locations: [DOCS] }] })
    await expect(onwards()).rejects.toMatchObject({ name: 'MandateError', code: 'NARROWING_DEPTH' })
  })
})
